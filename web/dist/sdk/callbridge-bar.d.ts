import { AgentDesk, type AttachedData, type Call, type CallEventData, type CallID, type Client, type Session } from "./callbridge.js";
/** The attached-data key of the note an agent writes when transferring a call. */
export declare const TRANSFER_NOTE_KEY = "transfer_note";
/** Disposition codes offered when the element has no `dispositions` attribute. */
export declare const DEFAULT_DISPOSITIONS: string[];
/** A call whose wrap-up (disposition) is still to be saved. */
export interface WrapUp {
    call: Call;
    /** RFC 3339: when the call ended for this agent. */
    ended_at: string;
    disposition?: string;
    notes?: string;
    saving?: boolean;
    error?: string;
}
/** detail of callbridge:screenpop (cancelable: preventDefault() stops the bar's own pop). */
export interface ScreenPopDetail {
    call: CallEventData;
    /** The screen-pop template filled in, or "" without a template. */
    url: string;
}
/** detail of callbridge:error: a command the server (or the link) refused. */
export interface BarErrorDetail {
    command: string;
    code: string;
    message: string;
}
/** Names of the DOM events the bar dispatches (all bubble and cross the shadow boundary). */
export type BarEventName = "callbridge:login" | "callbridge:logout" | "callbridge:connection" | "callbridge:snapshot" | "callbridge:event" | "callbridge:screenpop" | "callbridge:error" | "callbridge:wrapup" | `callbridge:${string}`;
/** domEventName maps an event type to its DOM event: call.delivered → callbridge:delivered,
 * agent.state_changed → callbridge:agent_state_changed. */
export declare function domEventName(type: string): string;
/** fillTemplate replaces {ani}, {dnis}, {queue}, {call_id}, {ani_name}, {direction} and
 * {KEY} of attached data in tpl with URL-encoded values (unknown names become ""). */
export declare function fillTemplate(tpl: string, call: Call): string;
/** humanize turns IVR_ACCOUNT or follow_up into "IVR account" / "Follow up". */
export declare function humanize(s: string): string;
/** duration formats the time since iso as m:ss (or h:mm:ss). */
export declare function since(iso: string | undefined, now?: number): string;
/**
 * CallbridgeBar is the <callbridge-bar> element.
 *
 * Attributes: `server` (callbridge URL; default: where the script came from), `screen-pop`
 * (URL template, e.g. https://crm.example/search?phone={ani}), `screen-pop-target` (window
 * name, default "callbridge-pop"), `screen-pop-on` ("delivered", the default, or
 * "established"), `dispositions` (comma-separated codes for wrap-up).
 */
export declare class CallbridgeBar extends HTMLElement {
    #private;
    static observedAttributes: string[];
    /** A callback for the screen pop; used instead of the `screen-pop` URL template when set. */
    screenPop: ((call: CallEventData) => void) | null;
    constructor();
    connectedCallback(): void;
    disconnectedCallback(): void;
    attributeChangedCallback(name: string, old: string | null, val: string | null): void;
    /** The callbridge server's URL. */
    get server(): string;
    set server(v: string);
    /** The SDK client of the signed-in session, or null. */
    get client(): Client | null;
    /** The agent's desk model (agent, reason codes, active calls), or null. */
    get desk(): AgentDesk | null;
    /** The signed-in session, or null. */
    get session(): Session | null;
    /** Calls whose wrap-up is still to be saved. */
    get wrapUps(): WrapUp[];
    /** login signs in with a user name and password and connects. */
    login(username: string, password: string, tenant?: string): Promise<Session>;
    /** useSession connects with a session (token) obtained elsewhere, e.g. by the CRM's server. */
    useSession(s: Session): void;
    /** logout ends the web session: on the server (POST /v1/logout, so its tokens stop working and
     * its sockets close) and in every tab of this page's origin. The agent's state on the switch
     * does not change (use setAgentState("logged_out") to log off the queues). */
    logout(): void;
    /** dial places a call (agent-first: the agent's phone rings first) and resolves with its call_id. */
    dial(number: string, attachedData?: AttachedData): Promise<CallID>;
    /** answer answers callId, or the call ringing at the agent's device. */
    answer(callId?: CallID): Promise<unknown>;
    /** hangUp leaves callId, or the agent's current call (talking, on hold, dialing or ringing). */
    hangUp(callId?: CallID): Promise<unknown>;
    /** setAgentState asks for ready, not_ready (with a reason code) or logged_out. */
    setAgentState(state: "ready" | "not_ready" | "logged_out", reason?: string): Promise<unknown>;
}
declare global {
    interface HTMLElementTagNameMap {
        "callbridge-bar": CallbridgeBar;
    }
}
