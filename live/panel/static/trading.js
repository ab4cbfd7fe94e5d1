// The Trading page: positions (with a close button), orders, fills, limits, top signals.
(function () {
  "use strict";
  const s = window.sextant;
  const readOnly = document.querySelector(".banner") !== null;
  const price = function (key) { return {key: key, num: true, render: function (r) { return r[key] === null ? "-" : Number(r[key]).toFixed(2); }}; };

  function closeButton(row) {
    if (readOnly) return "";
    const b = document.createElement("button");
    b.className = "close";
    b.dataset.symbol = row.symbol;
    b.textContent = "Close";
    return b;
  }

  document.getElementById("positions").addEventListener("click", function (e) {
    const symbol = e.target.dataset && e.target.dataset.symbol;
    if (e.target.classList.contains("close") && symbol) {
      e.target.disabled = true;
      s.post("/api/trading/close", {symbol: symbol});
    }
  });

  function pct(v) { return (v * 100).toFixed(0) + "%"; }

  s.on("positions", function (p) {
    s.fill("positions", p.positions, [
      {key: "symbol"}, {key: "side"}, {key: "quantity", num: true}, price("entry"), price("stop"), price("target"),
      price("last"), {key: "unrealized_pnl", num: true, sign: true, render: function (r) { return s.money(r.unrealized_pnl, true); }},
      {key: "close", render: closeButton},
    ]);
    const l = p.limits;
    s.setText("limit-positions", l.open_positions + " / " + l.max_positions);
    s.setText("limit-stock", pct(l.max_position_pct) + " = " + s.money(l.max_position_value));
    s.setText("limit-sector", pct(l.max_sector_pct) + " = " + s.money(l.max_sector_value));
    s.setText("limit-loss", s.money(l.daily_loss_used) + " used of " + s.money(l.daily_loss_limit) + " (" + pct(l.daily_loss_limit_pct) + ")");
  });
  s.on("orders", function (p) {
    s.fill("orders", p.orders, [
      {key: "ts", num: true, render: function (r) { return s.clockTime(r.ts); }}, {key: "symbol"}, {key: "side"},
      {key: "quantity", num: true}, {key: "type"}, {key: "price", num: true}, {key: "trigger_price", num: true},
      {key: "status"}, {key: "tags"},
    ]);
  });
  s.on("fills", function (p) {
    s.fill("fills", p.fills, [
      {key: "ts", num: true, render: function (r) { return s.clockTime(r.ts); }}, {key: "symbol"}, {key: "side"},
      {key: "quantity", num: true}, {key: "price", num: true}, {key: "commission", num: true},
    ]);
  });
  s.on("signals", function (p) {
    s.fill("signals", p.signals, [
      {key: "symbol"}, {key: "decision"}, {key: "confidence", num: true, render: function (r) { return r.confidence === null ? "-" : r.confidence.toFixed(3); }},
      {key: "expected_return", num: true, render: function (r) { return r.expected_return === null ? "-" : (r.expected_return * 100).toFixed(3) + "%"; }},
      {key: "risk_score", num: true}, {key: "horizon", num: true},
    ]);
  });
})();
