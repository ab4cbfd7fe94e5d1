"""<out>/tune-<study>/report.html: what a quant checks before believing a study (plotly, offline).

The verdict line comes first: the DSR and the PBO say whether the winner is more than the
best of many tries and whether picking it carries over; then the holdout, the only numbers no
trial has seen; then how the search went (history, importances, parallel coordinates) and the
equity curves of the top trials over the tuning folds. A multi-objective study adds its
Pareto front (Sharpe vs max drawdown); every other view plots the Sharpe.
"""

import html
import json
from pathlib import Path

import optuna
import pandas as pd
import plotly.graph_objects as go
from optuna.trial import TrialState

from backtests.tuning.objectives import trial_sharpe

TOP_TRIALS = 5
MIN_TRIALS_FOR_IMPORTANCE = 3  # fANOVA on fewer trials is noise


def write_study_report(path: Path, study: optuna.Study, summary: dict, returns: pd.DataFrame) -> None:
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    sharpe = {"target": trial_sharpe, "target_name": "Sharpe"}
    figures = [optuna.visualization.plot_optimization_history(study, **sharpe)]
    if "pareto" in summary:
        figures.append(optuna.visualization.plot_pareto_front(study, target_names=["Sharpe", "max drawdown"]))
    if len(complete) >= MIN_TRIALS_FOR_IMPORTANCE:
        # fANOVA explains the variance of the target whichever way it is optimised; Optuna 5's
        # default (PED-ANOVA) assumes a given target is minimised, the wrong way for a Sharpe.
        importance = optuna.importance.FanovaImportanceEvaluator(seed=0)
        figures += [optuna.visualization.plot_param_importances(study, evaluator=importance, **sharpe),
                    optuna.visualization.plot_parallel_coordinate(study, **sharpe)]
    figures += [_holdout_figure(summary), _equity_figure(complete, returns)]
    stats = summary["overfitting"]
    verdict = stats.get("verdict") or f"not computed: {stats.get('error')}"
    body = [
        f"<h1>Sextant tuning study: {html.escape(summary['study'])}</h1>",
        f"<p class=verdict><b>Verdict:</b> {html.escape(verdict)}</p>",
        _stats_table(summary),
        *(fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figures)),
        "<h2>Summary</h2>",
        f"<pre>{html.escape(json.dumps(summary, indent=2, default=str))}</pre>",
    ]
    path.write_text(
        "<!doctype html><html><head><meta charset=utf-8><title>Sextant study report</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;"
        "text-align:right}th{background:#f3f3f3}.verdict{font-size:1.15em}</style></head><body>"
        + "\n".join(body) + "</body></html>"
    )


def _stats_table(summary: dict) -> str:
    stats, best, holdout = summary["overfitting"], summary["best"], summary["holdout"]
    rows = [
        ("trials (complete / pruned / failed)", " / ".join(str(summary["trials"][k]) for k in ("complete", "pruned", "fail"))),
        (f"best trial {best['trial']}: Sharpe on tuning folds {summary['tuning_folds']}", f"{best['value']:.2f}"),
        (f"best trial on holdout folds {summary['holdout_folds']}", f"{holdout['best']['sharpe']:.2f}"),
        ("equal weights on the holdout", f"{holdout['equal_weight']['sharpe']:.2f}"),
        ("times the holdout was looked at", str(holdout["looks"])),
        ("Deflated Sharpe Ratio", f"{stats['dsr']:.3f}" if "dsr" in stats else "-"),
        ("Probability of Backtest Overfitting", f"{stats['pbo']:.3f}" if "pbo" in stats else "-"),
    ]
    if "pareto" in summary:
        pareto = summary["pareto"]
        rows.insert(2, (f"Pareto front {pareto['trials']}: best Sharpe within max drawdown {pareto['max_drawdown_limit']:.1%}",
                        "yes" if pareto["best_within_limit"] else "none within: smallest drawdown taken"))
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows) + "</table>"


def _holdout_figure(summary: dict) -> go.Figure:
    holdout = summary["holdout"]
    fig = go.Figure([
        go.Bar(name="best trial", x=["Sharpe", "total return %"],
               y=[holdout["best"]["sharpe"], holdout["best"]["total_return"] * 100]),
        go.Bar(name="equal weights", x=["Sharpe", "total return %"],
               y=[holdout["equal_weight"]["sharpe"], holdout["equal_weight"]["total_return"] * 100]),
    ])
    fig.add_hline(y=summary["best"]["value"], line_dash="dash", annotation_text="best trial's in-study Sharpe")
    fig.update_layout(title="Holdout (never seen by a trial): best trial vs equal weights", barmode="group", height=400)
    return fig


def _equity_figure(complete: list, returns: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for trial in sorted(complete, key=lambda t: -trial_sharpe(t))[:TOP_TRIALS]:
        column = str(trial.number)
        if column in returns:
            growth = (1.0 + returns[column].fillna(0.0)).cumprod()
            fig.add_trace(go.Scatter(x=returns.index, y=growth.values, name=f"trial {trial.number} ({trial_sharpe(trial):.2f})"))
    fig.update_layout(title=f"Equity over the tuning folds: top {TOP_TRIALS} trials (growth of 1)", height=450)
    return fig
