"""The report's signal and universe sections: what the signals said (decisions, confidence,
risk scores), how well each horizon model forecast, and which stocks the screen chose each
week. Read from the run directory (predictions.parquet, universe.parquet), as plain tables."""

import html
from pathlib import Path

import numpy as np
import pandas as pd

from models.outlook import RISK_SCORE_MAX


def outlook_sections(run_dir: Path) -> list[str]:
    """HTML blocks for report.html; none for a run whose predictions carry no outlook."""
    predictions = Path(run_dir) / "predictions.parquet"
    if not predictions.is_file():
        return []
    preds = pd.read_parquet(predictions)
    if "decision" not in preds.columns:
        return []
    # The signals written (the screen's stocks of each week); forecasts are judged on every row.
    traded = preds[preds["traded"]]
    blocks = ["<h2>Signals</h2>", _decision_table(traded), _risk_table(traded)]
    horizons = sorted(int(c.removeprefix("forecast_")) for c in preds.columns if c.startswith("forecast_"))
    if horizons:
        blocks += ["<h3>Horizon models (out of sample)</h3>", _horizon_table(preds, horizons)]
    universe = Path(run_dir) / "universe.parquet"
    if universe.is_file():
        blocks += ["<h2>Universe over time</h2>", _universe_table(pd.read_parquet(universe))]
    return blocks


def _table(head: list[str], rows: list[list]) -> str:
    header = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{header}</tr>{body}</table>"


def _decision_table(traded: pd.DataFrame) -> str:
    """Per decision: how often, how confident, what was expected and what happened (the
    classification label's direction, where it is defined)."""
    rows = []
    for decision in ("BUY", "SELL", "HOLD"):
        part = traded[traded["decision"] == decision]
        labelled = part["y"].dropna()
        rows.append([decision, f"{len(part):,}", f"{len(part) / max(len(traded), 1):.1%}",
                     _fmt(part["confidence"].mean(), "{:.3f}"), _fmt(part["expected_return"].mean(), "{:.4%}"),
                     _fmt(labelled.mean() if len(labelled) else np.nan, "{:.1%}")])
    return _table(["decision", "signals", "share", "mean confidence", "mean expected return",
                   "label up (where defined)"], rows)


def _risk_table(preds: pd.DataFrame) -> str:
    counts = preds["risk_score"].value_counts()
    scores = list(range(RISK_SCORE_MAX + 1))
    return _table(["risk score", *scores], [["signals", *(f"{int(counts.get(s, 0)):,}" for s in scores)]])


def _horizon_table(preds: pd.DataFrame, horizons: list[int]) -> str:
    """Information coefficient (Pearson and rank) and sign hit rate of each horizon's forecast
    against the realised log return, over the test rows whose outcome is in the data."""
    rows = []
    for h in horizons:
        pair = preds[[f"forecast_{h}", f"realised_{h}"]].dropna()
        f, r = pair.iloc[:, 0], pair.iloc[:, 1]
        enough = len(pair) > 2 and f.std() > 0 and r.std() > 0
        rows.append([f"{h} bars", f"{len(pair):,}", _fmt(f.corr(r) if enough else np.nan, "{:.3f}"),
                     _fmt(f.corr(r, method="spearman") if enough else np.nan, "{:.3f}"),
                     _fmt((np.sign(f) == np.sign(r)).mean() if len(pair) else np.nan, "{:.1%}"),
                     _fmt(f.std(), "{:.4%}"), _fmt(r.std(), "{:.4%}")])
    return _table(["horizon", "rows", "IC", "rank IC", "sign hit rate", "forecast std", "realised std"], rows)


def _universe_table(universe: pd.DataFrame) -> str:
    rows = []
    for week, part in universe.groupby("week", sort=True):
        chosen = sorted(part.loc[part["selected"], "symbol"])
        rows.append([str(week), f"{len(chosen)} / {len(part)}", ", ".join(chosen) or "(none)"])
    return _table(["week of", "selected", "symbols"], rows)


def _fmt(value: float, pattern: str) -> str:
    return "n/a" if value is None or not np.isfinite(value) else pattern.format(value)
