// callbridge browser SDK: typed events and commands of the v1 WebSocket protocol
// (DESIGN.md §4, docs/api.md), with reconnect-and-resume, heartbeats and typed errors.
//
//   import { connect, login } from "https://callbridge.example/sdk/callbridge.js";
//   const session = await login({ url: "https://callbridge.example", username, password });
//   const client = connect({ url: "https://callbridge.example", session });
//   client.on("session", (s) => save(s)); // refreshed before each access token expires
//   client.on("call.delivered", (ev) => console.log(ev.data.ani, ev.data.attached_data));
//   await client.answerCall(callId);
//
// One Client holds one WebSocket. Every browser tab makes its own: each tab receives every event
// of the agent and can send every command; closing a tab only closes its socket.

// ---- vocabulary ---------------------------------------------------------------------------

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
export type Cause =
  | "normal_clearing" | "busy" | "no_answer" | "call_rejected" | "destination_not_obtainable"
  | "call_abandoned" | "transferred" | "conferenced" | "redirected" | "distributed" | "resync" | "network_out_of_order"
  | (string & {});
export type Role = "agent" | "supervisor" | "admin";
/** Error codes of the v1 API (docs/api.md). */
export type ErrorCode =
  | "invalid" | "unauthorized" | "forbidden" | "not_found" | "method_not_allowed" | "conflict" | "switch_rejected"
  | "not_supported" | "unavailable" | "rate_limited" | "internal";

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
export const CALL_EVENT_TYPES = [
  "call.originated", "call.delivered", "call.established", "call.held", "call.retrieved",
  "call.transferred", "call.conferenced", "call.diverted", "call.queued", "call.failed",
  "call.connection_cleared", "call.cleared", "call.data_updated", "call.disposition_set",
] as const;
/** Every agent event type of the v1 protocol. */
export const AGENT_EVENT_TYPES = ["agent.state_changed", "agent.logged_on", "agent.logged_off"] as const;

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
export function isCallEvent(ev: ServerEvent): ev is CallEvent {
  return ev.type.startsWith("call.");
}

// ---- commands -----------------------------------------------------------------------------

/** Params every command may carry. */
export interface CommonParams {
  /** Makes a retried command a no-op that returns the first result. */
  idempotency_key?: string;
  /** Supervisors and admins: act on behalf of this agent. */
  agent?: AgentID;
}
type CallParams = { call_id: CallID } & CommonParams;
type NewCall = { call_id: CallID };
type Empty = Record<string, never>;

/** Every command of the v1 protocol: its params and the data of its successful reply. */
export interface Commands {
  make_call: { params: { to: string; attached_data?: AttachedData } & CommonParams; result: NewCall };
  answer_call: { params: CallParams; result: Empty };
  clear_connection: { params: CallParams; result: Empty };
  clear_call: { params: CallParams; result: Empty };
  hold_call: { params: CallParams; result: Empty };
  retrieve_call: { params: CallParams; result: Empty };
  single_step_transfer: { params: CallParams & { to: string; attached_data?: AttachedData }; result: Empty };
  consultation_call: { params: CallParams & { to: string; attached_data?: AttachedData }; result: NewCall };
  transfer_call: { params: CallParams & { consult_call_id?: CallID }; result: Empty };
  conference_call: { params: CallParams & { consult_call_id?: CallID }; result: Empty };
  update_call_data: { params: CallParams & { attached_data: AttachedData }; result: Empty };
  set_agent_state: { params: { state: RequestedAgentState; reason?: string } & CommonParams; result: Empty };
  set_disposition: { params: CallParams & { disposition: string; notes?: string }; result: Empty };
  ping: { params: undefined; result: Empty };
}
export type CommandName = keyof Commands;

// ---- errors -------------------------------------------------------------------------------

/** Base class of every error the SDK throws. */
export class CallbridgeError extends Error {
  /** An API error code, or "unavailable" when the link is down. */
  readonly code: ErrorCode;
  /** From the Retry-After header of a `rate_limited` or `unavailable` answer: when to try again. */
  readonly retryAfterMs?: number;
  constructor(code: ErrorCode, message: string, retryAfterMs?: number) {
    super(message);
    this.name = "CallbridgeError";
    this.code = code;
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
  }
}

/** The server refused a command: `code` says why (`not_supported`, `conflict`, `forbidden` …). */
export class CommandError extends CallbridgeError {
  /** The command that was refused. */
  readonly command: string;
  /** The id the command was sent with. */
  readonly id: string;
  constructor(command: string, id: string, code: ErrorCode, message: string) {
    super(code, message);
    this.name = "CommandError";
    this.command = command;
    this.id = id;
  }
}

/**
 * A command got no reply because of the link: it could not be sent (`not_connected`), the link
 * dropped before the reply (`lost`: it may or may not have been carried out; its outcome, if
 * any, arrives as events after the resume), or no reply came in time (`timeout`).
 */
export class LinkError extends CallbridgeError {
  readonly command: string;
  readonly reason: "not_connected" | "lost" | "timeout" | "closed";
  constructor(command: string, reason: LinkError["reason"], message: string) {
    super("unavailable", message);
    this.name = "LinkError";
    this.command = command;
    this.reason = reason;
  }
}

// ---- login --------------------------------------------------------------------------------

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
export async function login(opts: LoginOptions): Promise<Session> {
  const body: Record<string, string> = { username: opts.username, password: opts.password };
  if (opts.tenant) body.tenant = opts.tenant;
  return (await post(opts.fetch, opts.url, "/v1/login", body, undefined, "login")) as Session;
}

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
export async function refresh(opts: RefreshOptions): Promise<Session> {
  return (await post(opts.fetch, opts.url, "/v1/refresh", { refresh_token: opts.refreshToken }, undefined, "refresh")) as Session;
}

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
export async function logout(opts: LogoutOptions): Promise<void> {
  const body = opts.refreshToken ? { refresh_token: opts.refreshToken } : undefined;
  await post(opts.fetch, opts.url, "/v1/logout", body, opts.refreshToken ? undefined : opts.token, "logout");
}

/** post sends a JSON request and returns the JSON answer (null for 204); errors as login's. */
async function post(f0: typeof fetch | undefined, url: string | undefined, path: string, body: object | undefined, token: string | undefined, what: string): Promise<unknown> {
  const f = f0 ?? fetch.bind(globalThis);
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = "Bearer " + token;
  let res: Response;
  try {
    res = await f(httpBase(url) + path, { method: "POST", headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new CallbridgeError("unavailable", "cannot reach the callbridge server (is this page's origin in --allowed-origins?)");
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const e = data && data.error;
    const ra = Number(res.headers.get("Retry-After"));
    throw new CallbridgeError(e?.code ?? "internal", e?.message ?? `${what} failed: HTTP ${res.status}`, ra > 0 ? ra * 1000 : undefined);
  }
  if (data && typeof data === "object" && "token" in data) (data as Session).received_at = Date.now();
  return data;
}

/** httpBase returns the http(s) origin+path of a server URL without a trailing slash. */
export function httpBase(url?: string): string {
  let u = (url ?? "").trim();
  if (!u) return globalThis.location ? globalThis.location.origin : "";
  u = u.replace(/^ws(s?):\/\//i, "http$1://").replace(/\/+$/, "");
  return u.replace(/\/v1\/ws$/, "");
}

// ---- the client ---------------------------------------------------------------------------

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
} & { [K in CallEventType]: CallEvent<K> } & { [K in AgentEventType]: AgentEvent<K> };

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

interface Pending {
  cmd: string;
  resolve: (v: any) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
  /** The socket the command went out on (its reply comes back on it). */
  ws: WebSocket;
}

/** connect opens a Client: it connects at once and keeps reconnecting until close(). */
export function connect(opts: ConnectOptions): Client {
  return new Client(opts);
}

/**
 * Client is one link to callbridge. It delivers every event once and in order, across drops:
 * after a drop it reconnects with backoff and resumes after the last seq it delivered, so the
 * events it missed arrive before live ones and none twice.
 */
export class Client {
  /** The server's http(s) base URL. */
  readonly url: string;
  /** The seq of the last event (or snapshot) delivered; 0 before any. */
  lastSeq = 0;
  /** The latest snapshot (agents only). */
  snapshot: Snapshot | null = null;

  #opts: Required<Pick<ConnectOptions, "heartbeatMs" | "heartbeatTimeoutMs" | "commandTimeoutMs">> & ConnectOptions;
  #backoff: Required<BackoffOptions>;
  #WS: typeof WebSocket;
  #fetch: typeof fetch;
  #token: string;
  #session: Session | null = null;
  #refresher: ((s: Session) => Promise<Session>) | null = null;
  #refreshing: Promise<boolean> | null = null;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshFailures = 0;
  #tokenExpired = false; // the server said so (4001): refresh before the next attempt
  #handlers = new Map<string, Set<Handler<any>>>();
  #status: LinkStatus = "connecting";
  #ws: WebSocket | null = null;
  #next: WebSocket | null = null; // the socket of a token change, until it opens
  #retiring = new Set<WebSocket>(); // replaced sockets, kept until their replies are in
  #haveSeq = false;
  #needResync = false;
  #attempt = 0;
  #opened = false; // the current socket opened
  #everOpen = false;
  #downSince: Date | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #beatTimer: ReturnType<typeof setTimeout> | undefined;
  #deadTimer: ReturnType<typeof setTimeout> | undefined;
  #nextId = 1;
  #pending = new Map<string, Pending>();
  #closed = false;

  constructor(opts: ConnectOptions) {
    const token = opts?.session?.token ?? opts?.token;
    if (!opts || !token) throw new CallbridgeError("invalid", "connect: a session or token is required");
    this.#opts = { heartbeatMs: 20_000, heartbeatTimeoutMs: 10_000, commandTimeoutMs: 30_000, ...opts };
    this.#backoff = { initialMs: 500, maxMs: 15_000, factor: 2, jitter: 0.25, ...(opts.backoff ?? {}) };
    this.#WS = opts.WebSocket ?? globalThis.WebSocket;
    this.#fetch = opts.fetch ?? fetch.bind(globalThis);
    this.#token = token;
    this.url = httpBase(opts.url);
    if (opts.session) {
      this.#session = opts.session;
      if (opts.refresh) this.#refresher = opts.refresh;
      else if (opts.session.refresh_token)
        this.#refresher = (s) => refresh({ url: this.url, refreshToken: s.refresh_token ?? "", fetch: this.#fetch });
    }
    if (opts.afterSeq !== undefined && opts.afterSeq >= 0) {
      this.lastSeq = opts.afterSeq;
      this.#haveSeq = true;
    }
    this.#scheduleRefresh();
    const s = this.#session;
    if (s && this.#refresher && s.expires_in !== undefined && s.received_at !== undefined && s.received_at + s.expires_in * 1000 <= Date.now()) {
      this.#tokenExpired = true; // a stored session whose access token is spent: refresh first
      this.#retry();
    } else {
      this.#open();
    }
  }

  /** The link's status. */
  get status(): LinkStatus {
    return this.#status;
  }

  /** The current session (after refreshes), or null when connected with a bare token. */
  get session(): Session | null {
    return this.#session;
  }

  /** on registers fn for events named type and returns a function that removes it. */
  on<K extends keyof ClientEvents>(type: K, fn: Handler<ClientEvents[K]>): () => void {
    let set = this.#handlers.get(type);
    if (!set) this.#handlers.set(type, (set = new Set()));
    set.add(fn);
    return () => this.off(type, fn);
  }

  off<K extends keyof ClientEvents>(type: K, fn: Handler<ClientEvents[K]>): void {
    this.#handlers.get(type)?.delete(fn);
  }

  /**
   * send sends a command and resolves with its reply's data once the server accepted it; the
   * outcome arrives as events. Rejects with CommandError when the server refuses it, LinkError
   * when the link is down, drops before the reply, or no reply comes in time.
   */
  send<K extends CommandName>(cmd: K, ...params: Commands[K]["params"] extends undefined ? [] : [Commands[K]["params"]]): Promise<Commands[K]["result"]> {
    return this.#send(cmd, params[0] as object | undefined, this.#opts.commandTimeoutMs);
  }

  makeCall(to: string, attachedData?: AttachedData): Promise<NewCall> {
    return this.send("make_call", attachedData ? { to, attached_data: attachedData } : { to });
  }
  answerCall(callId: CallID): Promise<Empty> {
    return this.send("answer_call", { call_id: callId });
  }
  /** Hang up: the agent's own connection leaves the call. */
  clearConnection(callId: CallID): Promise<Empty> {
    return this.send("clear_connection", { call_id: callId });
  }
  clearCall(callId: CallID): Promise<Empty> {
    return this.send("clear_call", { call_id: callId });
  }
  holdCall(callId: CallID): Promise<Empty> {
    return this.send("hold_call", { call_id: callId });
  }
  retrieveCall(callId: CallID): Promise<Empty> {
    return this.send("retrieve_call", { call_id: callId });
  }
  /** Blind transfer; attachedData (e.g. a note) is merged into the call first. */
  singleStepTransfer(callId: CallID, to: string, attachedData?: AttachedData): Promise<Empty> {
    return this.send("single_step_transfer", attachedData ? { call_id: callId, to, attached_data: attachedData } : { call_id: callId, to });
  }
  /** Start a consultative transfer: holds callId and calls `to`; resolves with the consultation's call_id. */
  consultationCall(callId: CallID, to: string, attachedData?: AttachedData): Promise<NewCall> {
    return this.send("consultation_call", attachedData ? { call_id: callId, to, attached_data: attachedData } : { call_id: callId, to });
  }
  /** Complete a consultative transfer of callId to the party of consultCallId. */
  transferCall(callId: CallID, consultCallId?: CallID): Promise<Empty> {
    return this.send("transfer_call", consultCallId ? { call_id: callId, consult_call_id: consultCallId } : { call_id: callId });
  }
  conferenceCall(callId: CallID, consultCallId?: CallID): Promise<Empty> {
    return this.send("conference_call", consultCallId ? { call_id: callId, consult_call_id: consultCallId } : { call_id: callId });
  }
  /** Merge attachedData into the call (an empty value deletes a key). */
  updateCallData(callId: CallID, attachedData: AttachedData): Promise<Empty> {
    return this.send("update_call_data", { call_id: callId, attached_data: attachedData });
  }
  setAgentState(state: RequestedAgentState, reason?: string): Promise<Empty> {
    return this.send("set_agent_state", reason ? { state, reason } : { state });
  }
  /** Save the wrap-up of a call: a disposition code and notes (emits call.disposition_set). */
  setDisposition(callId: CallID, disposition: string, notes?: string): Promise<Empty> {
    return this.send("set_disposition", notes ? { call_id: callId, disposition, notes } : { call_id: callId, disposition });
  }
  /** A heartbeat round trip. */
  ping(): Promise<Empty> {
    return this.send("ping");
  }

  /** reconnect drops the current socket (if any) and connects again at once, resuming. */
  reconnect(): void {
    if (this.#closed) return;
    this.#drop(undefined, "reconnect requested");
    clearTimeout(this.#retryTimer);
    this.#open();
  }

  /**
   * refreshNow refreshes the session at once (it is also done by itself before the access token
   * expires) and moves the link to the new token. Resolves false when there is nothing to
   * refresh with or the refresh failed.
   */
  refreshNow(): Promise<boolean> {
    return this.#refreshNow();
  }

  /**
   * useSession adopts a newer session of the same login (for example one another tab refreshed
   * and stored): the link moves to its token without losing an event, and the next refresh is
   * timed by it.
   */
  useSession(s: Session): void {
    if (this.#closed || !s?.token || s.token === this.#token) return;
    this.#adopt(s);
  }

  /** close ends the link for good: no reconnect, pending commands fail with LinkError "closed". */
  close(): void {
    this.#end("closed");
  }

  // -- internals --

  #end(reason: string, closeCode?: number): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#refreshTimer);
    this.#stopBeat();
    for (const ws of [this.#ws, this.#next, ...this.#retiring]) {
      if (!ws) continue;
      this.#detach(ws);
      try {
        ws.close(1000, "client closed");
      } catch {
        /* already closing */
      }
    }
    this.#ws = this.#next = null;
    this.#retiring.clear();
    this.#failPending("closed", "the client was closed");
    this.#setStatus(closeCode === undefined ? { status: "closed", reason } : { status: "closed", reason, closeCode });
  }

  #emit<K extends keyof ClientEvents>(type: K, ev: ClientEvents[K]): void {
    for (const fn of [...(this.#handlers.get(type) ?? [])]) {
      try {
        fn(ev);
      } catch (err) {
        // A handler's bug must not stop delivery to the others.
        setTimeout(() => {
          throw err;
        });
      }
    }
  }

  #setStatus(change: Omit<StatusChange, "previous" | "attempt">): void {
    const previous = this.#status;
    this.#status = change.status;
    this.#emit("status", { ...change, previous, attempt: this.#attempt });
  }

  #wsURL(): string {
    let base = this.url.replace(/^http/i, "ws");
    let u = base + "/v1/ws?access_token=" + encodeURIComponent(this.#token);
    if (this.#haveSeq && !this.#needResync) u += "&after_seq=" + this.lastSeq;
    return u;
  }

  #open(): void {
    if (this.#closed) return;
    this.#opened = false;
    let ws: WebSocket;
    try {
      ws = new this.#WS(this.#wsURL());
    } catch (err) {
      this.#scheduleRetry(undefined);
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      if (this.#ws !== ws) return;
      this.#opened = true;
      const recovered = this.#everOpen;
      const downSince = this.#downSince;
      this.#everOpen = true;
      this.#attempt = 0;
      this.#downSince = undefined;
      this.#needResync = false;
      this.#setStatus({ status: "open", recovered, downSince });
      this.#armBeat();
    };
    this.#wire(ws);
  }

  /** wire handles the messages and the close of ws, the current socket or a retiring one. */
  #wire(ws: WebSocket): void {
    ws.onmessage = (e: MessageEvent) => {
      const current = this.#ws === ws;
      if (!current && !this.#retiring.has(ws)) return;
      if (current) this.#armBeat();
      let msg: any;
      try {
        msg = JSON.parse(typeof e.data === "string" ? e.data : "");
      } catch {
        return;
      }
      this.#handle(msg);
      if (!current) this.#retireIfIdle(ws);
    };
    ws.onclose = (e: CloseEvent) => {
      if (this.#retiring.delete(ws)) {
        this.#failPending("lost", "the link dropped before the reply; the command may or may not have been carried out", ws);
        return;
      }
      if (this.#ws !== ws) return;
      this.#onDown(e.code, e.reason);
    };
    ws.onerror = () => {
      /* onclose follows */
    };
  }

  #detach(ws: WebSocket): void {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
  }

  /** drop abandons the current socket without waiting for its close handshake. */
  #drop(code: number | undefined, why: string): void {
    const ws = this.#ws;
    if (!ws) return;
    this.#ws = null;
    this.#detach(ws);
    try {
      ws.close(4000, why.slice(0, 100));
    } catch {
      /* not open yet */
    }
    this.#stopBeat();
    this.#failPending("lost", "the link dropped before the reply; the command may or may not have been carried out", ws);
    void code;
  }

  #onDown(code: number, reason: string): void {
    const wasOpen = this.#opened;
    const ws = this.#ws;
    this.#ws = null;
    this.#stopBeat();
    if (ws) this.#failPending("lost", "the link dropped before the reply; the command may or may not have been carried out", ws);
    if (code === 4002) {
      // The session ended on the server (logout, removed user): signing in again is the way back.
      this.#end("signed_out", code);
      return;
    }
    if (code === 4009) {
      // The user has too many connections open: retrying would only be refused again.
      this.#end("too_many_connections", code);
      return;
    }
    if (code === 4001) {
      // The access token expired before a refresh replaced it (a suspended laptop): refresh
      // before the next attempt, which resumes after lastSeq.
      if (!this.#refresher) {
        this.#end("token_expired", code);
        return;
      }
      this.#tokenExpired = true;
    }
    if (code === 4008) this.#needResync = true; // too far behind: start again from a snapshot
    void reason;
    if (!wasOpen && code !== 4001) {
      // A refused upgrade shows no HTTP status to JavaScript: ask /v1/me whether the token is good.
      void this.#checkToken().then((ok) => {
        if (this.#closed || this.#ws) return; // closed, or reconnect() started a new socket
        if (!ok) {
          if (this.#refresher) {
            this.#tokenExpired = true;
            this.#scheduleRetry(code);
            return;
          }
          this.#end("unauthorized", code);
          return;
        }
        this.#scheduleRetry(code);
      });
      return;
    }
    this.#scheduleRetry(code);
  }

  async #checkToken(): Promise<boolean> {
    try {
      const res = await this.#fetch(this.url + "/v1/me", { headers: { Authorization: "Bearer " + this.#token } });
      return res.status !== 401;
    } catch {
      return true; // unreachable: keep trying
    }
  }

  #scheduleRetry(code: number | undefined): void {
    if (this.#closed) return;
    if (!this.#downSince) this.#downSince = new Date();
    const b = this.#backoff;
    const base = Math.min(b.maxMs, b.initialMs * Math.pow(b.factor, this.#attempt));
    const delay = this.#tokenExpired && this.#attempt === 0 ? 0 : Math.max(0, Math.round(base * (1 - b.jitter + Math.random() * 2 * b.jitter)));
    this.#attempt++;
    this.#setStatus({ status: "reconnecting", retryInMs: delay, downSince: this.#downSince, closeCode: code });
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#retry(), delay);
  }

  /** retry opens the next socket, after a refresh when the token is known to be expired. */
  #retry(): void {
    if (this.#closed || this.#ws) return;
    if (!this.#tokenExpired) {
      this.#open();
      return;
    }
    void this.#refreshNow().then((ok) => {
      if (this.#closed || this.#ws) return;
      if (ok) this.#open();
      else this.#scheduleRetry(undefined);
    });
  }

  // ---- tokens ----

  /** refreshDelay is when to refresh s: at three quarters of its access token's lifetime. */
  #refreshDelay(s: Session): number {
    const now = Date.now();
    let due: number;
    if (s.expires_in !== undefined && s.received_at !== undefined) due = s.received_at + 0.75 * s.expires_in * 1000;
    else due = now + 0.75 * (Date.parse(s.expires_at) - now);
    if (!isFinite(due)) due = now + 60_000;
    return Math.min(2 ** 31 - 1, Math.max(5_000, due - now));
  }

  #scheduleRefresh(delay?: number): void {
    clearTimeout(this.#refreshTimer);
    const s = this.#session;
    if (!s || !this.#refresher || this.#closed) return;
    this.#refreshTimer = setTimeout(() => void this.#refreshNow(), delay ?? this.#refreshDelay(s));
  }

  #refreshNow(): Promise<boolean> {
    if (this.#refreshing) return this.#refreshing;
    const cur = this.#session;
    const refresher = this.#refresher;
    if (!cur || !refresher || this.#closed) return Promise.resolve(false);
    const p = (async () => {
      try {
        const next = await refresher(cur);
        if (this.#closed) return false;
        this.#refreshFailures = 0;
        if (next.token !== this.#token) this.#adopt(next);
        else this.#scheduleRefresh();
        return true;
      } catch (err) {
        if (this.#closed) return false;
        if (err instanceof CallbridgeError && err.code === "unauthorized") {
          this.#end("signed_out");
          return false;
        }
        // The server is unreachable or busy: try again soon, the token is still good a while.
        this.#refreshFailures++;
        this.#scheduleRefresh(Math.min(30_000, 1_000 * 2 ** this.#refreshFailures));
        return false;
      }
    })();
    this.#refreshing = p;
    void p.finally(() => {
      if (this.#refreshing === p) this.#refreshing = null;
    });
    return p;
  }

  /** adopt takes s as the session: its token for the next sockets, a refresh timed by it, and a
   * move of the open link to it. */
  #adopt(s: Session): void {
    this.#session = s;
    this.#token = s.token;
    this.#tokenExpired = false;
    this.#scheduleRefresh();
    this.#emit("session", s);
    this.#swap();
  }

  /**
   * swap moves an open link to the current token, make-before-break: a second socket resumes
   * after lastSeq, and once it is open it becomes the link; the old one stays until the replies
   * to its commands are in. Events arriving on both are delivered once, in order (by seq).
   * When the link is not open, the next attempt uses the new token anyway.
   */
  #swap(): void {
    const old = this.#ws;
    if (this.#closed || !old || !this.#opened) return;
    if (this.#next) {
      this.#detach(this.#next);
      try {
        this.#next.close(1000, "superseded");
      } catch {
        /* not open yet */
      }
    }
    let ws: WebSocket;
    try {
      ws = new this.#WS(this.#wsURL());
    } catch {
      this.#next = null;
      return;
    }
    this.#next = ws;
    ws.onopen = () => {
      if (this.#next !== ws || this.#closed) return;
      this.#next = null;
      const prev = this.#ws;
      this.#ws = ws;
      this.#opened = true;
      this.#wire(ws);
      this.#armBeat();
      if (prev) {
        this.#retiring.add(prev);
        this.#retireIfIdle(prev);
      }
    };
    ws.onclose = () => {
      // It did not open: the old socket goes on until its own token expires (4001 → refresh).
      if (this.#next === ws) this.#next = null;
    };
    ws.onerror = () => {
      /* onclose follows */
    };
  }

  /** retireIfIdle closes a replaced socket once no command waits for a reply on it. */
  #retireIfIdle(ws: WebSocket): void {
    for (const p of this.#pending.values()) if (p.ws === ws) return;
    this.#retiring.delete(ws);
    this.#detach(ws);
    try {
      ws.close(1000, "token refreshed");
    } catch {
      /* closing */
    }
  }

  // Heartbeat: any message from the server shows life. After heartbeatMs of silence we ping;
  // when heartbeatTimeoutMs more pass with nothing, the link is dead (a half-open TCP
  // connection that the browser would notice only minutes later): drop and reconnect.
  #armBeat(): void {
    this.#stopBeat();
    this.#beatTimer = setTimeout(() => {
      const ws = this.#ws;
      if (!ws || ws.readyState !== 1) return;
      this.#send("ping", undefined, this.#opts.heartbeatTimeoutMs + 1000).catch(() => {});
      this.#deadTimer = setTimeout(() => {
        if (this.#ws !== ws) return;
        this.#drop(undefined, "heartbeat timeout");
        this.#scheduleRetry(undefined);
      }, this.#opts.heartbeatTimeoutMs);
    }, this.#opts.heartbeatMs);
  }

  #stopBeat(): void {
    clearTimeout(this.#beatTimer);
    clearTimeout(this.#deadTimer);
  }

  #send(cmd: string, params: object | undefined, timeoutMs: number): Promise<any> {
    const ws = this.#ws;
    if (this.#closed) return Promise.reject(new LinkError(cmd, "closed", "the client was closed"));
    if (!ws || ws.readyState !== 1 || !this.#opened) {
      return Promise.reject(new LinkError(cmd, "not_connected", "not connected to callbridge; try again when the link is back"));
    }
    const id = (cmd === "ping" ? "p" : "c") + this.#nextId++;
    const msg: Record<string, unknown> = { id, cmd };
    if (params !== undefined) msg.params = params;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const p = this.#pending.get(id);
        if (!p) return;
        this.#pending.delete(id);
        reject(new LinkError(cmd, "timeout", `no reply to ${cmd} within ${Math.round(timeoutMs / 1000)} s`));
        if (this.#retiring.has(p.ws)) this.#retireIfIdle(p.ws);
      }, timeoutMs);
      this.#pending.set(id, { cmd, resolve, reject, timer, ws });
      try {
        ws.send(JSON.stringify(msg));
      } catch {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new LinkError(cmd, "not_connected", "not connected to callbridge; try again when the link is back"));
      }
    });
  }

  /** failPending fails the commands waiting on ws (all of them without ws). */
  #failPending(reason: LinkError["reason"], message: string, ws?: WebSocket): void {
    for (const [id, p] of [...this.#pending]) {
      if (ws && p.ws !== ws) continue;
      this.#pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new LinkError(p.cmd, reason, message));
    }
  }

  #handle(msg: any): void {
    if (msg === null || typeof msg !== "object") return;
    if ("ok" in msg) {
      const p = typeof msg.re === "string" ? this.#pending.get(msg.re) : undefined;
      if (!p) return;
      this.#pending.delete(msg.re);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg.data ?? {});
      else p.reject(new CommandError(p.cmd, msg.re, msg.error?.code ?? "internal", msg.error?.message ?? "the command failed"));
      return;
    }
    if (msg.type === "resync") {
      // Redraw from here: the seq may even be lower than lastSeq (a reset log).
      this.lastSeq = msg.seq;
      this.#haveSeq = true;
      if (msg.data) {
        this.snapshot = msg.data as Snapshot;
        this.#emit("snapshot", { type: "snapshot", seq: msg.seq, data: msg.data, resync: true });
      }
      this.#emit("resync", { type: "resync", reason: String(msg.reason ?? ""), seq: msg.seq, data: msg.data });
      return;
    }
    if (msg.type === "snapshot") {
      const resync = this.#haveSeq;
      this.snapshot = msg.data as Snapshot;
      this.lastSeq = msg.seq;
      this.#haveSeq = true;
      this.#emit("snapshot", { type: "snapshot", seq: msg.seq, data: msg.data, resync });
      return;
    }
    if (typeof msg.seq !== "number" || typeof msg.type !== "string") return;
    if (this.#haveSeq && msg.seq <= this.lastSeq) return; // seen already
    this.lastSeq = msg.seq;
    this.#haveSeq = true;
    const ev = msg as ServerEvent;
    this.#emit("event", ev);
    if (isCallEvent(ev)) this.#emit("call", ev);
    else if (ev.type.startsWith("agent.")) this.#emit("agent", ev as AgentEvent);
    this.#emit(ev.type as keyof ClientEvents, ev as never);
  }
}

// ---- a model of one agent's desk ----------------------------------------------------------

const ACTIVE: ReadonlySet<ConnectionState> = new Set<ConnectionState>(["initiated", "alerting", "connected", "held"]);

/** isActive reports whether a connection state occupies the device. */
export function isActive(s: ConnectionState | undefined): boolean {
  return s !== undefined && ACTIVE.has(s);
}

/**
 * AgentDesk keeps the state an agent desktop shows — the agent, their reason codes, and their
 * active calls — from a Client's snapshot and events. Listen with onChange.
 */
export class AgentDesk {
  agent: Agent | null = null;
  reasonCodes: string[] = [];
  /** Active calls of this agent by call_id, in arrival order. */
  readonly calls = new Map<CallID, Call>();
  #fns = new Set<(ev: ServerEvent | SnapshotMessage) => void>();
  #off: Array<() => void> = [];

  constructor(readonly client: Client, readonly username: string) {
    if (client.snapshot) this.#applySnapshot(client.snapshot);
    this.#off.push(
      client.on("snapshot", (m) => {
        this.#applySnapshot(m.data);
        this.#changed(m);
      }),
      client.on("event", (ev) => {
        this.#apply(ev);
        this.#changed(ev);
      }),
    );
  }

  /** onChange calls fn after every snapshot and event has been applied. */
  onChange(fn: (ev: ServerEvent | SnapshotMessage) => void): () => void {
    this.#fns.add(fn);
    return () => this.#fns.delete(fn);
  }

  /**
   * myConnection is this agent's connection to c (by agent name or device). The queue
   * connection of a waiting call (state "queued") is never the agent's, even when a queue is
   * named like their device.
   */
  myConnection(c: Call): Connection | undefined {
    const dev = this.agent?.device;
    return (c.connections ?? []).find((cn) => cn.state !== "queued" && (cn.agent === this.username || (dev !== undefined && cn.device === dev)));
  }

  dispose(): void {
    for (const off of this.#off) off();
    this.#fns.clear();
  }

  #changed(ev: ServerEvent | SnapshotMessage): void {
    for (const fn of [...this.#fns]) fn(ev);
  }

  #applySnapshot(s: Snapshot): void {
    this.agent = s.agent;
    this.reasonCodes = s.reason_codes ?? [];
    this.calls.clear();
    for (const c of s.calls ?? []) this.#keep(c);
  }

  #apply(ev: ServerEvent): void {
    if (!isCallEvent(ev)) {
      this.agent = { ...(this.agent ?? ({} as Agent)), ...ev.data };
      return;
    }
    if (ev.type === "call.cleared") {
      this.calls.delete(ev.data.call_id);
      return;
    }
    if (ev.type === "call.disposition_set") return;
    this.#keep(stripEventFields(ev.data));
  }

  #keep(c: Call): void {
    if (isActive(this.myConnection(c)?.state)) this.calls.set(c.call_id, c);
    else this.calls.delete(c.call_id);
  }
}

/** stripEventFields returns the Call part of call event data. */
export function stripEventFields(d: CallEventData): Call {
  const call: Partial<CallEventData> = { ...d };
  for (const k of EVENT_ONLY_FIELDS) delete call[k];
  return call as Call;
}

const EVENT_ONLY_FIELDS = ["device", "agent", "cause", "transferring_device", "transferred_to", "diverted_to", "consult_call_id", "disposition", "notes"] as const;
