// Built from web/src by `npm run build` (esbuild); do not edit.

// src/sdk/callbridge.ts
var CALL_EVENT_TYPES = [
  "call.originated",
  "call.delivered",
  "call.established",
  "call.held",
  "call.retrieved",
  "call.transferred",
  "call.conferenced",
  "call.diverted",
  "call.queued",
  "call.failed",
  "call.connection_cleared",
  "call.cleared",
  "call.data_updated",
  "call.disposition_set"
];
var AGENT_EVENT_TYPES = ["agent.state_changed", "agent.logged_on", "agent.logged_off"];
function isCallEvent(ev) {
  return ev.type.startsWith("call.");
}
var CallbridgeError = class extends Error {
  /** An API error code, or "unavailable" when the link is down. */
  code;
  /** From the Retry-After header of a `rate_limited` or `unavailable` answer: when to try again. */
  retryAfterMs;
  constructor(code, message, retryAfterMs) {
    super(message);
    this.name = "CallbridgeError";
    this.code = code;
    if (retryAfterMs !== void 0) this.retryAfterMs = retryAfterMs;
  }
};
var CommandError = class extends CallbridgeError {
  /** The command that was refused. */
  command;
  /** The id the command was sent with. */
  id;
  constructor(command, id, code, message) {
    super(code, message);
    this.name = "CommandError";
    this.command = command;
    this.id = id;
  }
};
var LinkError = class extends CallbridgeError {
  command;
  reason;
  constructor(command, reason, message) {
    super("unavailable", message);
    this.name = "LinkError";
    this.command = command;
    this.reason = reason;
  }
};
async function login(opts) {
  const body = { username: opts.username, password: opts.password };
  if (opts.tenant) body.tenant = opts.tenant;
  return await post(opts.fetch, opts.url, "/v1/login", body, void 0, "login");
}
async function refresh(opts) {
  return await post(opts.fetch, opts.url, "/v1/refresh", { refresh_token: opts.refreshToken }, void 0, "refresh");
}
async function logout(opts) {
  const body = opts.refreshToken ? { refresh_token: opts.refreshToken } : void 0;
  await post(opts.fetch, opts.url, "/v1/logout", body, opts.refreshToken ? void 0 : opts.token, "logout");
}
async function post(f0, url, path, body, token, what) {
  const f = f0 ?? fetch.bind(globalThis);
  const headers = {};
  if (body !== void 0) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = "Bearer " + token;
  let res;
  try {
    res = await f(httpBase(url) + path, { method: "POST", headers, body: body === void 0 ? void 0 : JSON.stringify(body) });
  } catch {
    throw new CallbridgeError("unavailable", "cannot reach the callbridge server (is this page's origin in --allowed-origins?)");
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const e = data && data.error;
    const ra = Number(res.headers.get("Retry-After"));
    throw new CallbridgeError(e?.code ?? "internal", e?.message ?? `${what} failed: HTTP ${res.status}`, ra > 0 ? ra * 1e3 : void 0);
  }
  if (data && typeof data === "object" && "token" in data) data.received_at = Date.now();
  return data;
}
function httpBase(url) {
  let u = (url ?? "").trim();
  if (!u) return globalThis.location ? globalThis.location.origin : "";
  u = u.replace(/^ws(s?):\/\//i, "http$1://").replace(/\/+$/, "");
  return u.replace(/\/v1\/ws$/, "");
}
function connect(opts) {
  return new Client(opts);
}
var Client = class {
  /** The server's http(s) base URL. */
  url;
  /** The seq of the last event (or snapshot) delivered; 0 before any. */
  lastSeq = 0;
  /** The latest snapshot (agents only). */
  snapshot = null;
  #opts;
  #backoff;
  #WS;
  #fetch;
  #token;
  #session = null;
  #refresher = null;
  #refreshing = null;
  #refreshTimer;
  #refreshFailures = 0;
  #tokenExpired = false;
  // the server said so (4001): refresh before the next attempt
  #handlers = /* @__PURE__ */ new Map();
  #status = "connecting";
  #ws = null;
  #next = null;
  // the socket of a token change, until it opens
  #retiring = /* @__PURE__ */ new Set();
  // replaced sockets, kept until their replies are in
  #haveSeq = false;
  #needResync = false;
  #attempt = 0;
  #opened = false;
  // the current socket opened
  #everOpen = false;
  #downSince;
  #retryTimer;
  #beatTimer;
  #deadTimer;
  #nextId = 1;
  #pending = /* @__PURE__ */ new Map();
  #closed = false;
  constructor(opts) {
    const token = opts?.session?.token ?? opts?.token;
    if (!opts || !token) throw new CallbridgeError("invalid", "connect: a session or token is required");
    this.#opts = { heartbeatMs: 2e4, heartbeatTimeoutMs: 1e4, commandTimeoutMs: 3e4, ...opts };
    this.#backoff = { initialMs: 500, maxMs: 15e3, factor: 2, jitter: 0.25, ...opts.backoff ?? {} };
    this.#WS = opts.WebSocket ?? globalThis.WebSocket;
    this.#fetch = opts.fetch ?? fetch.bind(globalThis);
    this.#token = token;
    this.url = httpBase(opts.url);
    if (opts.session) {
      this.#session = opts.session;
      if (opts.refresh) this.#refresher = opts.refresh;
      else if (opts.session.refresh_token)
        this.#refresher = (s2) => refresh({ url: this.url, refreshToken: s2.refresh_token ?? "", fetch: this.#fetch });
    }
    if (opts.afterSeq !== void 0 && opts.afterSeq >= 0) {
      this.lastSeq = opts.afterSeq;
      this.#haveSeq = true;
    }
    this.#scheduleRefresh();
    const s = this.#session;
    if (s && this.#refresher && s.expires_in !== void 0 && s.received_at !== void 0 && s.received_at + s.expires_in * 1e3 <= Date.now()) {
      this.#tokenExpired = true;
      this.#retry();
    } else {
      this.#open();
    }
  }
  /** The link's status. */
  get status() {
    return this.#status;
  }
  /** The current session (after refreshes), or null when connected with a bare token. */
  get session() {
    return this.#session;
  }
  /** on registers fn for events named type and returns a function that removes it. */
  on(type, fn) {
    let set = this.#handlers.get(type);
    if (!set) this.#handlers.set(type, set = /* @__PURE__ */ new Set());
    set.add(fn);
    return () => this.off(type, fn);
  }
  off(type, fn) {
    this.#handlers.get(type)?.delete(fn);
  }
  /**
   * send sends a command and resolves with its reply's data once the server accepted it; the
   * outcome arrives as events. Rejects with CommandError when the server refuses it, LinkError
   * when the link is down, drops before the reply, or no reply comes in time.
   */
  send(cmd, ...params) {
    return this.#send(cmd, params[0], this.#opts.commandTimeoutMs);
  }
  makeCall(to, attachedData) {
    return this.send("make_call", attachedData ? { to, attached_data: attachedData } : { to });
  }
  answerCall(callId) {
    return this.send("answer_call", { call_id: callId });
  }
  /** Hang up: the agent's own connection leaves the call. */
  clearConnection(callId) {
    return this.send("clear_connection", { call_id: callId });
  }
  clearCall(callId) {
    return this.send("clear_call", { call_id: callId });
  }
  holdCall(callId) {
    return this.send("hold_call", { call_id: callId });
  }
  retrieveCall(callId) {
    return this.send("retrieve_call", { call_id: callId });
  }
  /** Blind transfer; attachedData (e.g. a note) is merged into the call first. */
  singleStepTransfer(callId, to, attachedData) {
    return this.send("single_step_transfer", attachedData ? { call_id: callId, to, attached_data: attachedData } : { call_id: callId, to });
  }
  /** Start a consultative transfer: holds callId and calls `to`; resolves with the consultation's call_id. */
  consultationCall(callId, to, attachedData) {
    return this.send("consultation_call", attachedData ? { call_id: callId, to, attached_data: attachedData } : { call_id: callId, to });
  }
  /** Complete a consultative transfer of callId to the party of consultCallId. */
  transferCall(callId, consultCallId) {
    return this.send("transfer_call", consultCallId ? { call_id: callId, consult_call_id: consultCallId } : { call_id: callId });
  }
  conferenceCall(callId, consultCallId) {
    return this.send("conference_call", consultCallId ? { call_id: callId, consult_call_id: consultCallId } : { call_id: callId });
  }
  /** Merge attachedData into the call (an empty value deletes a key). */
  updateCallData(callId, attachedData) {
    return this.send("update_call_data", { call_id: callId, attached_data: attachedData });
  }
  setAgentState(state, reason) {
    return this.send("set_agent_state", reason ? { state, reason } : { state });
  }
  /** Save the wrap-up of a call: a disposition code and notes (emits call.disposition_set). */
  setDisposition(callId, disposition, notes) {
    return this.send("set_disposition", notes ? { call_id: callId, disposition, notes } : { call_id: callId, disposition });
  }
  /** A heartbeat round trip. */
  ping() {
    return this.send("ping");
  }
  /** reconnect drops the current socket (if any) and connects again at once, resuming. */
  reconnect() {
    if (this.#closed) return;
    this.#drop(void 0, "reconnect requested");
    clearTimeout(this.#retryTimer);
    this.#open();
  }
  /**
   * refreshNow refreshes the session at once (it is also done by itself before the access token
   * expires) and moves the link to the new token. Resolves false when there is nothing to
   * refresh with or the refresh failed.
   */
  refreshNow() {
    return this.#refreshNow();
  }
  /**
   * useSession adopts a newer session of the same login (for example one another tab refreshed
   * and stored): the link moves to its token without losing an event, and the next refresh is
   * timed by it.
   */
  useSession(s) {
    if (this.#closed || !s?.token || s.token === this.#token) return;
    this.#adopt(s);
  }
  /** close ends the link for good: no reconnect, pending commands fail with LinkError "closed". */
  close() {
    this.#end("closed");
  }
  // -- internals --
  #end(reason, closeCode) {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#refreshTimer);
    this.#stopBeat();
    for (const ws of [this.#ws, this.#next, ...this.#retiring]) {
      if (!ws) continue;
      this.#detach(ws);
      try {
        ws.close(1e3, "client closed");
      } catch {
      }
    }
    this.#ws = this.#next = null;
    this.#retiring.clear();
    this.#failPending("closed", "the client was closed");
    this.#setStatus(closeCode === void 0 ? { status: "closed", reason } : { status: "closed", reason, closeCode });
  }
  #emit(type, ev) {
    for (const fn of [...this.#handlers.get(type) ?? []]) {
      try {
        fn(ev);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
  #setStatus(change) {
    const previous = this.#status;
    this.#status = change.status;
    this.#emit("status", { ...change, previous, attempt: this.#attempt });
  }
  #wsURL() {
    let base = this.url.replace(/^http/i, "ws");
    let u = base + "/v1/ws?access_token=" + encodeURIComponent(this.#token);
    if (this.#haveSeq && !this.#needResync) u += "&after_seq=" + this.lastSeq;
    return u;
  }
  #open() {
    if (this.#closed) return;
    this.#opened = false;
    let ws;
    try {
      ws = new this.#WS(this.#wsURL());
    } catch (err) {
      this.#scheduleRetry(void 0);
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
      this.#downSince = void 0;
      this.#needResync = false;
      this.#setStatus({ status: "open", recovered, downSince });
      this.#armBeat();
    };
    this.#wire(ws);
  }
  /** wire handles the messages and the close of ws, the current socket or a retiring one. */
  #wire(ws) {
    ws.onmessage = (e) => {
      const current = this.#ws === ws;
      if (!current && !this.#retiring.has(ws)) return;
      if (current) this.#armBeat();
      let msg;
      try {
        msg = JSON.parse(typeof e.data === "string" ? e.data : "");
      } catch {
        return;
      }
      this.#handle(msg);
      if (!current) this.#retireIfIdle(ws);
    };
    ws.onclose = (e) => {
      if (this.#retiring.delete(ws)) {
        this.#failPending("lost", "the link dropped before the reply; the command may or may not have been carried out", ws);
        return;
      }
      if (this.#ws !== ws) return;
      this.#onDown(e.code, e.reason);
    };
    ws.onerror = () => {
    };
  }
  #detach(ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
  }
  /** drop abandons the current socket without waiting for its close handshake. */
  #drop(code, why) {
    const ws = this.#ws;
    if (!ws) return;
    this.#ws = null;
    this.#detach(ws);
    try {
      ws.close(4e3, why.slice(0, 100));
    } catch {
    }
    this.#stopBeat();
    this.#failPending("lost", "the link dropped before the reply; the command may or may not have been carried out", ws);
    void code;
  }
  #onDown(code, reason) {
    const wasOpen = this.#opened;
    const ws = this.#ws;
    this.#ws = null;
    this.#stopBeat();
    if (ws) this.#failPending("lost", "the link dropped before the reply; the command may or may not have been carried out", ws);
    if (code === 4002) {
      this.#end("signed_out", code);
      return;
    }
    if (code === 4009) {
      this.#end("too_many_connections", code);
      return;
    }
    if (code === 4001) {
      if (!this.#refresher) {
        this.#end("token_expired", code);
        return;
      }
      this.#tokenExpired = true;
    }
    if (code === 4008) this.#needResync = true;
    void reason;
    if (!wasOpen && code !== 4001) {
      void this.#checkToken().then((ok) => {
        if (this.#closed || this.#ws) return;
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
  async #checkToken() {
    try {
      const res = await this.#fetch(this.url + "/v1/me", { headers: { Authorization: "Bearer " + this.#token } });
      return res.status !== 401;
    } catch {
      return true;
    }
  }
  #scheduleRetry(code) {
    if (this.#closed) return;
    if (!this.#downSince) this.#downSince = /* @__PURE__ */ new Date();
    const b = this.#backoff;
    const base = Math.min(b.maxMs, b.initialMs * Math.pow(b.factor, this.#attempt));
    const delay = this.#tokenExpired && this.#attempt === 0 ? 0 : Math.max(0, Math.round(base * (1 - b.jitter + Math.random() * 2 * b.jitter)));
    this.#attempt++;
    this.#setStatus({ status: "reconnecting", retryInMs: delay, downSince: this.#downSince, closeCode: code });
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#retry(), delay);
  }
  /** retry opens the next socket, after a refresh when the token is known to be expired. */
  #retry() {
    if (this.#closed || this.#ws) return;
    if (!this.#tokenExpired) {
      this.#open();
      return;
    }
    void this.#refreshNow().then((ok) => {
      if (this.#closed || this.#ws) return;
      if (ok) this.#open();
      else this.#scheduleRetry(void 0);
    });
  }
  // ---- tokens ----
  /** refreshDelay is when to refresh s: at three quarters of its access token's lifetime. */
  #refreshDelay(s) {
    const now = Date.now();
    let due;
    if (s.expires_in !== void 0 && s.received_at !== void 0) due = s.received_at + 0.75 * s.expires_in * 1e3;
    else due = now + 0.75 * (Date.parse(s.expires_at) - now);
    if (!isFinite(due)) due = now + 6e4;
    return Math.min(2 ** 31 - 1, Math.max(5e3, due - now));
  }
  #scheduleRefresh(delay) {
    clearTimeout(this.#refreshTimer);
    const s = this.#session;
    if (!s || !this.#refresher || this.#closed) return;
    this.#refreshTimer = setTimeout(() => void this.#refreshNow(), delay ?? this.#refreshDelay(s));
  }
  #refreshNow() {
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
        this.#refreshFailures++;
        this.#scheduleRefresh(Math.min(3e4, 1e3 * 2 ** this.#refreshFailures));
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
  #adopt(s) {
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
  #swap() {
    const old = this.#ws;
    if (this.#closed || !old || !this.#opened) return;
    if (this.#next) {
      this.#detach(this.#next);
      try {
        this.#next.close(1e3, "superseded");
      } catch {
      }
    }
    let ws;
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
      if (this.#next === ws) this.#next = null;
    };
    ws.onerror = () => {
    };
  }
  /** retireIfIdle closes a replaced socket once no command waits for a reply on it. */
  #retireIfIdle(ws) {
    for (const p of this.#pending.values()) if (p.ws === ws) return;
    this.#retiring.delete(ws);
    this.#detach(ws);
    try {
      ws.close(1e3, "token refreshed");
    } catch {
    }
  }
  // Heartbeat: any message from the server shows life. After heartbeatMs of silence we ping;
  // when heartbeatTimeoutMs more pass with nothing, the link is dead (a half-open TCP
  // connection that the browser would notice only minutes later): drop and reconnect.
  #armBeat() {
    this.#stopBeat();
    this.#beatTimer = setTimeout(() => {
      const ws = this.#ws;
      if (!ws || ws.readyState !== 1) return;
      this.#send("ping", void 0, this.#opts.heartbeatTimeoutMs + 1e3).catch(() => {
      });
      this.#deadTimer = setTimeout(() => {
        if (this.#ws !== ws) return;
        this.#drop(void 0, "heartbeat timeout");
        this.#scheduleRetry(void 0);
      }, this.#opts.heartbeatTimeoutMs);
    }, this.#opts.heartbeatMs);
  }
  #stopBeat() {
    clearTimeout(this.#beatTimer);
    clearTimeout(this.#deadTimer);
  }
  #send(cmd, params, timeoutMs) {
    const ws = this.#ws;
    if (this.#closed) return Promise.reject(new LinkError(cmd, "closed", "the client was closed"));
    if (!ws || ws.readyState !== 1 || !this.#opened) {
      return Promise.reject(new LinkError(cmd, "not_connected", "not connected to callbridge; try again when the link is back"));
    }
    const id = (cmd === "ping" ? "p" : "c") + this.#nextId++;
    const msg = { id, cmd };
    if (params !== void 0) msg.params = params;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const p = this.#pending.get(id);
        if (!p) return;
        this.#pending.delete(id);
        reject(new LinkError(cmd, "timeout", `no reply to ${cmd} within ${Math.round(timeoutMs / 1e3)} s`));
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
  #failPending(reason, message, ws) {
    for (const [id, p] of [...this.#pending]) {
      if (ws && p.ws !== ws) continue;
      this.#pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new LinkError(p.cmd, reason, message));
    }
  }
  #handle(msg) {
    if (msg === null || typeof msg !== "object") return;
    if ("ok" in msg) {
      const p = typeof msg.re === "string" ? this.#pending.get(msg.re) : void 0;
      if (!p) return;
      this.#pending.delete(msg.re);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg.data ?? {});
      else p.reject(new CommandError(p.cmd, msg.re, msg.error?.code ?? "internal", msg.error?.message ?? "the command failed"));
      return;
    }
    if (msg.type === "resync") {
      this.lastSeq = msg.seq;
      this.#haveSeq = true;
      if (msg.data) {
        this.snapshot = msg.data;
        this.#emit("snapshot", { type: "snapshot", seq: msg.seq, data: msg.data, resync: true });
      }
      this.#emit("resync", { type: "resync", reason: String(msg.reason ?? ""), seq: msg.seq, data: msg.data });
      return;
    }
    if (msg.type === "snapshot") {
      const resync = this.#haveSeq;
      this.snapshot = msg.data;
      this.lastSeq = msg.seq;
      this.#haveSeq = true;
      this.#emit("snapshot", { type: "snapshot", seq: msg.seq, data: msg.data, resync });
      return;
    }
    if (typeof msg.seq !== "number" || typeof msg.type !== "string") return;
    if (this.#haveSeq && msg.seq <= this.lastSeq) return;
    this.lastSeq = msg.seq;
    this.#haveSeq = true;
    const ev = msg;
    this.#emit("event", ev);
    if (isCallEvent(ev)) this.#emit("call", ev);
    else if (ev.type.startsWith("agent.")) this.#emit("agent", ev);
    this.#emit(ev.type, ev);
  }
};
var ACTIVE = /* @__PURE__ */ new Set(["initiated", "alerting", "connected", "held"]);
function isActive(s) {
  return s !== void 0 && ACTIVE.has(s);
}
var AgentDesk = class {
  constructor(client, username) {
    this.client = client;
    this.username = username;
    if (client.snapshot) this.#applySnapshot(client.snapshot);
    this.#off.push(
      client.on("snapshot", (m) => {
        this.#applySnapshot(m.data);
        this.#changed(m);
      }),
      client.on("event", (ev) => {
        this.#apply(ev);
        this.#changed(ev);
      })
    );
  }
  client;
  username;
  agent = null;
  reasonCodes = [];
  /** Active calls of this agent by call_id, in arrival order. */
  calls = /* @__PURE__ */ new Map();
  #fns = /* @__PURE__ */ new Set();
  #off = [];
  /** onChange calls fn after every snapshot and event has been applied. */
  onChange(fn) {
    this.#fns.add(fn);
    return () => this.#fns.delete(fn);
  }
  /**
   * myConnection is this agent's connection to c (by agent name or device). The queue
   * connection of a waiting call (state "queued") is never the agent's, even when a queue is
   * named like their device.
   */
  myConnection(c) {
    const dev = this.agent?.device;
    return (c.connections ?? []).find((cn) => cn.state !== "queued" && (cn.agent === this.username || dev !== void 0 && cn.device === dev));
  }
  dispose() {
    for (const off of this.#off) off();
    this.#fns.clear();
  }
  #changed(ev) {
    for (const fn of [...this.#fns]) fn(ev);
  }
  #applySnapshot(s) {
    this.agent = s.agent;
    this.reasonCodes = s.reason_codes ?? [];
    this.calls.clear();
    for (const c of s.calls ?? []) this.#keep(c);
  }
  #apply(ev) {
    if (!isCallEvent(ev)) {
      this.agent = { ...this.agent ?? {}, ...ev.data };
      return;
    }
    if (ev.type === "call.cleared") {
      this.calls.delete(ev.data.call_id);
      return;
    }
    if (ev.type === "call.disposition_set") return;
    this.#keep(stripEventFields(ev.data));
  }
  #keep(c) {
    if (isActive(this.myConnection(c)?.state)) this.calls.set(c.call_id, c);
    else this.calls.delete(c.call_id);
  }
};
function stripEventFields(d) {
  const call = { ...d };
  for (const k of EVENT_ONLY_FIELDS) delete call[k];
  return call;
}
var EVENT_ONLY_FIELDS = ["device", "agent", "cause", "transferring_device", "transferred_to", "diverted_to", "consult_call_id", "disposition", "notes"];
export {
  AGENT_EVENT_TYPES,
  AgentDesk,
  CALL_EVENT_TYPES,
  CallbridgeError,
  Client,
  CommandError,
  LinkError,
  connect,
  httpBase,
  isActive,
  isCallEvent,
  login,
  logout,
  refresh,
  stripEventFields
};
