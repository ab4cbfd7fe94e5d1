"""drift.html: a day's drift report as one offline page (plotly, as backtests/report.py
writes its pages): PSI per feature against the stability bands, live vs backtest equity,
and the differences that are not explained."""

import html
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.offline

from live.drift import DriftReport
from models.drift import MODERATE, SIGNIFICANT

_COLOURS = {"stable": "#4c78a8", "moderate": "#f58518", "significant": "#e45756"}


def write_drift_html(reports: list[DriftReport], path: Path) -> Path:
    """One section per run of the day; returns ``path``."""
    sections = "".join(_section(r) for r in reports)
    page = (f"<html><head><meta charset='utf-8'><title>drift {reports[0].trading_day}</title>"
            f"<script type=\"text/javascript\">{plotly.offline.get_plotlyjs()}</script></head>"
            f"<body style='font-family: sans-serif'>{sections}</body></html>")
    path = Path(path)
    path.write_text(page)
    return path


def _section(report: DriftReport) -> str:
    unexplained = "".join(f"<li>{html.escape(d.kind)} {html.escape(d.key)}: {html.escape(d.detail)}</li>"
                          for d in report.unexplained)
    return (f"<h1>drift of {report.trading_day} (run {report.run_id[:8]})</h1>"
            f"<p>P&amp;L live {report.live_pnl:+.2f}, backtest {report.backtest_pnl:+.2f}; "
            f"{len(report.differences)} differences, {len(report.unexplained)} unexplained; "
            f"{len(report.significant)} features drifted significantly</p>"
            f"<ul style='color: #e45756'>{unexplained}</ul>"
            f"{_psi_chart(report)}{_equity_chart(report)}")


def _psi_chart(report: DriftReport) -> str:
    features = sorted(report.features, key=lambda f: -f.psi)
    fig = go.Figure(go.Bar(x=[f.feature for f in features], y=[f.psi for f in features],
                           marker_color=[_COLOURS[f.level] for f in features]))
    for line in (MODERATE, SIGNIFICANT):
        fig.add_hline(y=line, line_dash="dot")
    fig.update_layout(title="feature drift: PSI against the champion's training window", yaxis_title="PSI")
    return fig.to_html(full_html=False, include_plotlyjs=False)


def _equity_chart(report: DriftReport) -> str:
    fig = go.Figure()
    for name, points in (("live", report.live_equity), ("backtest", report.backtest_equity)):
        if points:
            ts, equity = zip(*points, strict=True)
            fig.add_trace(go.Scatter(x=pd.to_datetime(list(ts), utc=True), y=list(equity), name=name))
    fig.update_layout(title="equity: live vs backtest", yaxis_title="USD")
    return fig.to_html(full_html=False, include_plotlyjs=False)
