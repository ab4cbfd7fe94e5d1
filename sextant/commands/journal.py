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

journal_app = typer.Typer(help="Read the live journal: runs, orders, fills, P&L, signals, model versions.",
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
    try:
        when = date.fromisoformat(session)
    except ValueError:
        fail(f"{session!r} is not a date; give YYYY-MM-DD")
    _show(when, dsn, data_dir)


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
    console.print(_table(f"signals: {report.signal_count:,}; the most confident",
                         ["bar", "instrument", "decision", "confidence", "expected return", "risk"], [
        [ny(s["ts_event"], "%H:%M"), s["instrument_id"], s["decision"], _number(s["confidence"], ".3f"),
         _number(s["expected_return"], "+.5f"), s["risk_score"]] for s in report.top_signals]))


def _print_decisions(decisions: list[dict]) -> None:
    if decisions:
        console.print(_table("decisions", ["time", "kind", "subject", "evidence"], [
            [ny(d["ts"], "%H:%M:%S"), d["kind"], d["subject"], _brief(d["details"])] for d in decisions]))


def _brief(details: dict, width: int = 100) -> str:
    text = json.dumps(details, separators=(", ", ": "), default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def _number(value: float, spec: str) -> str:
    """``value`` formatted; "-" for NaN (a signal whose outlook had no forecast yet)."""
    return "-" if math.isnan(value) else format(value, spec)
