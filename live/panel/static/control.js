// The Control page: buttons -> POSTs; "status" and "control" topics -> the page.
(function () {
  "use strict";
  const s = window.sextant;

  function bind(id, fn) { const el = document.getElementById(id); if (el) el.addEventListener("click", fn); }
  ["entries-on", "entries-off"].forEach(function (id) {
    bind(id, function (e) { s.post("/api/control/entries", {enabled: e.target.dataset.enabled === "true"}); });
  });
  ["node-stop", "node-start"].forEach(function (id) {
    bind(id, function (e) { s.post("/api/control/node", {action: e.target.dataset.action}); });
  });
  bind("emergency-stop", function (e) {
    if (!window.confirm("Cancel every order, flatten every position and halt for the rest of this run?")) return;
    e.target.disabled = true;
    s.setText("broker-confirmation", "waiting for the broker to confirm flat...");
    s.post("/api/control/emergency-stop", {}).then(function () { e.target.disabled = false; });
  });
  const form = document.getElementById("mode-form");
  if (form) form.addEventListener("submit", function (e) {
    e.preventDefault();
    s.post("/api/control/mode", {mode: form.elements.mode.value, live: form.elements.live.checked,
                                 understood: form.elements.understood.checked});
  });

  s.on("status", function (st) {
    s.setText("equity", s.money(st.equity));
    s.setText("day-pnl", s.money(st.day_pnl, true), st.day_pnl > 0 ? "pos" : st.day_pnl < 0 ? "neg" : "");
    s.setText("open-positions", String(st.open_positions));
    s.setText("bars", String(st.bars));
    s.setText("last-bar-age", st.last_bar_age_secs === null ? "-" : st.last_bar_age_secs.toFixed(1) + " s ago");
    s.setText("models", Object.entries(st.models).map(function (m) { return m[0] + " v" + m[1]; }).join(" ") || "-");
    if (st.run && st.run.trading_day) s.setText("trading-day", st.run.trading_day);
  });
  s.on("control", function (payload) {
    const c = payload.control;
    if (c) {
      s.setText("mode", c.mode);
      s.setText("mode-now", c.mode);
      s.setText("entries", c.entries_enabled ? "on" : "off");
      s.setText("trading-state", c.trading_state || "-", c.trading_state === "HALTED" ? "halted" : "");
      s.setText("node-state", c.node);
      s.setText("halt", c.emergency_stopped ? "HALTED" : "-", c.emergency_stopped ? "halted" : "");
      if (c.broker_confirmation) s.setText("broker-confirmation", c.broker_confirmation);
      s.setText("feed-connected", c.feed_connected ? "connected" : "disconnected");
      s.setText("broker-connected", c.broker_connected ? "connected" : "disconnected");
    }
    s.fill("actions", payload.actions, [{key: "at", num: true}, {key: "action"}, {key: "outcome"}]);
  });
  s.on("actions", function (payload) {
    s.fill("actions", payload.actions, [{key: "at", num: true}, {key: "action"}, {key: "outcome"}]);
  });
})();
