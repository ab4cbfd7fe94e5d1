// The Data page: the feed monitor ("feed" topic), the ingest job ("jobs" topic) and the
// catalog coverage, fetched again when an ingest ends.
(function () {
  "use strict";
  const s = window.sextant;
  const count = function (v) { return v === null || v === undefined ? "-" : Number(v).toLocaleString("en-US"); };

  async function refreshCoverage() {
    const response = await fetch("/api/data/coverage", {credentials: "same-origin"});
    const c = await response.json();
    if (!c.ok) return;
    s.setText("coverage-through", c.through || "-");
    s.setText("coverage-error", c.error || "");
    s.fill("coverage", c.symbols, [
      {key: "symbol"}, {key: "sector"}, {key: "bars", num: true, render: function (r) { return count(r.bars); }},
      {key: "first_session", num: true}, {key: "last_session", num: true},
      {key: "held", num: true, render: function (r) { return r.sessions_held + " / " + r.sessions_expected; }},
      {key: "missing", num: true, render: function (r, td) { if (r.missing.length) td.classList.add("neg"); return r.missing.join(" ") || "-"; }},
    ]);
  }

  refreshCoverage();  // the page came with the coverage as last read

  const ingestButton = document.getElementById("ingest");
  if (ingestButton) ingestButton.addEventListener("click", function () { s.post("/api/data/ingest", {}); });

  let finished = null;  // the outcome already shown: refresh once per job that ends
  s.on("jobs", function (payload) {
    const job = payload.jobs.ingest;
    if (!job) return;
    const bar = document.getElementById("ingest-progress");
    if (!bar) return;
    bar.max = job.total || 1;
    bar.value = job.state === "done" ? bar.max : job.done;
    s.setText("ingest-state", job.state + ": " + (job.error || job.message), job.state === "failed" ? "neg" : "");
    if (job.finished && job.finished !== finished) { finished = job.finished; refreshCoverage(); }
  });

  s.on("feed", function (f) {
    const p = f.polygon, a = f.alpaca;
    s.setText("feed-status", p ? p.status : "no node running");
    s.setText("feed-rate", f.messages_per_sec === null ? "-" : f.messages_per_sec.toFixed(1));
    s.setText("feed-messages", p ? count(p.messages) : "-");
    s.setText("feed-age", f.last_bar_age_secs === null ? "-" : f.last_bar_age_secs.toFixed(1));
    s.setText("feed-newest", f.newest_bar ? f.newest_bar.substring(11, 16) : "-");
    s.setText("feed-reconnects", p ? count(p.reconnects) : "-");
    s.setText("feed-backfilled", p ? count(p.backfilled_bars) : "-");
    s.setText("feed-backfill-pending", p && p.backfill_pending ? "backfill running" : "");
    s.setText("feed-duplicates", p ? count(p.duplicate_bars_dropped) : "-");
    s.setText("feed-stale", p ? count(p.stale_events) : "-");
    s.setText("feed-malformed", p ? count(p.malformed) : "-");
    s.setText("feed-error", p && p.last_error ? p.last_error : "-");
    s.setText("feed-missing", count(f.missing_minutes));
    s.setText("gap-session", f.session || "-");
    s.setText("broker-status", a ? (a.connected ? "connected" : "disconnected") : "no node running");
    s.setText("broker-reconnects", a ? count(a.reconnects) : "-");
    s.setText("broker-updates", a ? count(a.updates) : "-");
    s.setText("broker-error", a && a.error ? a.error : "-");
    const rows = Object.keys(f.gaps).map(function (symbol) { return Object.assign({symbol: symbol}, f.gaps[symbol]); });
    s.fill("gaps", rows, [
      {key: "symbol"}, {key: "bars", num: true},
      {key: "missing", num: true, render: function (r, td) { if (r.missing) td.classList.add("neg"); return r.missing; }},
      {key: "newest_missing", num: true, render: function (r) { return r.newest_missing.join(" ") || "-"; }},
    ]);
  });
})();
