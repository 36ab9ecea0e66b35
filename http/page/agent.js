// callbridge agent page: plain JavaScript, no build step. All data from the server is put
// into the page with textContent, never as HTML.
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const ACTIVE = new Set(["initiated", "alerting", "connected", "held"]);

  const st = {
    token: sessionStorage.getItem("cb.token") || "",
    user: JSON.parse(sessionStorage.getItem("cb.user") || "null"),
    ws: null,
    lastSeq: 0,          // last event seq seen; reconnects resume after it
    agent: null,         // the agent (snapshot, then agent.* events)
    reasons: [],         // not_ready reason codes from the snapshot
    calls: new Map(),    // call_id -> call
    nextId: 1,
    pending: new Map(),  // command id -> cmd name
    retries: 0,
    reconnectTimer: 0,
    pingTimer: 0,
  };

  // ---- sign in / out ------------------------------------------------------------------

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const body = { username: f.username.value.trim(), password: f.password.value };
    if (f.tenant.value.trim()) body.tenant = f.tenant.value.trim();
    $("login-error").textContent = "";
    try {
      const res = await fetch("/v1/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const data = await res.json();
      if (!res.ok) {
        $("login-error").textContent = (data.error && data.error.message) || "Sign in failed.";
        return;
      }
      st.token = data.token;
      st.user = { username: data.username, tenant: data.tenant, role: data.role };
      sessionStorage.setItem("cb.token", st.token);
      sessionStorage.setItem("cb.user", JSON.stringify(st.user));
      f.password.value = "";
      startDesk();
    } catch (e) {
      $("login-error").textContent = "Cannot reach the server.";
    }
  });

  $("signout").addEventListener("click", () => signOut(""));

  function signOut(message) {
    st.token = "";
    st.user = null;
    sessionStorage.removeItem("cb.token");
    sessionStorage.removeItem("cb.user");
    clearTimeout(st.reconnectTimer);
    stopPing();
    const ws = st.ws;
    st.ws = null;
    if (ws) ws.close(1000, "signed out");
    st.lastSeq = 0;
    st.agent = null;
    st.calls.clear();
    $("desk-view").hidden = true;
    $("login-view").hidden = false;
    $("signout").hidden = true;
    $("who").textContent = "";
    $("login-error").textContent = message;
    setConn("off", "signed out");
  }

  function startDesk() {
    $("login-view").hidden = true;
    $("desk-view").hidden = false;
    $("signout").hidden = false;
    $("who").textContent = st.user.username + " @ " + st.user.tenant + " (" + st.user.role + ")";
    render();
    connect();
  }

  // ---- the WebSocket -------------------------------------------------------------------

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    let url = proto + "//" + location.host + "/v1/ws?access_token=" + encodeURIComponent(st.token);
    if (st.lastSeq > 0) url += "&after_seq=" + st.lastSeq;
    setConn("wait", "connecting…");
    const ws = new WebSocket(url);
    st.ws = ws;
    ws.onopen = () => {
      st.retries = 0;
      setConn("on", "connected");
      startPing();
    };
    ws.onmessage = (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      handle(msg);
    };
    ws.onclose = (e) => {
      if (st.ws !== ws) return; // replaced or signed out
      st.ws = null;
      stopPing();
      st.pending.clear();
      if (e.code === 4001) { signOut("Your session expired. Please sign in again."); return; }
      if (e.code === 4008) st.lastSeq = 0; // too far behind: start again from a snapshot
      scheduleReconnect();
    };
  }

  async function scheduleReconnect() {
    // A failed upgrade shows no HTTP status to JavaScript: ask /v1/me whether the token is good.
    try {
      const res = await fetch("/v1/me", { headers: { Authorization: "Bearer " + st.token } });
      if (res.status === 401) { signOut("Your session expired. Please sign in again."); return; }
    } catch (e) { /* server unreachable: retry below */ }
    if (!st.token) return;
    const delay = Math.min(15000, 1000 * 2 ** st.retries) * (0.75 + Math.random() / 2);
    st.retries++;
    setConn("off", "disconnected, retrying in " + Math.round(delay / 1000) + " s");
    clearTimeout(st.reconnectTimer);
    st.reconnectTimer = setTimeout(connect, delay);
  }

  function startPing() {
    stopPing();
    st.pingTimer = setInterval(() => send("ping", undefined, true), 20000);
  }
  function stopPing() { clearInterval(st.pingTimer); }

  function send(cmd, params, quiet) {
    if (!st.ws || st.ws.readyState !== WebSocket.OPEN) {
      if (!quiet) showError("Not connected; try again in a moment.");
      return;
    }
    const id = (quiet ? "p" : "c") + st.nextId++;
    st.pending.set(id, cmd);
    const msg = { id: id, cmd: cmd };
    if (params) msg.params = params;
    st.ws.send(JSON.stringify(msg));
  }

  function handle(msg) {
    if ("ok" in msg) { // a reply
      const cmd = st.pending.get(msg.re) || "command";
      st.pending.delete(msg.re);
      if (!msg.ok) showError(cmd + ": " + (msg.error ? msg.error.message + " (" + msg.error.code + ")" : "failed"));
      else if (cmd !== "ping") showError("");
      return;
    }
    if (msg.type === "snapshot") {
      applySnapshot(msg.data);
      st.lastSeq = msg.seq;
      render();
      return;
    }
    if (typeof msg.seq !== "number" || msg.seq <= st.lastSeq) return; // not an event, or seen
    st.lastSeq = msg.seq;
    applyEvent(msg);
    render();
  }

  // ---- the model -----------------------------------------------------------------------

  function applySnapshot(snap) {
    st.agent = snap.agent;
    st.reasons = snap.reason_codes || [];
    st.calls.clear();
    for (const c of snap.calls || []) keepOrDrop(c);
  }

  function applyEvent(ev) {
    if (ev.type.startsWith("agent.")) {
      st.agent = Object.assign({}, st.agent, ev.data);
      return;
    }
    if (!ev.type.startsWith("call.") || !ev.data) return;
    if (ev.type === "call.cleared") {
      st.calls.delete(ev.data.call_id);
      return;
    }
    keepOrDrop(ev.data);
  }

  // myConnection is the connection of this agent (by agent name or device) to call c.
  function myConnection(c) {
    const me = st.user && st.user.username;
    const dev = st.agent && st.agent.device;
    return (c.connections || []).find((cn) => cn.agent === me || (dev && cn.device === dev));
  }

  // keepOrDrop shows call c while this agent has an active connection to it.
  function keepOrDrop(c) {
    const cn = myConnection(c);
    if (cn && ACTIVE.has(cn.state)) st.calls.set(c.call_id, c);
    else st.calls.delete(c.call_id);
  }

  // ---- rendering -----------------------------------------------------------------------

  function setConn(kind, text) {
    const el = $("conn");
    el.className = "status " + kind;
    el.textContent = text;
  }

  function showError(text) { $("cmd-error").textContent = text; }

  function render() {
    const a = st.agent;
    $("agent-state").textContent = a ? a.state.replaceAll("_", " ") : "unknown";
    $("agent-reason").textContent = a && a.reason ? "(" + a.reason + ")" : "";

    const sel = $("reason-select");
    const chosen = sel.value;
    sel.replaceChildren();
    for (const r of st.reasons) {
      const o = document.createElement("option");
      o.value = r;
      o.textContent = r.replaceAll("_", " ");
      sel.append(o);
    }
    if (st.reasons.includes(chosen)) sel.value = chosen;
    sel.hidden = st.reasons.length === 0;

    // Rebuild the call cards, keeping any transfer target being typed.
    const list = $("calls");
    const typed = new Map();
    for (const card of list.children) typed.set(card.dataset.callId, card.querySelector(".c-to").value);
    list.replaceChildren();
    for (const c of st.calls.values()) {
      const card = callCard(c);
      card.querySelector(".c-to").value = typed.get(c.call_id) || "";
      list.append(card);
    }
    $("no-calls").hidden = st.calls.size > 0;
  }

  function callCard(c) {
    const card = $("call-tpl").content.firstElementChild.cloneNode(true);
    card.dataset.callId = c.call_id;
    const q = (cls) => card.querySelector("." + cls);
    const cn = myConnection(c) || { state: "" };
    q("c-state").textContent = cn.state === "alerting" ? "ringing" : cn.state;
    q("c-dir").textContent = c.direction || "";
    q("c-id").textContent = c.call_id;
    q("c-ani").textContent = (c.ani || "unknown") + (c.ani_name ? " — " + c.ani_name : "");
    q("c-dnis").textContent = c.dnis || "—";
    q("c-queue").textContent = c.queue || "—";
    if (cn.state === "alerting") card.classList.add("ringing");

    const body = card.querySelector("tbody");
    const keys = Object.keys(c.attached_data || {}).sort();
    for (const k of keys) {
      const tr = document.createElement("tr");
      const key = document.createElement("td");
      const val = document.createElement("td");
      key.textContent = k;
      val.textContent = c.attached_data[k];
      tr.append(key, val);
      body.append(tr);
    }
    if (keys.length === 0) q("c-data").hidden = true;

    const id = c.call_id;
    const btn = (cls, enabled, fn) => {
      const b = q(cls);
      b.disabled = !enabled;
      b.addEventListener("click", fn);
    };
    btn("c-answer", cn.state === "alerting", () => send("answer_call", { call_id: id }));
    btn("c-hold", cn.state === "connected", () => send("hold_call", { call_id: id }));
    btn("c-retrieve", cn.state === "held", () => send("retrieve_call", { call_id: id }));
    btn("c-hangup", ACTIVE.has(cn.state), () => send("clear_connection", { call_id: id }));
    btn("c-transfer", cn.state === "connected" || cn.state === "held", () => {
      const to = q("c-to").value.trim();
      if (!to) { showError("Enter a transfer target."); return; }
      send("single_step_transfer", { call_id: id, to: to });
    });
    return card;
  }

  // ---- agent buttons -------------------------------------------------------------------

  $("btn-ready").addEventListener("click", () => send("set_agent_state", { state: "ready" }));
  $("btn-notready").addEventListener("click", () => {
    const p = { state: "not_ready" };
    if ($("reason-select").value) p.reason = $("reason-select").value;
    send("set_agent_state", p);
  });
  $("btn-logout").addEventListener("click", () => send("set_agent_state", { state: "logged_out" }));
  $("dial-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const to = ev.target.to.value.trim();
    if (to) send("make_call", { to: to });
  });

  if (st.token && st.user) startDesk();
})();
