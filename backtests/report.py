"""report.html: the pages a quant reads after a walk-forward run (plotly, one offline file).

The report is an ordered list of sections, each a function from the run's ``ReportInputs`` to
an HTML fragment (``SECTIONS``): adding a view is one function and one line in that list. The
plotly library is embedded once in the page head, not once per figure. The tear-sheet numbers
(buy-and-hold, monthly returns, rolling ratios, trade cuts) come from ``backtests.tearsheet``.
"""

import html
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.offline
from plotly.subplots import make_subplots

from backtests import tearsheet
from backtests.metrics import TRADING_DAYS, drawdown_series, max_drawdown
from backtests.outlook_report import outlook_sections
from backtests.selection_report import selection_section
from catalog.sessions import trading_sessions
from catalog.store import MarketCatalog

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
STRATEGY = "strategy"
UNIVERSE = "buy & hold: universe, equal weight"


@dataclass(frozen=True)
class ReportInputs:
    """What the sections draw from. ``daily_returns``: the strategy's return per test session;
    ``benchmarks``: name -> daily returns on the same sessions (buy-and-hold of the universe,
    index proxies); ``trades``: ``tearsheet.trade_table``; ``run_dir``: for sections that read
    further artefacts of the run."""

    run_dir: Path
    metrics: dict
    equity: pd.Series
    daily_returns: pd.Series
    importance: dict[str, float]
    benchmarks: dict[str, pd.Series]
    trades: pd.DataFrame

    @property
    def folds(self) -> list[dict]:
        return self.metrics["folds"]


Section = Callable[[ReportInputs], str]


def gather_inputs(run_dir: Path, metrics: dict, equity: pd.Series, daily_returns: pd.Series,
                  importance: dict[str, float], catalog: MarketCatalog) -> ReportInputs:
    """The inputs of a run's report: its own results plus the universe's (and any index
    proxy's) session prices over its test windows, from ``catalog``."""
    windows = [pd.DatetimeIndex(trading_sessions(f["test_start"], f["test_end"]).index) for f in metrics["folds"]]
    first, last = windows[0][0], windows[-1][-1] + pd.Timedelta(days=1)

    def prices(symbol: str) -> pd.DataFrame:
        bars = catalog.read_bars(symbol, first.tz_localize(tearsheet.NY), last.tz_localize(tearsheet.NY))
        return tearsheet.session_prices(bars)

    symbols = metrics["run"]["symbols"]
    benchmarks = {UNIVERSE: tearsheet.buy_and_hold_returns({s: prices(s) for s in symbols}, windows)}
    available = set(catalog.symbols())
    for proxy in (p for p in tearsheet.INDEX_PROXIES if p in available):
        benchmarks[f"buy & hold: {proxy} (index proxy)"] = tearsheet.buy_and_hold_returns({proxy: prices(proxy)}, windows)
    orders = [pd.read_parquet(path).assign(fold=int(path.parent.name.removeprefix("fold-")))
              for path in sorted((run_dir / "windows").glob("fold-*/orders.parquet"))]
    trades = tearsheet.trade_table(pd.read_parquet(run_dir / "positions.parquet"),
                                   pd.concat(orders, ignore_index=True) if orders else pd.DataFrame(
                                       columns=["fold", "client_order_id", "tags"]))
    return ReportInputs(run_dir=run_dir, metrics=metrics, equity=equity, daily_returns=daily_returns,
                        importance=importance, benchmarks=benchmarks, trades=trades)


def write_report(path: Path, inputs: ReportInputs, sections: Sequence[Section] | None = None) -> None:
    body = [section(inputs) for section in (SECTIONS if sections is None else sections)]
    path.write_text(
        "<!doctype html><html><head><meta charset=utf-8><title>Sextant report</title>"
        f"<script type=\"text/javascript\">{plotly.offline.get_plotlyjs()}</script>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;"
        "text-align:right}th{background:#f3f3f3}.note{color:#555}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )


# -- sections, in page order --------------------------------------------------------------------


def headline_section(inputs: ReportInputs) -> str:
    run, trading = inputs.metrics["run"], inputs.metrics["trading"]
    cells = "".join(f"<th>{label}</th>" for _, label, _ in _HEADLINE)
    values = "".join(f"<td>{fmt.format(trading[key])}</td>" for key, _, fmt in _HEADLINE)
    return (f"<h1>Sextant walk-forward report: {html.escape(run['name'])}</h1>"
            f"<p class=note>{html.escape(run['data_note'])}</p>"
            f"<table><tr>{cells}</tr><tr>{values}</tr></table>")


def equity_section(inputs: ReportInputs) -> str:
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3],
                        subplot_titles=("Equity (test windows, chained)", "Drawdown"))
    equity = inputs.equity
    if not equity.empty:
        x = equity.index.tz_convert(tearsheet.NY)
        fig.add_trace(go.Scatter(x=x, y=equity.values, name="equity", line={"width": 1.5}), row=1, col=1)
        fig.add_trace(go.Scatter(x=x, y=drawdown_series(equity).values * 100, name="drawdown %",
                                 fill="tozeroy", line={"color": "firebrick", "width": 1}), row=2, col=1)
    fig.update_layout(height=550, showlegend=False, margin={"t": 40})
    fig.update_yaxes(title_text="USD", row=1, col=1)
    fig.update_yaxes(title_text="%", row=2, col=1)
    return "<h2>Equity and drawdown</h2>" + _figure(fig)


def benchmark_section(inputs: ReportInputs) -> str:
    series = {STRATEGY: inputs.daily_returns, **inputs.benchmarks}
    fig = go.Figure([go.Scatter(x=r.index, y=tearsheet.growth(r).values, name=name) for name, r in series.items()])
    fig.update_layout(title="Growth of 1 over the test sessions: strategy vs buy-and-hold", height=420)
    rows = [[name, _pct(_total(r)), f"{_annual_sharpe(r):.2f}", _pct(r.std(ddof=1) * math.sqrt(TRADING_DAYS)),
             _pct(max_drawdown(pd.concat([pd.Series([1.0]), tearsheet.growth(r)])))] for name, r in series.items()]
    note = ("<p class=note>Buy-and-hold buys equal dollars of every symbol at each test window's first "
            "open and holds to its close; windows are chained like the strategy's equity.</p>")
    return ("<h2>Strategy vs buy-and-hold</h2>" + note
            + _table(["", "total return", "Sharpe", "volatility (annual)", "max drawdown"], rows) + _figure(fig))


def monthly_section(inputs: ReportInputs) -> str:
    table = tearsheet.monthly_returns(inputs.daily_returns)
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    values = table.to_numpy() * 100
    fig = go.Figure(go.Heatmap(z=values, x=months, y=[str(y) for y in table.index], colorscale="RdYlGn",
                               zmid=0, text=[[("" if math.isnan(v) else f"{v:.2f}%") for v in row] for row in values],
                               texttemplate="%{text}", hovertemplate="%{y} %{x}: %{text}<extra></extra>"))
    fig.update_layout(title="Monthly returns (compounded, %)", height=160 + 40 * len(table), yaxis={"type": "category"})
    return "<h2>Monthly returns</h2>" + _figure(fig)


def rolling_section(inputs: ReportInputs) -> str:
    days = tearsheet.ROLLING_DAYS
    returns = inputs.daily_returns
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True,
                        subplot_titles=(f"Rolling Sharpe ({days} sessions, annualised)",
                                        f"Rolling volatility ({days} sessions, annualised %)"))
    fig.add_trace(go.Scatter(x=returns.index, y=tearsheet.rolling_sharpe(returns).values, name="Sharpe"), row=1, col=1)
    fig.add_trace(go.Scatter(x=returns.index, y=tearsheet.rolling_volatility(returns).values * 100,
                             name="volatility %"), row=2, col=1)
    fig.update_layout(height=500, showlegend=False)
    note = (f"<p class=note>{len(returns)} test sessions: fewer than {days}, so no rolling value yet.</p>"
            if len(returns) < days else "")
    return "<h2>Rolling Sharpe and volatility</h2>" + note + _figure(fig)


def distribution_section(inputs: ReportInputs) -> str:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Daily returns (%)", "Per-trade returns (%)"))
    fig.add_trace(go.Histogram(x=inputs.daily_returns.values * 100, name="daily", nbinsx=40), row=1, col=1)
    fig.add_trace(go.Histogram(x=inputs.trades["return"].to_numpy(dtype=float) * 100, name="per trade", nbinsx=40),
                  row=1, col=2)
    fig.update_layout(height=380, showlegend=False)
    return "<h2>Return distributions</h2>" + _figure(fig)


def trades_section(inputs: ReportInputs) -> str:
    trades = inputs.trades
    if trades.empty:
        return "<h2>Trades</h2><p>no closed trades</p>"
    titles = {"symbol": "by symbol", "side": "by side", "hour": "by hour of entry (New York)",
              "exit_reason": "by exit reason (stop, target, flatten before the close, daily-loss halt)"}
    parts = ["<h2>Trades</h2>"]
    for by in tearsheet.TRADE_CUTS:
        cut = tearsheet.trade_cuts(trades, by)
        rows = [[key, f"{r.trades:,}", f"{r.win_rate:.1%}", f"{r.avg_return:.3%}", f"{r.total_pnl:,.2f}"]
                for key, r in cut.iterrows()]
        parts.append(f"<h3>{html.escape(titles[by])}</h3>"
                     + _table([by, "trades", "win rate", "avg return", "total P&L (USD)"], rows))
    return "".join(parts)


def model_comparison_section(inputs: ReportInputs) -> str:
    """Every model (and ensemble) the fold rows carry, per fold and over all folds, for every
    metric they report: whatever the names (a future "stack" ensemble appears as it is)."""
    folds = inputs.folds
    if not folds:
        return ""
    overall = inputs.metrics.get("models", {})
    names = list(dict.fromkeys(n for f in folds for n in f["models"]))
    metrics = list(dict.fromkeys(k for f in folds for m in f["models"].values() for k in m))
    parts = ["<h2>Models per fold</h2>"]
    for metric in metrics:
        rows = [[name, *(_number(f["models"].get(name, {}).get(metric)) for f in folds),
                 _number(overall.get(name, {}).get(metric))] for name in names]
        parts.append(f"<h3>{html.escape(metric)}</h3>"
                     + _table(["model", *(f"fold {f['fold']}" for f in folds), "all folds"], rows))
    return "".join(parts)


def model_auc_section(inputs: ReportInputs) -> str:
    models, folds = inputs.metrics["models"], inputs.folds
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
    return _figure(fig)


def importance_section(inputs: ReportInputs, top: int = 25) -> str:
    items = sorted(inputs.importance.items(), key=lambda kv: kv[1])[-top:]
    fig = go.Figure(go.Bar(x=[v for _, v in items], y=[k for k, _ in items], orientation="h"))
    fig.update_layout(title="Feature importance (per model normalised: GBM gain, LSTM permutation; mean over models and folds)",
                      height=max(300, 22 * len(items)), margin={"l": 160})
    return _figure(fig)


def folds_section(inputs: ReportInputs) -> str:
    folds = inputs.folds
    if not folds:
        return "<h2>Folds</h2><p>no folds</p>"
    models = list(folds[0]["models"])
    head = ["fold", "train", "test", "train rows", "test rows", "return", "trades", *(f"AUC {m}" for m in models)]
    rows = [[f["fold"], f"{f['train_start']} → {f['train_end']}", f"{f['test_start']} → {f['test_end']}",
             f"{f['train_rows']:,}", f"{f['test_rows']:,}", f"{f['return']:.2%}", f"{f['trades']:,}",
             *(f"{f['models'][m]['auc']:.3f}" for m in models)] for f in folds]
    return "<h2>Folds</h2>" + _table(head, rows)


def run_section(inputs: ReportInputs) -> str:
    return f"<h2>Run</h2><pre>{html.escape(json.dumps(inputs.metrics['run'], indent=2, default=str))}</pre>"


def feature_selection_section(inputs: ReportInputs) -> str:
    """SHAP summary and stability table (empty when the run selected no features)."""
    return "".join(selection_section(inputs.folds))


def signal_outlook_section(inputs: ReportInputs) -> str:
    """Decisions, risk scores, horizon models and the screened universe (empty without them)."""
    return "".join(outlook_sections(inputs.run_dir))


SECTIONS: list[Section] = [
    headline_section,
    equity_section,
    benchmark_section,
    monthly_section,
    rolling_section,
    distribution_section,
    trades_section,
    model_comparison_section,
    model_auc_section,
    importance_section,
    feature_selection_section,
    folds_section,
    signal_outlook_section,
    run_section,
]


# -- helpers ------------------------------------------------------------------------------------


def _figure(fig: go.Figure) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False)


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    header = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{header}</tr>{body}</table>"


def _total(returns: pd.Series) -> float:
    return float((1.0 + returns.fillna(0.0)).prod() - 1.0)


def _annual_sharpe(returns: pd.Series) -> float:
    std = returns.std(ddof=1)
    return float(returns.mean() / std * math.sqrt(TRADING_DAYS)) if std > 0 else 0.0


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2%}"


def _number(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.3f}"
