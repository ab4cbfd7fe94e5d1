// The Models page: pin / promote / roll back, the weights form, the retrain job ("jobs"
// topic) and the live scores ("models" topic).
(function () {
  "use strict";
  const s = window.sextant;
  const fixed = function (key, digits) {
    return {key: key, num: true, render: function (r) { return r[key] === null ? "-" : Number(r[key]).toFixed(digits); }};
  };

  function evaluation(row) {
    const e = row.evaluation;
    if (!e) return "-";
    const v = function (x) { return x === null ? "-" : Number(x).toFixed(4); };
    return e.action + " vs fold " + e.against + ": " + e.metric + " " + v(e.challenger_value) + " vs " +
      v(e.champion_value) + " (margin " + e.margin + ", " + e.sessions + ")";
  }

  function buttons(row) {
    if (row.role === "champion" || !document.getElementById("rollback")) return "";
    const box = document.createDocumentFragment();
    ["pin", "promote"].forEach(function (kind) {
      const b = document.createElement("button");
      b.className = kind;
      b.dataset.fold = row.fold;
      b.textContent = kind === "pin" ? "Pin" : "Promote";
      box.appendChild(b);
      box.appendChild(document.createTextNode(" "));
    });
    const span = document.createElement("span");
    span.appendChild(box);
    return span;
  }

  async function refresh() {
    const response = await fetch("/api/models", {credentials: "same-origin"});
    const state = await response.json();
    if (!state.ok) return;
    s.fill("ensembles", state.ensembles, [
      {key: "fold", num: true}, {key: "role"}, {key: "members"},
      {key: "train", num: true, render: function (r) { return r.train_start + ".." + r.train_end; }},
      {key: "evaluation", render: evaluation}, {key: "actions", render: buttons},
    ]);
    s.fill("history", state.history, [
      {key: "at", num: true}, {key: "action", render: function (r) { return r.action + (r.forced ? " (forced)" : ""); }},
      {key: "subject"}, {key: "reason"},
    ]);
    if (state.journaled.length) s.fill("journaled", state.journaled, [{key: "at", num: true}, {key: "trading_day", num: true}, {key: "subject"}]);
  }

  async function registry(url, body) {
    const reply = await s.post(url, body);
    s.setText("registry-outcome", reply.ok ? reply.result.message : "refused: " + reply.error);
    await refresh();
  }

  document.getElementById("ensembles").addEventListener("click", function (e) {
    const fold = e.target.dataset && e.target.dataset.fold;
    if (fold === undefined) return;
    if (e.target.classList.contains("pin")) registry("/api/models/pin", {fold: Number(fold)});
    if (e.target.classList.contains("promote")) {
      registry("/api/models/promote", {fold: Number(fold), force: document.getElementById("force").checked});
    }
  });
  const rollbackButton = document.getElementById("rollback");
  if (rollbackButton) rollbackButton.addEventListener("click", function () { registry("/api/models/rollback", {}); });

  const form = document.getElementById("weights-form");
  form.addEventListener("submit", async function (e) {
    e.preventDefault();
    const weights = {};
    form.querySelectorAll("input[data-model]").forEach(function (input) { weights[input.dataset.model] = input.value; });
    const reply = await s.post("/api/models/weights", {weights: weights});
    s.setText("weights-outcome", reply.ok ? "applied from the next signal: " + JSON.stringify(weights) : "refused");
  });

  const retrainButton = document.getElementById("retrain");
  if (retrainButton) retrainButton.addEventListener("click", function () { s.post("/api/models/retrain", {}); });

  let finished = null;  // the outcome already shown: refresh once per job that ends
  s.on("jobs", function (payload) {
    const job = payload.jobs.retrain;
    if (!job) return;
    const bar = document.getElementById("retrain-progress");
    bar.max = job.total || 1;
    bar.value = job.state === "done" ? bar.max : job.done;
    s.setText("retrain-state", job.state + ": " + (job.error || job.message), job.state === "failed" ? "neg" : "");
    if (job.finished && job.finished !== finished) { finished = job.finished; refresh(); }
  });

  s.on("models", function (scores) {
    s.setText("score-waiting", String(scores.waiting));
    const rows = Object.keys(scores.models).map(function (name) { return Object.assign({name: name}, scores.models[name]); });
    s.fill("scores", rows, [{key: "name"}, {key: "scored", num: true}, fixed("accuracy", 3), fixed("auc", 3), fixed("up_share", 3)]);
  });
})();
