// <callbridge-bar>: the embeddable connection bar. One script tag and one element give a CRM
// page login, agent state, the screen pop, call control, transfer and wrap-up:
//
//   <script type="module" src="https://callbridge.example/sdk/callbridge-bar.js"></script>
//   <callbridge-bar server="https://callbridge.example"
//                   screen-pop="https://crm.example/search?phone={ani}"></callbridge-bar>
//
// The host page listens to DOM events (callbridge:delivered, callbridge:established,
// callbridge:cleared, …), sets bar.screenPop to a callback, and calls bar.dial(number). Styling
// is themeable with CSS custom properties (--cb-accent, --cb-font, …) and ::part(). All server
// data is put into the DOM with textContent, never as HTML.

import {
  AgentDesk, CallbridgeError, CommandError, LinkError, connect, httpBase, isActive, login, logout, refresh,
  type AttachedData, type Call, type CallEvent, type CallEventData, type CallID, type Client,
  type Connection, type ServerEvent, type Session, type StatusChange,
} from "./callbridge.js";
import morphdom from "morphdom";
import BAR_CSS from "./callbridge-bar.css";

/** The attached-data key of the note an agent writes when transferring a call. */
export const TRANSFER_NOTE_KEY = "transfer_note";

/** Disposition codes offered when the element has no `dispositions` attribute. */
export const DEFAULT_DISPOSITIONS = ["resolved", "follow_up", "sale", "no_sale", "wrong_number"];

/** The default server: where this script was loaded from. */
const SCRIPT_ORIGIN = (() => {
  try {
    return new URL(import.meta.url).origin;
  } catch {
    return "";
  }
})();

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
export type BarEventName =
  | "callbridge:login" | "callbridge:logout" | "callbridge:connection" | "callbridge:snapshot"
  | "callbridge:event" | "callbridge:screenpop" | "callbridge:error" | "callbridge:wrapup"
  | `callbridge:${string}`;

/** domEventName maps an event type to its DOM event: call.delivered → callbridge:delivered,
 * agent.state_changed → callbridge:agent_state_changed. */
export function domEventName(type: string): string {
  if (type.startsWith("call.")) return "callbridge:" + type.slice(5);
  return "callbridge:" + type.replace(".", "_");
}

/** fillTemplate replaces {ani}, {dnis}, {queue}, {call_id}, {ani_name}, {direction} and
 * {KEY} of attached data in tpl with URL-encoded values (unknown names become ""). */
export function fillTemplate(tpl: string, call: Call): string {
  return tpl.replace(/\{([A-Za-z0-9_.-]+)\}/g, (_, name: string) => {
    const key = name.startsWith("attached_data.") ? name.slice(14) : name;
    let v: unknown = (call as unknown as Record<string, unknown>)[key];
    if (typeof v !== "string") v = call.attached_data?.[key];
    return encodeURIComponent(typeof v === "string" ? v : "");
  });
}

const STATE_LABEL: Record<string, string> = {
  logged_out: "Logged out",
  not_ready: "Not ready",
  ready: "Ready",
  busy: "On a call",
  working_after_call: "Wrap-up",
};

const CONN_LABEL: Record<string, string> = {
  initiated: "Dialing",
  alerting: "Ringing",
  connected: "Talking",
  held: "On hold",
};

const COMMAND_LABEL: Record<string, string> = {
  make_call: "Make call",
  answer_call: "Answer",
  clear_connection: "Hang up",
  hold_call: "Hold",
  retrieve_call: "Retrieve",
  single_step_transfer: "Blind transfer",
  consultation_call: "Consult",
  transfer_call: "Complete transfer",
  conference_call: "Conference",
  update_call_data: "Update call data",
  set_agent_state: "Agent state",
  set_disposition: "Save disposition",
};

/** humanize turns IVR_ACCOUNT or follow_up into "IVR account" / "Follow up". */
export function humanize(s: string): string {
  const t = s.replace(/[_-]+/g, " ").trim().toLowerCase();
  return t.replace(/^ivr /, "IVR ").replace(/^./, (c) => c.toUpperCase());
}

function clock(iso?: string): string {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

/** duration formats the time since iso as m:ss (or h:mm:ss). */
export function since(iso: string | undefined, now = Date.now()): string {
  if (!iso) return "";
  const s = Math.max(0, Math.floor((now - new Date(iso).getTime()) / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/**
 * nodeKey names the elements that must keep their identity across redraws (see #render): inputs
 * by their data-key, buttons by action and call, call cards by call, wrap-up cards by call.
 * Every key is unique within the bar.
 */
function nodeKey(n: Node): string | undefined {
  if (n.nodeType !== Node.ELEMENT_NODE) return undefined;
  const d = (n as HTMLElement).dataset;
  if (d.key) return "key:" + d.key;
  if (d.action) return "action:" + d.action + ":" + (d.call ?? "");
  if (d.wrapup) return "wrapup:" + d.wrapup;
  if (d.call && (n as HTMLElement).classList.contains("card")) return "call:" + d.call;
  return undefined;
}

function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Record<string, string | boolean | undefined> = {}, ...kids: Array<Node | string | null | undefined | false>): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === false) continue;
    if (k === "text") el.textContent = String(v);
    else if (k === "class") el.className = String(v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const kid of kids) if (kid !== null && kid !== undefined && kid !== false) el.append(kid);
  return el;
}


/**
 * firstTab reports whether this tab is the first of the origin's tabs to claim key: a marker in
 * localStorage, set under a Web Lock where the browser has them (secure contexts), so that two
 * tabs handling the same event do not both act. Markers older than a day are swept.
 */
async function firstTab(key: string): Promise<boolean> {
  const claim = (): boolean => {
    try {
      if (localStorage.getItem(key)) return false;
      localStorage.setItem(key, String(Date.now()));
      const day = Date.now() - 86_400_000;
      for (let i = localStorage.length - 1; i >= 0; i--) {
        const k = localStorage.key(i);
        if (k && k.startsWith("callbridge.popped@") && Number(localStorage.getItem(k)) < day) localStorage.removeItem(k);
      }
    } catch {
      /* no storage: every tab acts */
    }
    return true;
  };
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  if (!locks) return claim();
  return locks.request("callbridge-claims", () => claim());
}

let sheet: CSSStyleSheet | null = null;
function styles(): CSSStyleSheet {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(BAR_CSS);
  }
  return sheet;
}

/** sameLogin reports whether two sessions are of the same user (a refresh keeps the user). */
function sameLogin(a: Session, b: Session): boolean {
  return a.tenant === b.tenant && a.username === b.username;
}

interface Persisted {
  talked: CallID[];
  popped: CallID[];
  wrapups: WrapUp[];
}

/**
 * CallbridgeBar is the <callbridge-bar> element.
 *
 * Attributes: `server` (callbridge URL; default: where the script came from), `screen-pop`
 * (URL template, e.g. https://crm.example/search?phone={ani}), `screen-pop-target` (window
 * name, default "callbridge-pop"), `screen-pop-on` ("delivered", the default, or
 * "established"), `dispositions` (comma-separated codes for wrap-up).
 */
export class CallbridgeBar extends HTMLElement {
  static observedAttributes = ["server", "screen-pop", "dispositions"];

  /** A callback for the screen pop; used instead of the `screen-pop` URL template when set. */
  screenPop: ((call: CallEventData) => void) | null = null;

  #root: ShadowRoot;
  #session: Session | null = null;
  #client: Client | null = null;
  #desk: AgentDesk | null = null;
  #link: StatusChange | null = null;
  #error = "";
  #info = "";
  #drafts = new Map<string, string>();
  #talked = new Set<CallID>();
  #popped = new Set<CallID>();
  #wrapups = new Map<CallID, WrapUp>();
  #consults = new Map<CallID, CallID>(); // consultation call → consulted call, started here
  #busy = new Set<string>(); // "cmd:call" being sent
  #tick: ReturnType<typeof setInterval> | undefined;
  #onStorage = (e: StorageEvent) => this.#storageChanged(e);
  #started = false;

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: "open" });
    this.#root.adoptedStyleSheets = [styles()];
    this.#root.addEventListener("click", (e) => this.#click(e));
    this.#root.addEventListener("input", (e) => this.#input(e));
    this.#root.addEventListener("change", (e) => this.#input(e));
    this.#root.addEventListener("submit", (e) => this.#submit(e));
  }

  connectedCallback(): void {
    if (this.#started) return;
    this.#started = true;
    window.addEventListener("storage", this.#onStorage);
    this.#tick = setInterval(() => this.#updateTimers(), 1000);
    const saved = this.#loadSession();
    if (saved) this.#start(saved, false);
    else this.#render();
  }

  disconnectedCallback(): void {
    this.#started = false;
    window.removeEventListener("storage", this.#onStorage);
    clearInterval(this.#tick);
    this.#stop();
  }

  attributeChangedCallback(name: string, old: string | null, val: string | null): void {
    if (old === val || !this.#started) return;
    if (name === "server") {
      this.#stop();
      const saved = this.#loadSession();
      if (saved) this.#start(saved, false);
    }
    this.#render();
  }

  // ---- public API ----

  /** The callbridge server's URL. */
  get server(): string {
    return httpBase(this.getAttribute("server") || SCRIPT_ORIGIN || undefined);
  }
  set server(v: string) {
    this.setAttribute("server", v);
  }

  /** The SDK client of the signed-in session, or null. */
  get client(): Client | null {
    return this.#client;
  }
  /** The agent's desk model (agent, reason codes, active calls), or null. */
  get desk(): AgentDesk | null {
    return this.#desk;
  }
  /** The signed-in session, or null. */
  get session(): Session | null {
    return this.#session;
  }
  /** Calls whose wrap-up is still to be saved. */
  get wrapUps(): WrapUp[] {
    return [...this.#wrapups.values()];
  }

  /** login signs in with a user name and password and connects. */
  async login(username: string, password: string, tenant?: string): Promise<Session> {
    const s = await login({ url: this.server, username, password, tenant });
    this.#saveSession(s);
    this.#start(s, true);
    return s;
  }

  /** useSession connects with a session (token) obtained elsewhere, e.g. by the CRM's server. */
  useSession(s: Session): void {
    this.#saveSession(s);
    this.#start(s, true);
  }

  /** logout ends the web session: on the server (POST /v1/logout, so its tokens stop working and
   * its sockets close) and in every tab of this page's origin. The agent's state on the switch
   * does not change (use setAgentState("logged_out") to log off the queues). */
  logout(): void {
    const s = this.#session;
    if (s) {
      logout({ url: this.server, token: s.token, refreshToken: s.refresh_token }).catch(() => {
        /* already ended, or unreachable: the tokens expire by themselves */
      });
    }
    this.#clearSession();
    this.#stop();
    this.#render();
    this.#fire("callbridge:logout", {});
  }

  /** dial places a call (agent-first: the agent's phone rings first) and resolves with its call_id. */
  async dial(number: string, attachedData?: AttachedData): Promise<CallID> {
    const to = String(number ?? "").trim();
    if (!to) throw new CallbridgeError("invalid", "dial: a number is required");
    const r = await this.#run("make_call", "", () => this.#need().makeCall(to, attachedData));
    return r.call_id;
  }

  /** answer answers callId, or the call ringing at the agent's device. */
  answer(callId?: CallID): Promise<unknown> {
    const id = callId ?? this.#pick("alerting");
    if (!id) return Promise.reject(new CallbridgeError("conflict", "no call is ringing"));
    return this.#run("answer_call", id, () => this.#need().answerCall(id));
  }

  /** hangUp leaves callId, or the agent's current call (talking, on hold, dialing or ringing). */
  hangUp(callId?: CallID): Promise<unknown> {
    const id = callId ?? this.#pick("connected", "initiated", "held", "alerting");
    if (!id) return Promise.reject(new CallbridgeError("conflict", "no call to hang up"));
    return this.#run("clear_connection", id, () => this.#need().clearConnection(id));
  }

  /** setAgentState asks for ready, not_ready (with a reason code) or logged_out. */
  setAgentState(state: "ready" | "not_ready" | "logged_out", reason?: string): Promise<unknown> {
    return this.#run("set_agent_state", "", () => this.#need().setAgentState(state, reason));
  }

  // ---- session ----

  #storageKey(): string {
    return "callbridge.session@" + this.server;
  }

  #loadSession(): Session | null {
    try {
      const s = JSON.parse(localStorage.getItem(this.#storageKey()) || "null") as Session | null;
      // No expiry check here: the browser's clock may differ from the server's. An expired
      // token is refused by the server, and the bar then asks to sign in again.
      if (s && s.token) return s;
    } catch {
      /* private mode or bad JSON */
    }
    return null;
  }

  #saveSession(s: Session): void {
    try {
      localStorage.setItem(this.#storageKey(), JSON.stringify(s));
    } catch {
      /* private mode: this tab only */
    }
  }

  #clearSession(): void {
    try {
      localStorage.removeItem(this.#storageKey());
    } catch {
      /* ignore */
    }
  }

  #storageChanged(e: StorageEvent): void {
    if (e.key !== this.#storageKey() && e.key !== null) return;
    const s = this.#loadSession();
    if (!s && this.#session) {
      this.#stop();
      this.#info = "Signed out in another tab.";
      this.#render();
      this.#fire("callbridge:logout", {});
    } else if (s && this.#session && this.#client && sameLogin(s, this.#session)) {
      // Another tab refreshed the session: move this tab's link to the new token.
      if (s.token !== this.#session.token) {
        this.#session = s;
        this.#client.useSession(s);
      }
    } else if (s && (!this.#session || s.token !== this.#session.token)) {
      this.#start(s, false);
    }
  }

  /**
   * refreshShared refreshes the session for every tab of this origin at once: under a Web Lock
   * (where the browser has them) it first looks whether another tab stored a newer session, and
   * refreshes only if not; the result goes to localStorage, where the other tabs pick it up.
   * A refresh refused because another tab was faster is answered with that tab's session.
   */
  async #refreshShared(cur: Session): Promise<Session> {
    const run = async (): Promise<Session> => {
      const stored = this.#loadSession();
      if (stored && sameLogin(stored, cur) && stored.refresh_token && stored.refresh_token !== cur.refresh_token) return stored;
      try {
        const s = await refresh({ url: this.server, refreshToken: cur.refresh_token ?? "" });
        this.#saveSession(s);
        return s;
      } catch (err) {
        const again = this.#loadSession();
        if (again && sameLogin(again, cur) && again.refresh_token && again.refresh_token !== cur.refresh_token) return again;
        throw err;
      }
    };
    const locks = (navigator as Navigator & { locks?: LockManager }).locks;
    return locks ? locks.request("callbridge.refresh@" + this.server, run) : run();
  }

  #stateKey(): string {
    return `callbridge.desk@${this.server}/${this.#session?.tenant}/${this.#session?.username}`;
  }

  #loadState(): void {
    this.#talked.clear();
    this.#popped.clear();
    this.#wrapups.clear();
    try {
      const p = JSON.parse(sessionStorage.getItem(this.#stateKey()) || "null") as Persisted | null;
      if (!p) return;
      for (const id of p.talked ?? []) this.#talked.add(id);
      for (const id of p.popped ?? []) this.#popped.add(id);
      for (const w of p.wrapups ?? []) this.#wrapups.set(w.call.call_id, { ...w, saving: false });
    } catch {
      /* ignore */
    }
  }

  #saveState(): void {
    if (!this.#session) return;
    const keep = (s: Set<CallID>) => [...s].slice(-200);
    const p: Persisted = { talked: keep(this.#talked), popped: keep(this.#popped), wrapups: [...this.#wrapups.values()] };
    try {
      sessionStorage.setItem(this.#stateKey(), JSON.stringify(p));
    } catch {
      /* ignore */
    }
  }

  #start(s: Session, fresh: boolean): void {
    this.#stop();
    this.#session = s;
    this.#error = "";
    this.#info = "";
    this.#loadState();
    const client = s.refresh_token
      ? connect({ url: this.server, session: s, refresh: (cur) => this.#refreshShared(cur) })
      : connect({ url: this.server, token: s.token });
    this.#client = client;
    this.#desk = new AgentDesk(client, s.username);
    client.on("session", (ns) => {
      if (this.#client === client) this.#session = ns;
    });
    client.on("status", (st) => {
      this.#link = st;
      if (st.status === "closed" && (st.reason === "unauthorized" || st.reason === "token_expired" || st.reason === "signed_out")) {
        this.#clearSession();
        this.#stop();
        this.#info = st.reason === "signed_out" ? "You were signed out." : "Your session expired. Please sign in again.";
        this.#fire("callbridge:logout", { reason: st.reason });
      }
      this.#fire("callbridge:connection", st);
      this.#render();
    });
    client.on("snapshot", (m) => {
      for (const c of m.data.calls ?? []) {
        const cn = this.#desk?.myConnection(c);
        if (cn?.state === "connected" || cn?.state === "held") this.#talked.add(c.call_id);
      }
      this.#saveState();
      this.#fire("callbridge:snapshot", m.data);
    });
    this.#desk.onChange((ev) => {
      if ("seq" in ev && ev.type !== "snapshot") this.#event(ev as ServerEvent);
      this.#render();
    });
    this.#render();
    if (fresh) this.#fire("callbridge:login", { username: s.username, tenant: s.tenant, role: s.role });
  }

  #stop(): void {
    this.#desk?.dispose();
    this.#client?.close();
    this.#desk = null;
    this.#client = null;
    this.#session = null;
    this.#link = null;
    this.#consults.clear();
    this.#busy.clear();
  }

  #need(): Client {
    if (!this.#client) throw new LinkError("", "not_connected", "not signed in to callbridge");
    return this.#client;
  }

  // ---- events ----

  #fire(name: string, detail: unknown, cancelable = false): boolean {
    return this.dispatchEvent(new CustomEvent(name, { detail, bubbles: true, composed: true, cancelable }));
  }

  #isMe(d: CallEventData): boolean {
    const me = this.#session?.username;
    const dev = this.#desk?.agent?.device;
    return (!!me && d.agent === me) || (!!dev && d.device === dev);
  }

  #event(ev: ServerEvent): void {
    if (ev.type.startsWith("call.")) this.#callEvent(ev as CallEvent);
    this.#fire("callbridge:event", ev);
    this.#fire(domEventName(ev.type), ev);
  }

  #callEvent(ev: CallEvent): void {
    const d = ev.data;
    const id = d.call_id;
    const mine = this.#desk?.myConnection(d);
    let changed = false;
    if (mine && (mine.state === "connected" || mine.state === "held") && !this.#talked.has(id)) {
      this.#talked.add(id);
      changed = true;
    }
    const popOn = this.getAttribute("screen-pop-on") === "established" ? "call.established" : "call.delivered";
    if (ev.type === popOn && this.#isMe(d) && !this.#popped.has(id) && !d.consult_of) {
      this.#popped.add(id);
      changed = true;
      this.#pop(d);
    }
    const left =
      ev.type === "call.cleared" ||
      (ev.type === "call.connection_cleared" && this.#isMe(d)) ||
      (ev.type === "call.transferred" && !!this.#desk?.agent?.device && d.transferring_device === this.#desk.agent.device);
    if (left && this.#talked.has(id) && !d.consult_of && !this.#wrapups.has(id) && !isActive(mine?.state)) {
      const w: WrapUp = { call: { ...d }, ended_at: d.ended_at || ev.time };
      this.#wrapups.set(id, w);
      changed = true;
      this.#fire("callbridge:wrapup", w);
    }
    if (ev.type === "call.disposition_set" && this.#wrapups.delete(id)) {
      changed = true;
      this.#info = `Disposition saved: ${humanize(d.disposition ?? "")}.`;
    }
    // The event that ends this agent's part is their last of the call (no call.cleared follows).
    if (ev.type === "call.cleared" || (!mine && this.#isMe(d))) this.#consults.delete(id);
    if (changed) this.#saveState();
  }

  #pop(call: CallEventData): void {
    const tpl = this.getAttribute("screen-pop") || "";
    const url = tpl ? fillTemplate(tpl, call) : "";
    if (!this.#fire("callbridge:screenpop", { call, url } satisfies ScreenPopDetail, true)) return;
    if (this.screenPop) {
      try {
        this.screenPop(call);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
      }
      return;
    }
    if (!url) return;
    // Every tab gets the event; one of them opens the window.
    void firstTab(`callbridge.popped@${this.server}/${call.call_id}`).then((first) => {
      if (!first) return;
      const w = window.open(url, this.getAttribute("screen-pop-target") || "callbridge-pop");
      if (w) {
        try {
          w.opener = null;
        } catch {
          /* cross-origin */
        }
      }
    });
  }

  // ---- commands ----

  async #run<T>(cmd: string, callId: string, fn: () => Promise<T>): Promise<T> {
    const key = cmd + ":" + callId;
    this.#busy.add(key);
    this.#error = "";
    this.#info = "";
    this.#render();
    try {
      return await fn();
    } catch (err) {
      this.#showError(cmd, err);
      throw err;
    } finally {
      this.#busy.delete(key);
      this.#render();
    }
  }

  #showError(cmd: string, err: unknown): void {
    const label = COMMAND_LABEL[cmd] ?? cmd;
    let code = "internal";
    let message = String(err);
    if (err instanceof CallbridgeError) {
      code = err.code;
      message = err.message;
    }
    let text = `${label} failed: ${message} (${code})`;
    if (err instanceof CommandError && code === "invalid" && /unknown (cmd|command)/.test(message)) {
      text = `${label} is not supported by this callbridge server: ${message} (${code})`;
    } else if (err instanceof CommandError && code === "not_supported") {
      text = `${label} is not possible here: ${message} (${code})`;
    }
    this.#error = text;
    this.#fire("callbridge:error", { command: cmd, code, message } satisfies BarErrorDetail);
  }

  #pick(...states: string[]): CallID | undefined {
    const calls = [...(this.#desk?.calls.values() ?? [])];
    for (const st of states) {
      const c = calls.find((c) => this.#desk?.myConnection(c)?.state === st);
      if (c) return c.call_id;
    }
    return undefined;
  }

  #draft(key: string): string {
    return this.#drafts.get(key) ?? "";
  }

  #input(e: Event): void {
    const t = e.target as HTMLInputElement;
    const key = t.dataset?.key;
    if (key) this.#drafts.set(key, t.value);
  }

  #submit(e: Event): void {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    if (form.dataset.form === "login") {
      const f = new FormData(form);
      const username = String(f.get("username") ?? "").trim();
      const password = String(f.get("password") ?? "");
      const tenant = String(f.get("tenant") ?? "").trim() || undefined;
      this.#error = "";
      this.#info = "Signing in…";
      this.#render();
      this.login(username, password, tenant).then(
        () => {
          this.#info = "";
          this.#drafts.delete("password");
          this.#render();
        },
        (err: unknown) => {
          this.#info = "";
          this.#error = err instanceof CallbridgeError ? `Sign in failed: ${err.message}` : `Sign in failed: ${String(err)}`;
          this.#render();
        },
      );
    } else if (form.dataset.form === "dial") {
      const to = this.#draft("dial").trim();
      if (!to) return;
      this.dial(to).then(
        () => {
          this.#drafts.set("dial", "");
          this.#render();
        },
        () => {},
      );
    }
  }

  #click(e: Event): void {
    const btn = (e.target as HTMLElement).closest("button[data-action]") as HTMLButtonElement | null;
    if (!btn || btn.disabled) return;
    const act = btn.dataset.action!;
    const id = btn.dataset.call ?? "";
    const client = this.#client;
    const ignore = () => {};
    switch (act) {
      case "signout":
        this.logout();
        return;
      case "ready":
        this.setAgentState("ready").catch(ignore);
        return;
      case "not-ready":
        this.setAgentState("not_ready", this.#draft("reason") || this.#desk?.reasonCodes[0] || undefined).catch(ignore);
        return;
      case "log-off":
        this.setAgentState("logged_out").catch(ignore);
        return;
      case "retry":
        client?.reconnect();
        return;
    }
    if (!client) return;
    const note = this.#draft("note:" + id).trim();
    const to = this.#draft("to:" + id).trim();
    const data = note ? { [TRANSFER_NOTE_KEY]: note } : undefined;
    switch (act) {
      case "answer":
        this.answer(id).catch(ignore);
        break;
      case "hangup":
        this.hangUp(id).catch(ignore);
        break;
      case "hold":
        this.#run("hold_call", id, () => client.holdCall(id)).catch(ignore);
        break;
      case "retrieve":
        this.#run("retrieve_call", id, () => client.retrieveCall(id)).catch(ignore);
        break;
      case "blind":
        if (!to) return this.#needTarget();
        this.#run("single_step_transfer", id, () => client.singleStepTransfer(id, to, data)).then(() => this.#clearDrafts(id), ignore);
        break;
      case "consult":
        if (!to) return this.#needTarget();
        this.#run("consultation_call", id, () => client.consultationCall(id, to, data)).then((r) => {
          this.#consults.set(r.call_id, id);
          this.#render();
        }, ignore);
        break;
      case "complete": {
        const orig = btn.dataset.orig!;
        // The note written for the consultation travels on the transferred call too.
        const travel = this.#desk?.calls.get(id)?.attached_data?.[TRANSFER_NOTE_KEY];
        this.#run("transfer_call", orig, async () => {
          if (travel) await client.updateCallData(orig, { [TRANSFER_NOTE_KEY]: travel });
          return client.transferCall(orig, id);
        }).then(() => this.#clearDrafts(orig), ignore);
        break;
      }
      case "conference":
        this.#run("conference_call", btn.dataset.orig!, () => client.conferenceCall(btn.dataset.orig!, id)).catch(ignore);
        break;
      case "save-disposition": {
        const w = this.#wrapups.get(id);
        if (!w) return;
        const disposition = this.#draft("disp:" + id) || this.#dispositions()[0];
        const notes = this.#draft("notes:" + id).trim();
        w.saving = true;
        w.error = undefined;
        this.#run("set_disposition", id, () => client.setDisposition(id, disposition, notes || undefined)).then(
          () => {
            w.saving = false;
            if (this.#wrapups.delete(id)) this.#info = `Disposition saved: ${humanize(disposition)}.`;
            this.#saveState();
            this.#render();
          },
          () => {
            w.saving = false;
            w.error = this.#error;
            this.#saveState();
            this.#render();
          },
        );
        break;
      }
      case "dismiss":
        this.#wrapups.delete(id);
        this.#saveState();
        this.#render();
        break;
    }
  }

  #needTarget(): void {
    this.#error = "Enter a transfer target (agent, extension, queue or number).";
    this.#render();
  }

  #clearDrafts(id: string): void {
    this.#drafts.delete("to:" + id);
    this.#drafts.delete("note:" + id);
    this.#render();
  }

  #dispositions(): string[] {
    const a = (this.getAttribute("dispositions") || "").split(",").map((s) => s.trim()).filter(Boolean);
    return a.length ? a : DEFAULT_DISPOSITIONS;
  }

  // ---- rendering ----

  #updateTimers(): void {
    for (const el of this.#root.querySelectorAll<HTMLElement>("[data-since]")) el.textContent = since(el.dataset.since);
    for (const el of this.#root.querySelectorAll<HTMLElement>("[data-until]")) {
      const left = Math.max(0, Math.ceil((new Date(el.dataset.until!).getTime() - Date.now()) / 1000));
      el.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    }
  }

  #render(): void {
    if (!this.isConnected) return;
    // Keep focus and caret across the redraw.
    const active = this.#root.activeElement as HTMLInputElement | null;
    const focusKey = active?.dataset?.key ?? active?.dataset?.action;
    let sel: [number | null, number | null] = [null, null];
    try {
      sel = [active?.selectionStart ?? null, active?.selectionEnd ?? null];
    } catch {
      /* not a text input */
    }

    const bar = h("div", { class: "bar", part: "bar" });
    if (!this.#session) bar.append(this.#loginView());
    else bar.append(this.#deskView());
    bar.append(h("p", { class: "info muted", role: "status", text: this.#info }));
    bar.append(h("p", { class: "error", role: "alert", part: "error", text: this.#error }));
    // Update the drawn tree in place rather than replacing it: an element under the agent's
    // pointer must survive an event that arrives between mouse press and release, or the click
    // is lost. Keys keep each call's card and each button its own element, so a press on one
    // call's button can never release on another call's or another action's button.
    const drawn = this.#root.firstElementChild;
    if (drawn) morphdom(drawn, bar, { getNodeKey: nodeKey });
    else this.#root.replaceChildren(bar);

    if (focusKey) {
      const el = this.#root.querySelector<HTMLInputElement>(`[data-key="${CSS.escape(focusKey)}"], [data-action="${CSS.escape(focusKey)}"]`);
      if (el) {
        el.focus();
        try {
          if (sel[0] !== null) el.setSelectionRange(sel[0], sel[1]);
        } catch {
          /* not a text input */
        }
      }
    }
    this.#updateTimers();
  }

  #loginView(): Node {
    const f = h("form", { class: "login", "data-form": "login", part: "login" },
      h("span", { class: "brand", part: "brand", text: "callbridge" }),
      h("label", {}, "User name", h("input", { name: "username", autocomplete: "username", required: true, "data-key": "username" })),
      h("label", {}, "Password", h("input", { name: "password", type: "password", autocomplete: "current-password", required: true, "data-key": "password" })),
      h("label", {}, "Tenant", h("input", { name: "tenant", placeholder: "only if asked", "data-key": "tenant" })),
      h("button", { type: "submit", class: "primary", "data-action": "login", text: "Sign in" }),
    );
    for (const k of ["username", "password", "tenant"]) {
      const inp = f.querySelector<HTMLInputElement>(`[data-key="${k}"]`)!;
      inp.value = this.#draft(k);
    }
    return f;
  }

  #deskView(): Node {
    const frag = document.createDocumentFragment();
    const desk = this.#desk!;
    const a = desk.agent;
    const link = this.#link?.status ?? "connecting";
    const connected = link === "open";
    const linkText =
      link === "open" ? "Connected" : link === "reconnecting" ? `Reconnecting${this.#link?.retryInMs !== undefined ? ` in ${Math.ceil(this.#link.retryInMs / 1000)} s` : ""}…` : link === "closed" ? "Disconnected" : "Connecting…";

    // Row 1: who, link, agent state and its buttons, sign out.
    const state = a?.state ?? "";
    const pill = h("span", { class: "pill " + state, part: "state", "data-state": state },
      STATE_LABEL[state] ?? (state || "…"));
    if (state === "not_ready" && a?.reason) pill.append(" — " + humanize(a.reason));
    if (state === "working_after_call" && a?.wrap_up_until) pill.append(" ", h("span", { "data-until": a.wrap_up_until }));
    if (a?.next_state && a.next_state !== state) {
      const next = (STATE_LABEL[a.next_state] ?? a.next_state) + (a.next_reason ? " — " + humanize(a.next_reason) : "");
      pill.append(" ", h("span", { class: "next", "data-next": a.next_state, text: "then " + next }));
    }

    const reasons = h("select", { "data-key": "reason", "aria-label": "Not ready reason", part: "reason" });
    // The chosen option carries the selected attribute: the redraw (morphdom) takes the
    // selection from it.
    const reason = desk.reasonCodes.includes(this.#draft("reason")) ? this.#draft("reason") : desk.reasonCodes[0];
    for (const r of desk.reasonCodes) reasons.append(h("option", { value: r, text: humanize(r), selected: r === reason }));
    reasons.hidden = desk.reasonCodes.length === 0;

    const who = a?.name ? `${a.name} (${this.#session!.username})` : this.#session!.username;
    frag.append(h("div", { class: "row" },
      h("span", { class: "brand", part: "brand", text: "callbridge" }),
      h("span", { class: "dot " + link, title: linkText, part: "link", "data-link": link }),
      h("span", { class: "muted small", part: "link-text", "data-role": "link", text: linkText }),
      link === "reconnecting" ? h("button", { type: "button", "data-action": "retry", text: "Retry now" }) : null,
      h("span", { class: "who-am-i", text: who + (a?.device ? ` · ext ${a.device}` : "") }),
      pill,
      h("span", { class: "grow" }),
      h("button", { type: "button", class: state === "ready" || state === "busy" ? "" : "ok", "data-action": "ready", text: "Ready", disabled: !connected || state === "ready" || this.#busy.has("set_agent_state:") }),
      reasons,
      h("button", { type: "button", "data-action": "not-ready", text: "Not ready", disabled: !connected || this.#busy.has("set_agent_state:") }),
      h("button", { type: "button", "data-action": "log-off", text: "Log off", title: "Log off the queues", disabled: !connected || state === "logged_out" }),
      h("button", { type: "button", "data-action": "signout", text: "Sign out", title: "End this web session" }),
    ));

    // Row 2: make call.
    const dialInput = h("input", { class: "dial", "data-key": "dial", placeholder: "Number, extension or agent", "aria-label": "Number to call", inputmode: "tel", part: "dial" });
    dialInput.value = this.#draft("dial");
    frag.append(h("form", { class: "row", "data-form": "dial" },
      dialInput,
      h("button", { type: "submit", class: "primary", "data-action": "dial", text: "Call", disabled: !connected || this.#busy.has("make_call:") }),
    ));

    // Calls and wrap-ups.
    const cards = h("div", { class: "cards" });
    for (const c of desk.calls.values()) cards.append(this.#callCard(c, connected));
    for (const w of this.#wrapups.values()) cards.append(this.#wrapCard(w, connected));
    if (cards.childElementCount === 0) cards.append(h("p", { class: "muted small no-calls", text: state === "ready" ? "Waiting for a call…" : "No calls." }));
    frag.append(cards);
    return frag;
  }

  #callCard(c: Call, connected: boolean): Node {
    const desk = this.#desk!;
    const cn: Connection | undefined = desk.myConnection(c);
    const st = cn?.state ?? "";
    const id = c.call_id;
    const orig = c.consult_of && desk.calls.has(c.consult_of) ? c.consult_of : this.#consults.get(id);
    const isMyConsult = !!orig && desk.calls.has(orig);
    const card = h("div", { class: "card call " + st, "data-call": id, "data-state": st, part: "call" });

    const ani = c.ani || "unknown number";
    const dir = c.direction === "inbound" ? "Inbound" : c.direction === "outbound" ? "Outbound" : "Internal";
    card.append(h("h3", {},
      h("span", { class: "badge " + st, "data-role": "state", text: CONN_LABEL[st] ?? st }),
      h("span", { class: "who", "data-role": "ani", text: c.direction === "outbound" && c.dnis ? c.dnis : ani }),
      c.ani_name ? h("span", { "data-role": "ani-name", text: c.ani_name }) : null,
      h("span", { class: "muted", text: isMyConsult ? "Consultation" : dir }),
      h("span", { class: "muted", "data-since": c.answered_at || c.started_at }),
    ));
    const facts = h("div", { class: "facts small" });
    const fact = (label: string, v: string | undefined, role: string) => {
      if (v) facts.append(h("span", { "data-role": role }, label + " ", h("b", { text: v })));
    };
    fact("Caller", ani, "caller");
    fact("Dialed", c.dnis, "dnis");
    fact("Queue", c.queue, "queue");
    card.append(facts);

    const data = c.attached_data ?? {};
    const note = data[TRANSFER_NOTE_KEY];
    if (note) card.append(h("div", { class: "note", "data-role": "transfer-note", part: "note" }, h("b", { text: "Note: " }), note));
    const keys = Object.keys(data).filter((k) => k !== TRANSFER_NOTE_KEY).sort();
    if (keys.length) {
      const dl = h("dl", { class: "data", "data-role": "attached-data", part: "attached-data" });
      for (const k of keys) dl.append(h("dt", { text: humanize(k), title: k }), h("dd", { "data-key-name": k, text: data[k] }));
      card.append(dl);
    }

    const busy = (cmd: string) => this.#busy.has(cmd + ":" + id);
    const btn = (action: string, label: string, enabled: boolean, cls = "", extra: Record<string, string> = {}) =>
      h("button", { type: "button", class: cls, "data-action": action, "data-call": id, text: label, disabled: !connected || !enabled, ...extra });
    const row = h("div", { class: "row" },
      btn("answer", "Answer", st === "alerting" && !busy("answer_call"), "primary"),
      st === "held"
        ? btn("retrieve", "Retrieve", !busy("retrieve_call"))
        : btn("hold", "Hold", st === "connected" && !busy("hold_call")),
      btn("hangup", isMyConsult ? "Cancel consultation" : "Hang up", isActive(cn?.state) && !busy("clear_connection"), "danger"),
    );
    if (isMyConsult) {
      row.append(
        btn("complete", "Complete transfer", st === "connected" && !this.#busy.has("transfer_call:" + orig), "primary", { "data-orig": orig! }),
        btn("conference", "Conference", st === "connected" && !this.#busy.has("conference_call:" + orig), "", { "data-orig": orig! }),
      );
    }
    const tpl = this.getAttribute("screen-pop");
    if (tpl && !isMyConsult) row.append(h("a", { href: fillTemplate(tpl, c), target: this.getAttribute("screen-pop-target") || "callbridge-pop", rel: "noopener", "data-role": "crm-link", text: "Open in CRM" }));
    card.append(row);

    const consulting = [...desk.calls.values()].some((o) => o.consult_of === id);
    if ((st === "connected" || st === "held") && !isMyConsult && !consulting) {
      const to = h("input", { class: "to", "data-key": "to:" + id, placeholder: "Transfer to", "aria-label": "Transfer target" });
      to.value = this.#draft("to:" + id);
      const tnote = h("input", { class: "tnote", "data-key": "note:" + id, placeholder: "Note for the receiver (travels with the call)", "aria-label": "Transfer note", maxlength: "1000" });
      tnote.value = this.#draft("note:" + id);
      card.append(h("div", { class: "row transfer" },
        to, tnote,
        btn("blind", "Blind transfer", !busy("single_step_transfer")),
        btn("consult", "Consult", st === "connected" && !busy("consultation_call")),
      ));
    }
    return card;
  }

  #wrapCard(w: WrapUp, connected: boolean): Node {
    const id = w.call.call_id;
    const c = w.call;
    const sel = h("select", { "data-key": "disp:" + id, "aria-label": "Disposition" });
    const disp = this.#draft("disp:" + id) || this.#dispositions()[0];
    for (const d of this.#dispositions()) sel.append(h("option", { value: d, text: humanize(d), selected: d === disp }));
    const notes = h("textarea", { "data-key": "notes:" + id, placeholder: "Notes", "aria-label": "Wrap-up notes", maxlength: "1000" });
    notes.value = this.#draft("notes:" + id);
    const other = c.direction === "outbound" ? c.dnis || c.ani : c.ani;
    return h("div", { class: "card wrapup", "data-wrapup": id, part: "wrapup" },
      h("h3", {},
        h("span", { class: "badge", text: "Wrap-up" }),
        h("span", { class: "who", text: other || "call" }),
        c.queue ? h("span", { class: "muted", text: c.queue }) : null,
        h("span", { class: "muted", text: "ended " + clock(w.ended_at) }),
      ),
      h("div", { class: "row" }, h("label", { class: "muted", text: "Disposition" }), sel),
      h("div", { class: "row" }, notes),
      w.error ? h("p", { class: "error", "data-role": "wrapup-error", text: w.error }) : null,
      h("div", { class: "row" },
        h("button", { type: "button", class: "primary", "data-action": "save-disposition", "data-call": id, text: w.saving ? "Saving…" : "Save", disabled: !connected || !!w.saving }),
        h("button", { type: "button", "data-action": "dismiss", "data-call": id, text: "Dismiss" }),
      ),
    );
  }
}

if (!customElements.get("callbridge-bar")) customElements.define("callbridge-bar", CallbridgeBar);

declare global {
  interface HTMLElementTagNameMap {
    "callbridge-bar": CallbridgeBar;
  }
}
