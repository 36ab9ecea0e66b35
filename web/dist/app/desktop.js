// Built from web/src by `npm run build` (esbuild); do not edit.

// src/app/desktop.ts
import { TRANSFER_NOTE_KEY, humanize, since } from "/sdk/callbridge-bar.js";
var $ = (id) => document.getElementById(id);
var bar = $("bar");
var rows = /* @__PURE__ */ new Map();
var recoveredTimer;
function clock(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}
function el(tag, text = "", cls = "") {
  const e = document.createElement(tag);
  if (text) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}
function historyKey(s) {
  return s ? `callbridge.history/${s.tenant}/${s.username}` : "";
}
function loadHistory() {
  rows.clear();
  const key = historyKey(bar.session);
  if (!key) return;
  try {
    for (const r of JSON.parse(sessionStorage.getItem(key) || "[]")) rows.set(r.call.call_id, r);
  } catch {
  }
}
function saveHistory() {
  const key = historyKey(bar.session);
  if (!key) return;
  try {
    sessionStorage.setItem(key, JSON.stringify([...rows.values()].slice(-100)));
  } catch {
  }
}
function isMe(d) {
  const dev = bar.desk?.agent?.device;
  return d.agent === bar.session?.username || !!dev && d.device === dev;
}
function record(ev) {
  const d = ev.data;
  const mine = bar.desk?.myConnection(d);
  let r = rows.get(d.call_id);
  if (!r) {
    if (!mine && !isMe(d)) return;
    r = { call: d, first_seen: ev.time, result: "" };
    rows.set(d.call_id, r);
  }
  const { device, agent, cause, transferring_device, transferred_to, diverted_to, consult_call_id, disposition, notes, ...call } = d;
  r.call = call;
  if (mine?.state === "connected" && !r.answered_at) r.answered_at = ev.time;
  if (mine?.state === "alerting" && !r.answered_at) r.result = "Ringing";
  if (mine?.state === "connected" || mine?.state === "held") r.result = "Talking";
  if ((ev.type === "call.failed" || ev.type === "call.diverted") && isMe(d) && !r.answered_at) {
    r.result = cause === "busy" ? "Busy" : "Missed";
    r.ended_at ??= ev.time;
  }
  if (ev.type === "call.transferred" && transferring_device && transferring_device === bar.desk?.agent?.device) {
    r.result = "Transferred";
    r.ended_at ??= ev.time;
  }
  if (ev.type === "call.connection_cleared" && isMe(d) && !r.ended_at) {
    r.ended_at = ev.time;
    if (r.result === "Talking") r.result = "Answered";
    else if (!r.answered_at && r.result === "Ringing") r.result = "Missed";
  }
  if (ev.type === "call.cleared") {
    r.ended_at ??= d.ended_at || ev.time;
    if (r.result === "Talking" || r.answered_at && !r.result) r.result = "Answered";
    else if (!r.answered_at && r.result !== "Missed" && r.result !== "Transferred")
      r.result = cause === "call_abandoned" ? "Abandoned" : cause === "busy" ? "Busy" : r.call.direction === "outbound" ? "Not answered" : "Missed";
  }
  if (ev.type === "call.disposition_set") {
    r.disposition = disposition;
    r.notes = notes;
  }
  saveHistory();
}
function renderHistory() {
  const body = $("h-table").querySelector("tbody");
  const list = [...rows.values()].reverse();
  const active = bar.desk?.calls;
  body.replaceChildren(
    ...list.map((r) => {
      const tr = el("tr");
      tr.dataset.call = r.call.call_id;
      if (active?.has(r.call.call_id)) tr.className = "active";
      const who = r.call.direction === "outbound" ? r.call.dnis || "" : r.call.ani || "unknown";
      const talk = r.answered_at ? since(r.answered_at, r.ended_at ? new Date(r.ended_at).getTime() : Date.now()) : "—";
      tr.append(
        el("td", clock(r.first_seen)),
        el("td", who + (r.call.ani_name && r.call.direction !== "outbound" ? " — " + r.call.ani_name : ""), "caller"),
        el("td", r.call.queue || "—"),
        el("td", talk),
        el("td", r.result),
        el("td", r.disposition ? humanize(r.disposition) + (r.notes ? ": " + r.notes : "") : "")
      );
      return tr;
    })
  );
  $("h-table").hidden = list.length === 0;
  $("h-empty").hidden = list.length > 0;
  $("h-count").textContent = list.length ? `(${list.length})` : "";
}
function focus() {
  const desk = bar.desk;
  if (desk) {
    const calls = [...desk.calls.values()];
    for (const st of ["alerting", "connected", "held", "initiated"]) {
      const c = calls.find((c2) => desk.myConnection(c2)?.state === st);
      if (c) return { call: c, state: st };
    }
  }
  const last = [...rows.values()].pop();
  return last ? { call: last.call, state: "ended" } : null;
}
var STATE_TEXT = { alerting: "Ringing", connected: "Talking", held: "On hold", initiated: "Dialing", ended: "Ended" };
function renderDetails() {
  const f = bar.session ? focus() : null;
  $("details-empty").hidden = !!f;
  $("details-body").hidden = !f;
  if (!f) return;
  const c = f.call;
  const tag = $("d-state");
  tag.textContent = STATE_TEXT[f.state] ?? f.state;
  tag.className = "tag " + f.state;
  $("d-who").textContent = (c.direction === "outbound" ? c.dnis : c.ani) || "unknown number";
  $("d-name").textContent = c.direction !== "outbound" && c.ani_name ? c.ani_name : "";
  $("d-ani").textContent = c.ani || "—";
  $("d-dnis").textContent = c.dnis || "—";
  $("d-queue").textContent = c.queue || "—";
  $("d-dir").textContent = humanize(c.direction || "");
  $("d-started").textContent = clock(c.started_at);
  $("d-id").textContent = c.call_id;
  const data = c.attached_data ?? {};
  const note = data[TRANSFER_NOTE_KEY];
  $("d-note").hidden = !note;
  $("d-note").textContent = note ? "Note with the call: " + note : "";
  const keys = Object.keys(data).filter((k) => k !== TRANSFER_NOTE_KEY).sort();
  $("d-nodata").hidden = keys.length > 0;
  $("d-data").replaceChildren(
    ...keys.flatMap((k) => {
      const dt = el("dt", humanize(k));
      dt.append(el("small", k));
      const dd = el("dd", data[k]);
      dd.dataset.key = k;
      return [dt, dd];
    })
  );
}
function render() {
  renderDetails();
  renderHistory();
}
function setLink(cls, text) {
  const e = $("link");
  e.className = "link " + cls;
  e.textContent = text;
  e.dataset.state = cls;
}
function onStatus(st) {
  clearTimeout(recoveredTimer);
  switch (st.status) {
    case "connecting":
      setLink("wait", "Connecting…");
      break;
    case "open":
      if (st.recovered) {
        const down = st.downSince ? Math.max(1, Math.round((Date.now() - st.downSince.getTime()) / 1e3)) : 0;
        setLink("recovered", `Link recovered at ${clock((/* @__PURE__ */ new Date()).toISOString())}${down ? ` after ${down} s` : ""} — missed events replayed`);
        recoveredTimer = setTimeout(() => setLink("on", "Connected"), 15e3);
      } else {
        setLink("on", "Connected");
      }
      break;
    case "reconnecting":
      setLink("down", `Link down since ${clock(st.downSince?.toISOString())} — retrying in ${Math.ceil((st.retryInMs ?? 0) / 1e3)} s`);
      break;
    case "closed":
      setLink(bar.session ? "down" : "off", bar.session ? "Disconnected" : "Signed out");
      break;
  }
}
bar.addEventListener("callbridge:login", () => {
  loadHistory();
  render();
});
bar.addEventListener("callbridge:logout", () => {
  rows.clear();
  setLink("off", "Signed out");
  render();
});
bar.addEventListener("callbridge:connection", (e) => onStatus(e.detail));
bar.addEventListener("callbridge:snapshot", () => render());
bar.addEventListener("callbridge:event", (e) => {
  const ev = e.detail;
  if (ev.type.startsWith("call.")) record(ev);
  render();
});
window.addEventListener("keydown", (e) => {
  if (!e.altKey || e.ctrlKey || e.metaKey || e.repeat) return;
  if (e.code === "KeyA") {
    e.preventDefault();
    bar.answer().catch(() => {
    });
  } else if (e.code === "KeyH") {
    e.preventDefault();
    bar.hangUp().catch(() => {
    });
  }
});
setInterval(() => {
  if (bar.desk?.calls.size) renderHistory();
}, 1e3);
customElements.whenDefined("callbridge-bar").then(() => {
  if (bar.session) {
    loadHistory();
    if (bar.client) onStatus({ status: bar.client.status, previous: "connecting", attempt: 0 });
  }
  render();
});
