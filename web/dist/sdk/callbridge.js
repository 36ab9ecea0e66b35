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
  constructor(code, message) {
    super(message);
    this.name = "CallbridgeError";
    this.code = code;
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
  const f = opts.fetch ?? fetch.bind(globalThis);
  let res;
  try {
    res = await f(httpBase(opts.url) + "/v1/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    });
  } catch {
    throw new CallbridgeError("unavailable", "cannot reach the callbridge server (is this page's origin in --allowed-origins?)");
  }
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const e = data && data.error;
    throw new CallbridgeError(e?.code ?? "internal", e?.message ?? `login failed: HTTP ${res.status}`);
  }
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
  #handlers = /* @__PURE__ */ new Map();
  #status = "connecting";
  #ws = null;
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
    if (!opts || !opts.token) throw new CallbridgeError("invalid", "connect: token is required");
    this.#opts = { heartbeatMs: 2e4, heartbeatTimeoutMs: 1e4, commandTimeoutMs: 3e4, ...opts };
    this.#backoff = { initialMs: 500, maxMs: 15e3, factor: 2, jitter: 0.25, ...opts.backoff ?? {} };
    this.#WS = opts.WebSocket ?? globalThis.WebSocket;
    this.#fetch = opts.fetch ?? fetch.bind(globalThis);
    this.#token = opts.token;
    this.url = httpBase(opts.url);
    if (opts.afterSeq !== void 0 && opts.afterSeq >= 0) {
      this.lastSeq = opts.afterSeq;
      this.#haveSeq = true;
    }
    this.#open();
  }
  /** The link's status. */
  get status() {
    return this.#status;
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
  /** close ends the link for good: no reconnect, pending commands fail with LinkError "closed". */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#stopBeat();
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      this.#detach(ws);
      try {
        ws.close(1e3, "client closed");
      } catch {
      }
    }
    this.#failPending("closed", "the client was closed");
    this.#setStatus({ status: "closed", reason: "closed" });
  }
  // -- internals --
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
    ws.onmessage = (e) => {
      if (this.#ws !== ws) return;
      this.#armBeat();
      let msg;
      try {
        msg = JSON.parse(typeof e.data === "string" ? e.data : "");
      } catch {
        return;
      }
      this.#handle(msg);
    };
    ws.onclose = (e) => {
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
    this.#failPending("lost", "the link dropped before the reply; the command may or may not have been carried out");
    void code;
  }
  #onDown(code, reason) {
    const wasOpen = this.#opened;
    this.#ws = null;
    this.#stopBeat();
    this.#failPending("lost", "the link dropped before the reply; the command may or may not have been carried out");
    if (code === 4001) {
      this.#closed = true;
      this.#setStatus({ status: "closed", reason: "token_expired", closeCode: code });
      return;
    }
    if (code === 4008) this.#needResync = true;
    void reason;
    if (!wasOpen) {
      void this.#checkToken().then((ok) => {
        if (this.#closed || this.#ws) return;
        if (!ok) {
          this.#closed = true;
          this.#setStatus({ status: "closed", reason: "unauthorized", closeCode: code });
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
    const delay = Math.max(0, Math.round(base * (1 - b.jitter + Math.random() * 2 * b.jitter)));
    this.#attempt++;
    this.#setStatus({ status: "reconnecting", retryInMs: delay, downSince: this.#downSince, closeCode: code });
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#open(), delay);
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
        if (this.#pending.delete(id)) reject(new LinkError(cmd, "timeout", `no reply to ${cmd} within ${Math.round(timeoutMs / 1e3)} s`));
      }, timeoutMs);
      this.#pending.set(id, { cmd, resolve, reject, timer });
      try {
        ws.send(JSON.stringify(msg));
      } catch {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new LinkError(cmd, "not_connected", "not connected to callbridge; try again when the link is back"));
      }
    });
  }
  #failPending(reason, message) {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of all) {
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
  /** myConnection is this agent's connection to c (by agent name or device). */
  myConnection(c) {
    const dev = this.agent?.device;
    return (c.connections ?? []).find((cn) => cn.agent === this.username || dev !== void 0 && cn.device === dev);
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
var EVENT_ONLY_FIELDS = ["device", "agent", "cause", "transferring_device", "transferred_to", "consult_call_id", "disposition", "notes"];
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
  stripEventFields
};
