"""report.html: the pictures a quant looks at after a walk-forward run (plotly, self-contained)."""

import html
import json
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from backtests.metrics import drawdown_series
from backtests.outlook_report import outlook_sections
from backtests.selection_report import selection_section

_HEADLINE = [
    ("total_return", "Total return", "{:.2%}"),
    ("cagr", "CAGR", "{:.2%}"),
    ("sharpe", "Sharpe", "{:.2f}"),
    ("sortino", "Sortino", "{:.2f}"),
    ("max_drawdown", "Max drawdown", "{:.2%}"),
    ("win_rate", "Win rate", "{:.1%}"),
    ("profit_factor", "Profit factor", "{:.2f}"),
    ("avg_return_per_trade", "Avg return / trade", "{:.3%}"),
    ("trades", "Trades", "{:,}"),
    ("exposure", "Exposure", "{:.1%}"),
]


def write_report(
    path: Path,
    metrics: dict,
    equity: pd.Series,
    folds: list[dict],
    importance: dict[str, float],
) -> None:
    figures = [
        _equity_figure(equity),
        _model_auc_figure(metrics["models"], folds),
        _importance_figure(importance),
    ]
    body = [
        f"<h1>Sextant walk-forward report: {html.escape(metrics['run']['name'])}</h1>",
        f"<p class=note>{html.escape(metrics['run']['data_note'])}</p>",
        _headline_table(metrics["trading"]),
        *(fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figures)),
        "<h2>Folds</h2>",
        _fold_table(folds),
        *outlook_sections(path.parent),
        *selection_section(folds),
        "<h2>Run</h2>",
        f"<pre>{html.escape(json.dumps(metrics['run'], indent=2, default=str))}</pre>",
    ]
    path.write_text(
        "<!doctype html><html><head><meta charset=utf-8><title>Sextant report</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;"
        "text-align:right}th{background:#f3f3f3}.note{color:#555}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )


def _equity_figure(equity: pd.Series) -> go.Figure:
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3],
                        subplot_titles=("Equity (test windows, chained)", "Drawdown"))
    if not equity.empty:
        x = equity.index.tz_convert("America/New_York")
        fig.add_trace(go.Scatter(x=x, y=equity.values, name="equity", line={"width": 1.5}), row=1, col=1)
        fig.add_trace(go.Scatter(x=x, y=drawdown_series(equity).values * 100, name="drawdown %",
                                 fill="tozeroy", line={"color": "firebrick", "width": 1}), row=2, col=1)
    fig.update_layout(height=550, showlegend=False, margin={"t": 40})
    fig.update_yaxes(title_text="USD", row=1, col=1)
    fig.update_yaxes(title_text="%", row=2, col=1)
    return fig


def _model_auc_figure(models: dict, folds: list[dict]) -> go.Figure:
    fig = go.Figure()
    names = list(models)
    for fold in folds:
        fig.add_trace(go.Bar(name=f"fold {fold['fold']}", x=names,
                             y=[fold["models"][n]["auc"] for n in names]))
    fig.add_trace(go.Scatter(name="all folds", x=names, y=[models[n]["auc"] for n in names],
                             mode="markers", marker={"size": 14, "symbol": "diamond", "color": "black"}))
    fig.add_hline(y=0.5, line_dash="dash", annotation_text="coin flip")
    fig.update_layout(title="Out-of-sample AUC per model", barmode="group", height=400,
                      yaxis={"range": [0.4, max(0.65, *(m["auc"] + 0.02 for m in models.values() if m["auc"] == m["auc"]))]})
    return fig


def _importance_figure(importance: dict[str, float], top: int = 25) -> go.Figure:
    items = sorted(importance.items(), key=lambda kv: kv[1])[-top:]
    fig = go.Figure(go.Bar(x=[v for _, v in items], y=[k for k, _ in items], orientation="h"))
    fig.update_layout(title="Feature importance (per model normalised: GBM gain, LSTM permutation; mean over models and folds)",
                      height=max(300, 22 * len(items)), margin={"l": 160})
    return fig


def _headline_table(trading: dict) -> str:
    cells = "".join(f"<th>{label}</th>" for _, label, _ in _HEADLINE)
    values = "".join(f"<td>{fmt.format(trading[key])}</td>" for key, _, fmt in _HEADLINE)
    return f"<table><tr>{cells}</tr><tr>{values}</tr></table>"


def _fold_table(folds: list[dict]) -> str:
    if not folds:
        return "<p>no folds</p>"
    models = list(folds[0]["models"])
    head = ["fold", "train", "test", "train rows", "test rows", "return", "trades",
            *(f"AUC {m}" for m in models)]
    rows = []
    for f in folds:
        cells = [f["fold"], f"{f['train_start']} → {f['train_end']}", f"{f['test_start']} → {f['test_end']}",
                 f"{f['train_rows']:,}", f"{f['test_rows']:,}", f"{f['return']:.2%}", f"{f['trades']:,}",
                 *(f"{f['models'][m]['auc']:.3f}" for m in models)]
        rows.append("".join(f"<td>{html.escape(str(c))}</td>" for c in cells))
    header = "".join(f"<th>{h}</th>" for h in head)
    return "<table><tr>" + header + "</tr>" + "".join(f"<tr>{r}</tr>" for r in rows) + "</table>"

