/** Tenant, agent (user name), call (ULID), device (extension) and queue identifiers. */
export type TenantID = string;
export type AgentID = string;
export type CallID = string;
export type DeviceID = string;
export type QueueName = string;
/** CSTA connection state of one device in one call. */
export type ConnectionState = "null" | "initiated" | "alerting" | "connected" | "held" | "queued" | "failed";
/** Direction of a call as seen by the contact center. */
export type Direction = "inbound" | "outbound" | "internal";
/** CSTA agent state; `busy` is derived (on a call), `working_after_call` is wrap-up. */
export type AgentState = "logged_out" | "not_ready" | "ready" | "busy" | "working_after_call";
/** The agent states a desktop may ask for with set_agent_state. */
export type RequestedAgentState = "ready" | "not_ready" | "logged_out";
/** Event causes (ECMA-269 names in lower snake case; `transferred` and `conferenced` as DESIGN.md names them); other strings may appear. */
export type Cause = "normal_clearing" | "busy" | "no_answer" | "call_rejected" | "destination_not_obtainable" | "call_abandoned" | "transferred" | "conferenced" | "redirected" | "distributed" | "resync" | "network_out_of_order" | (string & {});
export type Role = "agent" | "supervisor" | "admin";
/** Error codes of the v1 API (docs/api.md). */
export type ErrorCode = "invalid" | "unauthorized" | "forbidden" | "not_found" | "method_not_allowed" | "conflict" | "switch_rejected" | "not_supported" | "unavailable" | "rate_limited" | "internal";
/** Attached data: the key/value map travelling with a call (IVR answers, CRM keys, notes). */
export type AttachedData = Record<string, string>;
/**
 * The relation of one device to one call. A call waiting in a queue has a connection at the
 * queue (ACD group) device, in state "queued", with no agent: it is not a party an agent can
 * act on.
 */
export interface Connection {
    device: DeviceID;
    /** The agent logged on to the device, if any. */
    agent?: AgentID;
    state: ConnectionState;
    /** An outside party (trunk); device is its number. */
    external?: boolean;
}
/** A call as the server sends it (times are RFC 3339 strings, UTC). */
export interface Call {
    call_id: CallID;
    tenant: TenantID;
    /** The switch's correlation id ("" when unknown). */
    pbx_call_id: string;
    direction: Direction;
    /** Calling number ("" when unknown). */
    ani: string;
    ani_name?: string;
    /** Dialed number ("" when unknown). */
    dnis: string;
    /** The queue the call came through ("" when none). */
    queue: QueueName;
    attached_data: AttachedData;
    connections: Connection[];
    /** On a consultation call: the call it consults about. */
    consult_of?: CallID;
    started_at: string;
    queued_at?: string;
    answered_at?: string;
    ended_at?: string;
}
/** The data of a call event: the whole call after the change plus what the event is about. */
export interface CallEventData extends Call {
    /** The device the event is about (the alerting one for call.delivered …). */
    device?: DeviceID;
    agent?: AgentID;
    cause?: Cause;
    /** call.transferred: the device that left, and the one that now has the party. */
    transferring_device?: DeviceID;
    transferred_to?: DeviceID;
    /**
     * call.diverted: where the call went (the queue device a queue offer that was not answered
     * returns it to, or the next device that rings); `device` is the device it left.
     */
    diverted_to?: DeviceID;
    /** The consultation call a transfer or conference completed. */
    consult_call_id?: CallID;
    /** call.disposition_set: the disposition code and notes. */
    disposition?: string;
    notes?: string;
}
/** An agent, and the data of agent events. */
export interface Agent {
    agent: AgentID;
    tenant: TenantID;
    name?: string;
    device?: DeviceID;
    state: AgentState;
    /** Reason code when not_ready. */
    reason?: string;
    /** The state before this change (agent.state_changed only). */
    previous_state?: AgentState;
    queues?: QueueName[];
    since: string;
    /** When wrap-up ends by timer. */
    wrap_up_until?: string;
    /** The state the agent asked for after the current call and wrap-up ("not ready after this call"). */
    next_state?: AgentState;
    /** Reason code of next_state when it is not_ready. */
    next_reason?: string;
}
/** What a desktop needs to draw itself from scratch. */
export interface Snapshot {
    agent: Agent;
    calls: Call[];
    /** The event-log position the snapshot corresponds to. */
    seq: number;
    /** Reason codes the tenant allows for not_ready. */
    reason_codes?: string[];
}
/** Every call event type of the v1 protocol. */
export declare const CALL_EVENT_TYPES: readonly ["call.originated", "call.delivered", "call.established", "call.held", "call.retrieved", "call.transferred", "call.conferenced", "call.diverted", "call.queued", "call.failed", "call.connection_cleared", "call.cleared", "call.data_updated", "call.disposition_set"];
/** Every agent event type of the v1 protocol. */
export declare const AGENT_EVENT_TYPES: readonly ["agent.state_changed", "agent.logged_on", "agent.logged_off"];
export type CallEventType = (typeof CALL_EVENT_TYPES)[number];
export type AgentEventType = (typeof AGENT_EVENT_TYPES)[number];
export type EventType = CallEventType | AgentEventType;
interface EventBase<T extends string> {
    /** Event-log sequence: increasing, never repeated for a subscriber. */
    seq: number;
    type: T;
    /** RFC 3339. */
    time: string;
    tenant: TenantID;
}
export interface CallEvent<T extends CallEventType = CallEventType> extends EventBase<T> {
    data: CallEventData;
}
export interface AgentEvent<T extends AgentEventType = AgentEventType> extends EventBase<T> {
    data: Agent;
}
/** A domain event from the server. */
export type ServerEvent = CallEvent | AgentEvent;
/** isCallEvent narrows a ServerEvent to a call event. */
export declare function isCallEvent(ev: ServerEvent): ev is CallEvent;
/** Params every command may carry. */
export interface CommonParams {
    /** Makes a retried command a no-op that returns the first result. */
    idempotency_key?: string;
    /** Supervisors and admins: act on behalf of this agent. */
    agent?: AgentID;
}
type CallParams = {
    call_id: CallID;
} & CommonParams;
type NewCall = {
    call_id: CallID;
};
type Empty = Record<string, never>;
/** Every command of the v1 protocol: its params and the data of its successful reply. */
export interface Commands {
    make_call: {
        params: {
            to: string;
            attached_data?: AttachedData;
        } & CommonParams;
        result: NewCall;
    };
    answer_call: {
        params: CallParams;
        result: Empty;
    };
    clear_connection: {
        params: CallParams;
        result: Empty;
    };
    clear_call: {
        params: CallParams;
        result: Empty;
    };
    hold_call: {
        params: CallParams;
        result: Empty;
    };
    retrieve_call: {
        params: CallParams;
        result: Empty;
    };
    single_step_transfer: {
        params: CallParams & {
            to: string;
            attached_data?: AttachedData;
        };
        result: Empty;
    };
    consultation_call: {
        params: CallParams & {
            to: string;
            attached_data?: AttachedData;
        };
        result: NewCall;
    };
    transfer_call: {
        params: CallParams & {
            consult_call_id?: CallID;
        };
        result: Empty;
    };
    conference_call: {
        params: CallParams & {
            consult_call_id?: CallID;
        };
        result: Empty;
    };
    update_call_data: {
        params: CallParams & {
            attached_data: AttachedData;
        };
        result: Empty;
    };
    set_agent_state: {
        params: {
            state: RequestedAgentState;
            reason?: string;
        } & CommonParams;
        result: Empty;
    };
    set_disposition: {
        params: CallParams & {
            disposition: string;
            notes?: string;
        };
        result: Empty;
    };
    ping: {
        params: undefined;
        result: Empty;
    };
}
export type CommandName = keyof Commands;
/** Base class of every error the SDK throws. */
export declare class CallbridgeError extends Error {
    /** An API error code, or "unavailable" when the link is down. */
    readonly code: ErrorCode;
    /** From the Retry-After header of a `rate_limited` or `unavailable` answer: when to try again. */
    readonly retryAfterMs?: number;
    constructor(code: ErrorCode, message: string, retryAfterMs?: number);
}
/** The server refused a command: `code` says why (`not_supported`, `conflict`, `forbidden` …). */
export declare class CommandError extends CallbridgeError {
    /** The command that was refused. */
    readonly command: string;
    /** The id the command was sent with. */
    readonly id: string;
    constructor(command: string, id: string, code: ErrorCode, message: string);
}
/**
 * A command got no reply because of the link: it could not be sent (`not_connected`), the link
 * dropped before the reply (`lost`: it may or may not have been carried out; its outcome, if
 * any, arrives as events after the resume), or no reply came in time (`timeout`).
 */
export declare class LinkError extends CallbridgeError {
    readonly command: string;
    readonly reason: "not_connected" | "lost" | "timeout" | "closed";
    constructor(command: string, reason: LinkError["reason"], message: string);
}
/**
 * A login session: a short-lived access token (15 min by default) and the refresh token that
 * gets the next one (POST /v1/refresh), and who it is for.
 */
export interface Session {
    /** The access token (bearer). */
    token: string;
    /** When the access token expires, RFC 3339 (server clock). */
    expires_at: string;
    /** Seconds the access token was valid for when it was issued. */
    expires_in?: number;
    /** Gets the next access token; replaced by every refresh. */
    refresh_token?: string;
    /** When the session ends unless refreshed before, RFC 3339. */
    refresh_expires_at?: string;
    tenant: TenantID;
    username: string;
    role: Role;
    /** Set by the SDK: this browser's time (ms since the epoch) when the session arrived, so that
     * the refresh is timed by expires_in without trusting the two clocks to agree. */
    received_at?: number;
}
export interface LoginOptions {
    /** The callbridge server, e.g. "https://callbridge.example" (default: this page's origin). */
    url?: string;
    username: string;
    password: string;
    /** Only when the same user name exists in several tenants. */
    tenant?: string;
    fetch?: typeof fetch;
}
/**
 * login posts the credentials to /v1/login and returns the session. Errors: CallbridgeError
 * with code `unauthorized` (bad name or password), `invalid`, or `unavailable` when the
 * server cannot be reached (or, from another origin, is not configured to allow this one).
 */
export declare function login(opts: LoginOptions): Promise<Session>;
export interface RefreshOptions {
    /** The callbridge server (default: this page's origin). */
    url?: string;
    /** The session's current refresh token. */
    refreshToken: string;
    fetch?: typeof fetch;
}
/**
 * refresh trades the session's refresh token for a new access token and a new refresh token
 * (the old one stops working). Errors: CallbridgeError `unauthorized` when the session ended
 * (logged out, expired, user removed) or the token was already replaced by another refresh
 * (another tab: take the newest session from your storage), `unavailable` when the server
 * cannot be reached.
 */
export declare function refresh(opts: RefreshOptions): Promise<Session>;
export interface LogoutOptions {
    url?: string;
    /** The access token; or */
    token?: string;
    /** the refresh token (works after the access token expired). */
    refreshToken?: string;
    fetch?: typeof fetch;
}
/**
 * logout ends the session on the server: its tokens stop working and its WebSockets (in every
 * tab) close with 4002. Errors: CallbridgeError (`unauthorized` for a token that is not valid,
 * `unavailable` when the server cannot be reached).
 */
export declare function logout(opts: LogoutOptions): Promise<void>;
/** httpBase returns the http(s) origin+path of a server URL without a trailing slash. */
export declare function httpBase(url?: string): string;
/** The state of the link. */
export type LinkStatus = "connecting" | "open" | "reconnecting" | "closed";
/** Emitted on every change of the link's status. */
export interface StatusChange {
    status: LinkStatus;
    previous: LinkStatus;
    /** Failed attempts since the link was last open. */
    attempt: number;
    /** reconnecting: when the next attempt starts. */
    retryInMs?: number;
    /** When the link went down (reconnecting), or when it was down since (open after a drop). */
    downSince?: Date;
    /** open: true when this open recovered a dropped link (missed events follow). */
    recovered?: boolean;
    /** closed: why: `closed` (by close()), `signed_out` (the session ended on the server: logout
     * in another tab or app, the user was removed, or a refresh failed), `unauthorized` (the
     * token was refused and there is no refresh token), `token_expired` (likewise), `too_many_connections` (the
     * user has as many connections open as the server allows; close one first). */
    reason?: string;
    /** The WebSocket close code of the drop, when there was one. */
    closeCode?: number;
}
/** The snapshot message: the first message of a fresh (not resumed) connection of an agent. */
export interface SnapshotMessage {
    type: "snapshot";
    seq: number;
    data: Snapshot;
    /** True when it replaces earlier state (after a slow-consumer resync). */
    resync: boolean;
}
/**
 * The resync message: the position the client resumed from could not be served (`aged_out`:
 * older than the server keeps; `ahead`: from another log, e.g. after the server's data was
 * reset; `overload`, `unavailable`). Agents get a fresh snapshot (also emitted as a
 * "snapshot" with resync true); every event after seq follows.
 */
export interface ResyncMessage {
    type: "resync";
    reason: string;
    seq: number;
    data?: Snapshot;
}
/** Everything a Client emits, by name. */
export type ClientEvents = {
    /** Every domain event, once, in order. */
    event: ServerEvent;
    /** Every call event. */
    call: CallEvent;
    /** Every agent event. */
    agent: AgentEvent;
    snapshot: SnapshotMessage;
    /** The server could not resume where the client left off; state was redrawn. */
    resync: ResyncMessage;
    status: StatusChange;
    /** A refresh gave new tokens: store the session where the next page load finds it. */
    session: Session;
} & {
    [K in CallEventType]: CallEvent<K>;
} & {
    [K in AgentEventType]: AgentEvent<K>;
};
export interface BackoffOptions {
    /** First delay (default 500 ms). */
    initialMs?: number;
    /** Cap (default 15 s). */
    maxMs?: number;
    /** Growth per failed attempt (default 2). */
    factor?: number;
    /** ± share of random spread (default 0.25). */
    jitter?: number;
}
export interface ConnectOptions {
    /** The callbridge server: "https://callbridge.example" (or its ws(s)://…/v1/ws URL). */
    url?: string;
    /**
     * The session from login(). With its refresh token the Client refreshes the access token at
     * three quarters of its lifetime, moves to a new socket with it without losing or repeating
     * an event, and emits "session"; without one it ends with the token.
     */
    session?: Session;
    /** An access token alone (instead of session): the link ends when it expires. */
    token?: string;
    /** How to refresh (default: refresh() with the session's refresh token). Pages with several
     * tabs on one session share the refresh here (see <callbridge-bar>). */
    refresh?: (current: Session) => Promise<Session>;
    /** Resume after this seq instead of starting from a snapshot. */
    afterSeq?: number;
    /** Send a ping after this much time (default 20 s). */
    heartbeatMs?: number;
    /** Declare the link dead when a ping gets no answer in this time (default 10 s). */
    heartbeatTimeoutMs?: number;
    /** Fail a command with LinkError "timeout" after this (default 30 s). */
    commandTimeoutMs?: number;
    backoff?: BackoffOptions;
    /** Alternative implementations (tests, non-browser runtimes). */
    WebSocket?: typeof WebSocket;
    fetch?: typeof fetch;
}
type Handler<T> = (ev: T) => void;
/** connect opens a Client: it connects at once and keeps reconnecting until close(). */
export declare function connect(opts: ConnectOptions): Client;
/**
 * Client is one link to callbridge. It delivers every event once and in order, across drops:
 * after a drop it reconnects with backoff and resumes after the last seq it delivered, so the
 * events it missed arrive before live ones and none twice.
 */
export declare class Client {
    #private;
    /** The server's http(s) base URL. */
    readonly url: string;
    /** The seq of the last event (or snapshot) delivered; 0 before any. */
    lastSeq: number;
    /** The latest snapshot (agents only). */
    snapshot: Snapshot | null;
    constructor(opts: ConnectOptions);
    /** The link's status. */
    get status(): LinkStatus;
    /** The current session (after refreshes), or null when connected with a bare token. */
    get session(): Session | null;
    /** on registers fn for events named type and returns a function that removes it. */
    on<K extends keyof ClientEvents>(type: K, fn: Handler<ClientEvents[K]>): () => void;
    off<K extends keyof ClientEvents>(type: K, fn: Handler<ClientEvents[K]>): void;
    /**
     * send sends a command and resolves with its reply's data once the server accepted it; the
     * outcome arrives as events. Rejects with CommandError when the server refuses it, LinkError
     * when the link is down, drops before the reply, or no reply comes in time.
     */
    send<K extends CommandName>(cmd: K, ...params: Commands[K]["params"] extends undefined ? [] : [Commands[K]["params"]]): Promise<Commands[K]["result"]>;
    makeCall(to: string, attachedData?: AttachedData): Promise<NewCall>;
    answerCall(callId: CallID): Promise<Empty>;
    /** Hang up: the agent's own connection leaves the call. */
    clearConnection(callId: CallID): Promise<Empty>;
    clearCall(callId: CallID): Promise<Empty>;
    holdCall(callId: CallID): Promise<Empty>;
    retrieveCall(callId: CallID): Promise<Empty>;
    /** Blind transfer; attachedData (e.g. a note) is merged into the call first. */
    singleStepTransfer(callId: CallID, to: string, attachedData?: AttachedData): Promise<Empty>;
    /** Start a consultative transfer: holds callId and calls `to`; resolves with the consultation's call_id. */
    consultationCall(callId: CallID, to: string, attachedData?: AttachedData): Promise<NewCall>;
    /** Complete a consultative transfer of callId to the party of consultCallId. */
    transferCall(callId: CallID, consultCallId?: CallID): Promise<Empty>;
    conferenceCall(callId: CallID, consultCallId?: CallID): Promise<Empty>;
    /** Merge attachedData into the call (an empty value deletes a key). */
    updateCallData(callId: CallID, attachedData: AttachedData): Promise<Empty>;
    setAgentState(state: RequestedAgentState, reason?: string): Promise<Empty>;
    /** Save the wrap-up of a call: a disposition code and notes (emits call.disposition_set). */
    setDisposition(callId: CallID, disposition: string, notes?: string): Promise<Empty>;
    /** A heartbeat round trip. */
    ping(): Promise<Empty>;
    /** reconnect drops the current socket (if any) and connects again at once, resuming. */
    reconnect(): void;
    /**
     * refreshNow refreshes the session at once (it is also done by itself before the access token
     * expires) and moves the link to the new token. Resolves false when there is nothing to
     * refresh with or the refresh failed.
     */
    refreshNow(): Promise<boolean>;
    /**
     * useSession adopts a newer session of the same login (for example one another tab refreshed
     * and stored): the link moves to its token without losing an event, and the next refresh is
     * timed by it.
     */
    useSession(s: Session): void;
    /** close ends the link for good: no reconnect, pending commands fail with LinkError "closed". */
    close(): void;
}
/** isActive reports whether a connection state occupies the device. */
export declare function isActive(s: ConnectionState | undefined): boolean;
/**
 * AgentDesk keeps the state an agent desktop shows — the agent, their reason codes, and their
 * active calls — from a Client's snapshot and events. Listen with onChange.
 */
export declare class AgentDesk {
    #private;
    readonly client: Client;
    readonly username: string;
    agent: Agent | null;
    reasonCodes: string[];
    /** Active calls of this agent by call_id, in arrival order. */
    readonly calls: Map<string, Call>;
    constructor(client: Client, username: string);
    /** onChange calls fn after every snapshot and event has been applied. */
    onChange(fn: (ev: ServerEvent | SnapshotMessage) => void): () => void;
    /**
     * myConnection is this agent's connection to c (by agent name or device). The queue
     * connection of a waiting call (state "queued") is never the agent's, even when a queue is
     * named like their device.
     */
    myConnection(c: Call): Connection | undefined;
    dispose(): void;
}
/** stripEventFields returns the Call part of call event data. */
export declare function stripEventFields(d: CallEventData): Call;
export {};
