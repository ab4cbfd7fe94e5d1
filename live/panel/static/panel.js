// Sextant panel: live updates over server-sent events and POSTs with the CSRF token.
// window.sextant.on(topic, fn) calls fn(payload) for every update of the topic;
// window.sextant.post(url, body) answers the JSON reply and shows a refusal, naming its field.
(function () {
  "use strict";
  const handlers = {};
  const listening = new Set();
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const latencies = [];  // ms from the event (server clock) to its arrival here: the bench reads it
  let source = null;

  function connect() {
    if (!csrf) return;  // the login page has no session
    source = new EventSource("/api/events");
    const state = document.getElementById("live-state");
    source.onopen = function () { if (state) state.textContent = "live"; };
    source.onerror = function () { if (state) state.textContent = "live updates: reconnecting"; };
    Object.keys(handlers).forEach(listen);
  }

  function listen(topic) {
    if (!source || listening.has(topic)) return;
    listening.add(topic);
    source.addEventListener(topic, function (event) {
      const payload = JSON.parse(event.data);
      if (typeof payload._ts === "number" && !payload._replay) latencies.push(Date.now() - payload._ts);
      (handlers[topic] || []).forEach(function (fn) { fn(payload); });
    });
  }

  function showErrors(message, field) {
    const box = document.getElementById("errors");
    document.querySelectorAll(".invalid").forEach(function (el) { el.classList.remove("invalid"); });
    document.querySelectorAll("[data-field-error]").forEach(function (el) { el.textContent = ""; });
    if (!message) { box.hidden = true; box.textContent = ""; return; }
    box.hidden = false;
    box.textContent = field && !message.includes(field) ? field + ": " + message : message;
    if (field) {
      const input = document.querySelector('[name="' + CSS.escape(field) + '"], [data-field="' + CSS.escape(field) + '"]');
      if (input) input.classList.add("invalid");
      const note = document.querySelector('[data-field-error="' + CSS.escape(field) + '"]');
      if (note) note.textContent = message;
    }
  }

  async function post(url, body) {
    let reply;
    try {
      const response = await fetch(url, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
        body: JSON.stringify(body || {}),
      });
      reply = await response.json();
    } catch (e) {
      reply = {ok: false, error: "the panel did not answer: " + e};
    }
    showErrors(reply.ok ? null : reply.error, reply.ok ? null : reply.field);
    return reply;
  }

  // Table rows from data with textContent only (no HTML from the server's data).
  function fill(tbodyId, rows, columns) {
    const body = document.getElementById(tbodyId);
    if (!body) return;
    const fresh = document.createDocumentFragment();
    rows.forEach(function (row) {
      const tr = document.createElement("tr");
      columns.forEach(function (col) {
        const td = document.createElement("td");
        const value = col.render ? col.render(row, td) : row[col.key];
        if (value instanceof Node) td.appendChild(value);
        else td.textContent = value === null || value === undefined ? "-" : String(value);
        if (col.num) td.classList.add("num");
        if (col.sign) { const v = row[col.key]; if (v > 0) td.classList.add("pos"); else if (v < 0) td.classList.add("neg"); }
        tr.appendChild(td);
      });
      if (row.symbol) tr.dataset.symbol = row.symbol;
      fresh.appendChild(tr);
    });
    body.replaceChildren(fresh);
  }

  function money(v, signed) {
    if (v === null || v === undefined) return "-";
    const s = Math.abs(v).toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2});
    return (v < 0 ? "-" : (signed ? "+" : "")) + s;
  }

  // Exchange time: what the session's clock says (a rehearsal's fills carry the replayed day's).
  const newYork = new Intl.DateTimeFormat("en-US", {timeZone: "America/New_York", hour12: false,
                                                   hour: "2-digit", minute: "2-digit", second: "2-digit"});
  function clockTime(ns) {
    return newYork.format(new Date(ns / 1e6));
  }

  function setText(id, text, cls) {
    const el = document.getElementById(id);
    if (!el) return;
    el.textContent = text;
    if (cls !== undefined) { el.classList.remove("pos", "neg", "halted"); if (cls) el.classList.add(cls); }
  }

  window.sextant = {
    on: function (topic, fn) { (handlers[topic] = handlers[topic] || []).push(fn); listen(topic); },
    post: post, fill: fill, money: money, clockTime: clockTime, setText: setText, showErrors: showErrors,
    latencies: latencies,
  };
  connect();
})();
