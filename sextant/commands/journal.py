"""`sextant journal today|day YYYY-MM-DD`: what the journal database holds about a day."""

import json
import math
from datetime import date
from pathlib import Path
from typing import Annotated, get_args

import msgspec
import pandas as pd
import typer
from rich.table import Table

from live.drift import DriftReport
from live.journal import (
    DayReport,
    EmptyDayError,
    JournalConfigError,
    JournalSchemaError,
    JournalSettings,
    JournalUnavailableError,
    open_journal,
)
from live.journal.settings import SinkName
from sextant.commands.common import console, fail, ny

# what a journal refuses with a message of its own (a wrong DSN, a newer schema, a setting)
JOURNAL_ERRORS = (JournalUnavailableError, JournalSchemaError, JournalConfigError)

journal_app = typer.Typer(help="Read the live journal: runs, orders, fills, P&L, signals, strategy decisions, model versions.",
                          no_args_is_help=True)

DsnOpt = Annotated[str | None, typer.Option(
    "--dsn", help="the journal database (default: $SEXTANT_JOURNAL_DSN, else the embedded server)")]
DataDirOpt = Annotated[Path, typer.Option("--data-dir", help="the embedded server's data directory")]


def with_journal_sinks(cfg, sinks: str):
    """``cfg`` (a LiveConfig) with its journal sinks replaced by ``--journal``'s list."""
    names = tuple(dict.fromkeys(s.strip() for s in sinks.split(",") if s.strip()))
    unknown = [n for n in names if n not in get_args(SinkName)]
    if unknown:
        fail(f"--journal {sinks!r}: unknown sink {', '.join(unknown)}; choose from "
             f"{', '.join(get_args(SinkName))}")
    return msgspec.structs.replace(cfg, journal=msgspec.structs.replace(cfg.journal, sinks=names))


@journal_app.command()
def today(dsn: DsnOpt = None, data_dir: DataDirOpt = Path("data/postgres")) -> None:
    """Today's runs (New York date)."""
    _show(pd.Timestamp.now(tz="America/New_York").date(), dsn, data_dir)


@journal_app.command()
def day(
    session: Annotated[str, typer.Argument(metavar="YYYY-MM-DD", help="the trading day")],
    dsn: DsnOpt = None,
    data_dir: DataDirOpt = Path("data/postgres"),
) -> None:
    """One day's runs."""
    _show(_date(session), dsn, data_dir)


@journal_app.command()
def drift(
    session: Annotated[str, typer.Argument(metavar="YYYY-MM-DD", help="the trading day")],
    html: Annotated[Path | None, typer.Option("--html", help="also write the report as an HTML page here")] = None,
    dsn: DsnOpt = None,
    data_dir: DataDirOpt = Path("data/postgres"),
) -> None:
    """A day's drift report: live vs the backtest of the same bars, and feature drift (PSI)."""
    from live.drift_html import write_drift_html
    from live.journal.drift import NoDriftReportError

    when = _date(session)
    settings = JournalSettings(sinks=(), data_dir=str(data_dir))
    try:
        with open_journal(settings, dsn=dsn, must_exist=True) as journal:
            reports = journal.read_drift(when)
    except (*JOURNAL_ERRORS, NoDriftReportError) as e:
        fail(str(e))
    for report in reports:
        print_drift(report)
    if html is not None:
        console.print(f"drift report: {write_drift_html(reports, html)}")


def print_drift(report: DriftReport) -> None:
    """Unexplained differences in red, significant features in red, moderate in yellow."""
    counts = report.counts
    console.print(f"[bold]drift of {report.trading_day.isoformat()}[/] (run {report.run_id[:8]}): signals "
                  f"{counts['live_signals']:,} live / {counts['backtest_signals']:,} backtest, orders "
                  f"{counts['live_orders']} / {counts['backtest_orders']}, fills {counts['live_fills']} / "
                  f"{counts['backtest_fills']}, P&L {report.live_pnl:+.2f} / {report.backtest_pnl:+.2f}")
    unexplained = len(report.unexplained)
    console.print(f"{len(report.differences)} differences, " + (
        f"[bold red]{unexplained} unexplained[/]" if unexplained else "none unexplained"))
    by_reason: dict[str, int] = {}
    for d in report.differences:
        by_reason[d.reason] = by_reason.get(d.reason, 0) + 1
    if by_reason:
        console.print(_table("differences by reason", ["reason", "count"], sorted(by_reason.items())))
    if unexplained:
        console.print(_table("unexplained differences", ["kind", "what", "detail"],
                             [[d.kind, d.key, d.detail] for d in report.unexplained]), style="red")
    colour = {"significant": "bold red", "moderate": "yellow", "stable": ""}
    console.print(_table("feature drift (PSI against the champion's training window)", ["feature", "PSI", "level"], [
        [f.feature, f"{f.psi:.3f}", f"[{colour[f.level]}]{f.level}[/]" if colour[f.level] else f.level]
        for f in report.features]))


def _date(session: str) -> date:
    try:
        return date.fromisoformat(session)
    except ValueError:
        fail(f"{session!r} is not a date; give YYYY-MM-DD")


def _show(when: date, dsn: str | None, data_dir: Path) -> None:
    settings = JournalSettings(sinks=(), data_dir=str(data_dir))  # reading: no sink
    try:
        with open_journal(settings, dsn=dsn, must_exist=True) as journal:
            report = journal.read_day(when)
    except (*JOURNAL_ERRORS, EmptyDayError) as e:
        fail(str(e))
    print_day(report)


def _table(title: str, columns: list[str], rows: list[list]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("-" if v is None else str(v) for v in row))
    return table


def print_day(report: DayReport) -> None:
    console.print(f"[bold]journal of {report.day.isoformat()}[/]")
    _print_decisions(report.decisions)
    if not report.runs:
        return
    summaries = {s["run_id"]: s for s in report.summaries}
    console.print(_table("runs", ["run", "name", "mode", "started", "stopped", "orders", "fills", "P&L",
                                  "realized"], [
        [r["run_id"][:8], r["name"], r["mode"], ny(r["started"], "%H:%M:%S"), ny(r["stopped"], "%H:%M:%S"),
         *((s["orders"], s["fills"], s["pnl"], s["realized_pnl"]) if (s := summaries.get(r["run_id"]))
           else ("-", "-", "-", "-"))]
        for r in report.runs]))
    console.print(_table("model versions", ["run", "model", "version", "path"], [
        [v["run_id"][:8], v["name"], v["version"], v["path"]] for v in report.model_versions]))
    console.print(_table(f"orders ({len(report.orders)})", ["created", "order", "instrument", "side", "qty",
                                                            "type", "price", "trigger", "tags", "status"], [
        [ny(o["ts_init"], "%H:%M:%S"), o["client_order_id"], o["instrument_id"], o["side"], o["quantity"],
         o["type"], o["price"], o["trigger_price"], o["tags"], o["status"]] for o in report.orders]))
    console.print(_table(f"fills ({len(report.fills)})", ["time", "order", "instrument", "side", "qty", "price",
                                                          "commission"], [
        [ny(f["ts_event"], "%H:%M:%S"), f["client_order_id"], f["instrument_id"], f["side"], f["last_qty"],
         f["last_px"], f["commission"]] for f in report.fills]))
    _print_strategy_decisions(report.strategy_decisions)
    console.print(_table(f"signals: {report.signal_count:,}; the most confident",
                         ["bar", "instrument", "decision", "confidence", "expected return", "risk"], [
        [ny(s["ts_event"], "%H:%M"), s["instrument_id"], s["decision"], _number(s["confidence"], ".3f"),
         _number(s["expected_return"], "+.5f"), s["risk_score"]] for s in report.top_signals]))


def _print_decisions(decisions: list[dict]) -> None:
    if decisions:
        console.print(_table("decisions", ["time", "kind", "subject", "evidence"], [
            [ny(d["ts"], "%H:%M:%S"), d["kind"], d["subject"], _brief(d["details"])] for d in decisions]))


def _print_strategy_decisions(counts: list[dict]) -> None:
    """How many signals each run entered on, held or skipped, by reason."""
    if counts:
        console.print(_table("strategy decisions", ["run", "action", "reason", "signals"], [
            [c["run_id"][:8], c["action"], c["reason"] or "-", f"{c['n']:,}"] for c in counts]))


def _brief(details: dict, width: int = 100) -> str:
    text = json.dumps(details, separators=(", ", ": "), default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def _number(value: float, spec: str) -> str:
    """``value`` formatted; "-" for NaN (a signal whose outlook had no forecast yet)."""
    return "-" if math.isnan(value) else format(value, spec)
