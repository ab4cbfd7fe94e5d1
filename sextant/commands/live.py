"""`sextant live`: the TradingNode (paper unless every real-money guard agrees), or a rehearsal."""

from datetime import date
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.progress import Progress

from catalog.errors import CatalogError
from sextant.commands.common import ParamsOpt, console, fail, writable_dir
from sextant.commands.drift import DriftConfigOpt, drift_after_day
from sextant.commands.journal import JOURNAL_ERRORS, print_drift, with_journal_sinks

STARTING_CASH = 100_000.0  # a rehearsal's paper account


def live(
    config: Annotated[Path, typer.Argument(help="live YAML (configs/paper.yaml)")],
    rehearse: Annotated[bool, typer.Option(help="trade one catalog day offline against both sandboxes")] = False,
    catalog: Annotated[Path, typer.Option("--catalog", help="with --rehearse: the catalog to replay")] = Path("data/catalog"),
    day: Annotated[str | None, typer.Option(help="with --rehearse: the session to trade (YYYY-MM-DD)")] = None,
    out: Annotated[Path, typer.Option("--out", help="where the journal's Parquet files go (a directory per run)")] = Path("runs"),
    journal: Annotated[str | None, typer.Option(
        "--journal", help="journal sinks, comma-separated: postgres, parquet (default: the config's journal.sinks)")] = None,
    live_money: Annotated[bool, typer.Option("--live", help="real money: also needs --i-understand-real-money")] = False,
    understood: Annotated[bool, typer.Option("--i-understand-real-money")] = False,
    drift: Annotated[bool, typer.Option(help="with --rehearse: the day's drift report (live vs its backtest)")] = True,
    drift_config: DriftConfigOpt = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="trade sandboxes whose simulated clock stands at this time (ISO, UTC unless "
        "it says): the warm-up history ends there, the journal's day is its session, and "
        "reconciliation reads the broker's orders without a wall-clock lookback")] = None,
    params: ParamsOpt = None,
) -> None:
    """Run the TradingNode: Polygon data + Alpaca execution (paper unless told otherwise)."""
    from live.settings import LiveConfigError, check_mode, load_live_config

    if rehearse:
        if live_money:
            fail("--rehearse trades the sandboxes only; drop --live")
        if day is None:
            fail("--rehearse needs --day YYYY-MM-DD (a session in the catalog)")
        try:
            date.fromisoformat(day)
        except ValueError:
            fail(f"--day {day!r} is not a date; give YYYY-MM-DD")
    try:
        cfg = load_live_config(config, params)
        if journal is not None:
            cfg = with_journal_sinks(cfg, journal)
        if not rehearse:  # a rehearsal swaps both endpoints and keys for its loopback sandboxes
            check_mode(cfg, live_flag=live_money, understood=understood)
    except LiveConfigError as e:
        fail(str(e))
    venue_now = None
    if as_of is not None:
        if rehearse:
            fail("--as-of is for `sextant live` against sandboxes; a rehearsal keeps its own clock")
        venue_now = _utc(as_of)
    writable_dir(out)
    if rehearse:
        _rehearse(cfg, catalog, day, out, drift, drift_config)
    else:
        _run_node(cfg, out, venue_now)


def _utc(text: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        fail(f"--as-of {text!r} is not a time; give ISO, e.g. 2024-12-30T15:00Z")
    return stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")


def _rehearse(cfg, catalog: Path, day: str, out: Path, drift: bool, drift_config: Path | None) -> None:
    """Ctrl-C stops the rehearsal like a live stop (cancel, flatten, journal) and exits 130.
    After the day, its drift report (``sextant journal drift DAY``; drift.json in the run's
    directory)."""
    from backtests.config import ConfigError
    from live.rehearsal import RehearsalError, rehearse

    run_dir = out / f"rehearsal-{cfg.name}-{day}"
    journal = _where(cfg, run_dir, day)
    try:
        with Progress(console=console) as progress:
            task = progress.add_task(f"rehearsing {day}", total=None)
            result = rehearse(cfg, catalog, day, out_dir=run_dir, starting_cash=STARTING_CASH,
                              on_minute=lambda done, total: progress.update(task, completed=done, total=total))
    except (RehearsalError, CatalogError, *JOURNAL_ERRORS) as e:
        fail(str(e))
    except KeyboardInterrupt:
        console.print(f"rehearsal stopped (Ctrl-C): orders cancelled, positions flattened; journal: {journal}")
        raise typer.Exit(code=130) from None
    console.print(f"{result.day}: {result.minutes} minutes in {result.elapsed_s:.1f} s; {len(result.signals):,} "
                  f"signals, {len(result.intents)} orders, {len(result.fills)} fills; journal: {journal}")
    if not drift:
        return
    try:
        after = drift_after_day(cfg, catalog, run_dir, drift_config)
        if after is not None:
            report, _ = after(result, STARTING_CASH, run_dir)
            print_drift(report)
    except (ConfigError, CatalogError, *JOURNAL_ERRORS) as e:
        fail(f"drift report: {e}")


def _where(cfg, run_dir: Path, day: str) -> str:
    """Where the journal of a run goes, as the user reads it back."""
    sinks = cfg.journal.sinks
    places = ([f"`sextant journal day {day}`"] if "postgres" in sinks else []) + (
        [str(run_dir)] if "parquet" in sinks else [])
    return " and ".join(places) or "in memory only (journal.sinks is empty)"


def _run_node(cfg, out: Path, venue_now: pd.Timestamp | None = None) -> None:
    """Until Ctrl-C (or SIGTERM): then the strategy cancels its orders and flattens, the journal
    is written and the node disconnects, the same stop as a rehearsal's. Exits 2 with the
    reason when a client cannot connect (a rejected key, no network). ``venue_now``: the
    simulated time of sandboxes (``--as-of``), else the venues run on the wall clock."""
    from live.journal import RunInfo, open_journal
    from live.node import NodeStartError, NodeThread, build_node, node_config

    now = venue_now if venue_now is not None else pd.Timestamp.now(tz="UTC")
    run_dir = out / f"{cfg.name}-{now.strftime('%Y%m%dT%H%M%SZ')}"
    run = RunInfo(trading_day=now.tz_convert("America/New_York").date(), name=cfg.name, mode=cfg.mode,
                  model_dirs={name: str(path) for name, path in cfg.model_dirs().items()})
    journal = _where(cfg, run_dir, run.trading_day.isoformat())
    try:
        with open_journal(cfg.journal, out_dir=run_dir) as opened:
            collector = opened.collector(run)
            node_cfg = node_config(cfg) if venue_now is None else node_config(cfg, reconciliation_lookback_mins=None)
            warmup_as_of = None if venue_now is None else venue_now.isoformat()
            with NodeThread(build_node, cfg, node_cfg, warmup_as_of=warmup_as_of, extra_actors=[collector]) as node:
                console.print(f"[bold]{cfg.mode.upper()}[/] trading {', '.join(cfg.universe)}; Ctrl-C stops and flattens")
                node.wait()
    except NodeStartError as e:
        fail(f"the node did not start: {e}")
    except JOURNAL_ERRORS as e:
        fail(str(e))
    except KeyboardInterrupt:
        console.print(f"stopped: orders cancelled, positions flattened; journal: {journal}")
