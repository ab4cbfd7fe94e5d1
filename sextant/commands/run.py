"""`sextant run`: the market-hours scheduler, live day after day, or rehearsed over catalog days."""

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer
from rich.markup import escape
from rich.progress import Progress

from catalog.errors import CalendarRangeError, CatalogError
from sextant.commands.common import ParamsOpt, announce_panel, console, fail, writable_dir
from sextant.commands.drift import DriftConfigOpt, drift_after_day, drift_after_live_day
from sextant.commands.journal import JOURNAL_ERRORS

if TYPE_CHECKING:
    from backtests.config import BacktestConfig
    from live.panel.launch import PanelOptions, RunPanel
    from live.scheduler import RetrainHook
    from live.settings import LiveConfig


def run(
    config: Annotated[Path, typer.Argument(help="live YAML (configs/paper.yaml); its schedule: section sets the times")],
    rehearse: Annotated[bool, typer.Option(help="run the schedule offline over catalog days (both sandboxes)")] = False,
    catalog: Annotated[Path, typer.Option("--catalog", help="with --rehearse: the catalog to replay")] = Path("data/catalog"),
    first: Annotated[str | None, typer.Option("--from", help="with --rehearse: first day (YYYY-MM-DD)")] = None,
    last: Annotated[str | None, typer.Option("--to", help="with --rehearse: last day (YYYY-MM-DD)")] = None,
    out: Annotated[Path, typer.Option("--out", help="journals, the phase ledger and the lock go here")] = Path("runs"),
    live_money: Annotated[bool, typer.Option("--live", help="real money: also needs --i-understand-real-money")] = False,
    understood: Annotated[bool, typer.Option("--i-understand-real-money")] = False,
    drift: Annotated[bool, typer.Option(help="each day's drift report at its close (live vs its backtest)")] = True,
    drift_config: DriftConfigOpt = None,
    params: ParamsOpt = None,
    panel: Annotated[bool, typer.Option("--panel", help="the control panel beside the run (prints its URL)")] = False,
    panel_port: Annotated[int, typer.Option("--panel-port", min=0, max=65535)] = 8000,
    panel_host: Annotated[str, typer.Option("--panel-host", help="127.0.0.1 unless --panel-allow-remote")] = "127.0.0.1",
    panel_allow_remote: Annotated[bool, typer.Option("--panel-allow-remote",
                                                     help="let --panel-host be beyond this machine")] = False,
    pace: Annotated[float, typer.Option("--pace", min=0.0, help="with --rehearse --panel: seconds per "
                                        "rehearsed minute, to watch the day")] = 0.2,
) -> None:
    """The NYSE day on a schedule: pre-open, session, close (flatten, verified), post-close.

    Live: until Ctrl-C or SIGTERM, which cancel, flatten and exit like `sextant live`."""
    from live.settings import LiveConfigError, check_mode, load_live_config

    if rehearse:
        if live_money:
            fail("--rehearse trades the sandboxes only; drop --live")
        days = _rehearsal_days(first, last)
    elif first is not None or last is not None:
        fail("--from/--to choose the days of a rehearsal (--rehearse); a live run starts today")
    try:
        cfg = load_live_config(config, params)
        if not rehearse:  # a rehearsal swaps both endpoints and keys for its loopback sandboxes
            check_mode(cfg, live_flag=live_money, understood=understood)
    except LiveConfigError as e:
        fail(str(e))
    retrain = _retrain_config(cfg, config, live=not rehearse)
    writable_dir(out)
    panel_options = _panel_options(panel_host, panel_port, panel_allow_remote) if panel else None
    if rehearse:
        _rehearse(cfg, catalog, days, out, retrain, drift, drift_config, panel_options, pace)
    else:
        _run_live(cfg, out, retrain, drift, drift_config, panel_options)


def _rehearsal_days(first: str | None, last: str | None) -> tuple[date, date]:
    from catalog.sessions import trading_sessions

    if first is None or last is None:
        fail("--rehearse needs --from YYYY-MM-DD and --to YYYY-MM-DD (days in the catalog)")
    try:
        days = date.fromisoformat(first), date.fromisoformat(last)
    except ValueError:
        fail(f"--from {first!r} / --to {last!r}: give dates as YYYY-MM-DD")
    try:
        sessions = trading_sessions(*days)
    except CalendarRangeError as e:
        fail(f"--from {first} --to {last}: {e}")
    if sessions.empty:
        fail(f"--from {first} --to {last} holds no NYSE session")
    return days


def _retrain_config(cfg, source: Path, *, live: bool):
    """The walk-forward config ``models.retrain`` names (None: no retrain), checked before any
    day runs: its own schema, the models the live strategy weighs (each night's champion must
    hold them) and, live, the catalog it retrains on."""
    if cfg.models.retrain is None:
        return None
    from backtests.config import ConfigError, load_config

    try:
        retrain = load_config(cfg.models.retrain)
    except ConfigError as e:
        fail(f"{source}: 'models.retrain': {e}")
    missing = sorted(set(cfg.strategy.weights) - set(retrain.signal_columns()))
    if missing:
        fail(f"{source}: 'models.retrain': {cfg.models.retrain} trains {list(retrain.signal_columns())}, not "
             f"{missing}, which 'strategy.weights' trades: the champions it makes would lack them")
    if live and cfg.schedule.catalog is None:
        fail(f"{source}: 'models.retrain' retrains on 'schedule.catalog' (the catalog pre-open ingests into), "
             "which is not set")
    return retrain


def retrain_hook(cfg: "LiveConfig", retrain: "BacktestConfig", catalog: Path, work: Path) -> "RetrainHook":
    """The post-close's ``RetrainHook``: one night of ``backtests.nightly`` on the live registry
    over ``catalog`` (the catalog the day was traded from), its backtests under ``work``. A
    night that cannot train or judge (too few sessions, a crashed evaluation window) is
    recorded as failed (in the ledger, the journal and the console) and the champion stays:
    the next session still trades."""
    from backtests.config import ConfigError
    from backtests.nightly import retrain_and_evaluate
    from backtests.window import WindowCrashedError
    from catalog.store import open_catalog
    from models.promotion import PromotionError
    from models.registry import ModelRegistry

    registry = ModelRegistry(Path(cfg.models.registry))

    def nightly(plan) -> dict:
        try:
            decision = retrain_and_evaluate(retrain, open_catalog(catalog), registry, plan.day,
                                            work / f"nightly-{plan.day}")
        except (ConfigError, CatalogError, PromotionError, WindowCrashedError) as e:
            return {"action": "failed", "reason": str(e)}
        return decision.to_record()

    return nightly


def _rehearse(cfg, catalog: Path, days: tuple[date, date], out: Path, retrain, drift: bool,
              drift_config: Path | None, panel: "PanelOptions | None", pace: float) -> None:
    """Every day is checked against the catalog before the first is traded; Ctrl-C stops the
    day in progress like a live stop (cancel, flatten, journal) and exits 130. Each night
    retrains on the rehearsal's catalog when ``models.retrain`` is set; each day's drift report
    is journaled at its close (``sextant journal drift DAY``)."""
    from backtests.config import ConfigError
    from catalog.sessions import trading_sessions
    from live.panel.server import PanelStartError
    from live.rehearsal import RehearsalError, check_rehearsal_day
    from live.rehearsal_phases import RehearsalDayPhases
    from live.schedule import NEW_YORK
    from live.scheduler import FileLedger, Scheduler, SimulatedClock

    run_dir = out / f"rehearsal-{cfg.name}-{days[0]}-{days[1]}"
    ledger = FileLedger(run_dir / "phases.jsonl")
    try:
        for session in trading_sessions(*days).index:
            check_rehearsal_day(cfg, catalog, session.date())
        ledger.path.unlink(missing_ok=True)  # a rehearsal replays its whole range
        if retrain is not None:
            cfg = _rehearsal_registry(cfg, run_dir)
        _warn_if_trained_later(cfg, days[0])
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("starting", total=None)

            def on_minute(plan, done: int, total: int) -> None:
                progress.update(task, description=f"{plan.day} session", completed=done, total=total)

            if drift_config is None and retrain is not None:
                drift_config = Path(cfg.models.retrain)  # what the nightly champions are trained with
            after = drift_after_day(cfg, catalog, run_dir, drift_config) if drift else None
            clock = SimulatedClock(pd.Timestamp(days[0], tz=NEW_YORK))
            hook = None if retrain is None else retrain_hook(cfg, retrain, catalog, run_dir)
            with _panel(cfg, panel, rehearsal=True, catalog=catalog, retrain=hook) as watched, \
                    RehearsalDayPhases(cfg, catalog, run_dir, retrain=hook, on_minute=on_minute, drift=None if after is None else (
                        lambda result, cash, day_dir: after(result, cash, day_dir)[1]),
                        **_panel_phases(watched), minute_secs=pace if watched else 0.0) as phases:
                _attach(watched, phases.journal)
                Scheduler(phases, cfg.schedule, cfg.strategy.risk.flatten_minutes_before_close, clock, ledger,
                          on_event=_show_event, on_idle=_show_idle).run(*days)
    except (RehearsalError, CatalogError, ConfigError, PanelStartError, *JOURNAL_ERRORS) as e:
        fail(str(e))
    except KeyboardInterrupt:
        console.print(f"rehearsal stopped (Ctrl-C): orders cancelled, positions flattened; journals: {run_dir}")
        raise typer.Exit(code=130) from None
    for s in phases.summaries:
        console.print(f"{s.day}: {s.minutes} minutes, {s.signals:,} signals, {s.orders} orders, {s.fills} fills, "
                      f"P&L {s.end_cash - s.start_cash:+,.2f}, {'flat' if s.flat else '[red]NOT FLAT[/]'}")
    console.print(f"phases: {ledger.path}")


def _rehearsal_registry(cfg, run_dir: Path):
    """``cfg`` trading a copy of its registry made anew in ``run_dir``: the nights' promotions
    of a rehearsal never change what the live registry pins, and a rehearsal run again starts
    from the same champion (not from the last run's, trained on the days it replays)."""
    import shutil

    import msgspec

    copy = run_dir / "models"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(cfg.models.registry, copy)
    return msgspec.structs.replace(cfg, models=msgspec.structs.replace(cfg.models, registry=str(copy)))


def _warn_if_trained_later(cfg, first: date) -> None:
    """A champion trained on sessions from ``first`` on has seen the days it is about to trade."""
    from live.schedule import NEW_YORK

    champion = cfg.champion()
    if champion.train_end_ns > pd.Timestamp(first, tz=NEW_YORK).value:
        last = pd.Timestamp(champion.train_end_ns - 1, tz="UTC").tz_convert(NEW_YORK).date()
        console.print(f"[yellow]warning:[/] the champion {escape(champion.label())} was trained on the sessions "
                      f"through {last}: on the rehearsed days from {first} to then its signals see their own future")


def _run_live(cfg, out: Path, retrain, drift: bool, drift_config: Path | None,
              panel: "PanelOptions | None") -> None:
    """One scheduler per config: a second is refused while the first holds the lock. Each
    night retrains on the schedule's catalog when ``models.retrain`` is set; each close
    reports the day's drift (``drift``) when the schedule has a catalog and the journal a
    database."""
    import signal

    from backtests.config import ConfigError
    from live.live_phases import LiveDayPhases, NodeStoppedError
    from live.node import NodeStartError
    from live.panel.server import PanelStartError
    from live.scheduler import FileLedger, Scheduler, SchedulerLock, SchedulerLockedError, WallClock

    state = out / f"scheduler-{cfg.name}"
    clock = WallClock()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops like Ctrl-C, idle or trading
    try:
        hook = None if retrain is None else retrain_hook(cfg, retrain, Path(cfg.schedule.catalog), state)
        if drift_config is None and retrain is not None:
            drift_config = Path(cfg.models.retrain)  # what the nightly champions are trained with
        after = drift_after_live_day(cfg, state, drift_config) if drift else None
        with (SchedulerLock(state / "scheduler.lock"),
              _panel(cfg, panel, rehearsal=False, catalog=cfg.schedule.catalog, retrain=hook) as watched,
              LiveDayPhases(cfg, out, clock, retrain=hook, drift=after, **_panel_phases(watched)) as phases):
            _attach(watched, phases.journal)
            console.print(f"[bold]{cfg.mode.upper()}[/] schedule for {', '.join(cfg.universe)}; "
                          f"phases: {state / 'phases.jsonl'}; Ctrl-C stops and flattens")
            Scheduler(phases, cfg.schedule, cfg.strategy.risk.flatten_minutes_before_close, clock,
                      FileLedger(state / "phases.jsonl"), on_event=_show_event, on_idle=_show_idle).run()
    except (SchedulerLockedError, PanelStartError) as e:
        fail(str(e))
    except (NodeStartError, NodeStoppedError) as e:
        fail(f"the node did not trade: {e}")
    except (ConfigError, *JOURNAL_ERRORS) as e:
        fail(str(e))
    except KeyboardInterrupt:
        console.print("stopped: orders cancelled, positions flattened")


def _panel_options(host: str, port: int, allow_remote: bool) -> "PanelOptions":
    from live.panel.launch import PanelOptions
    from live.panel.server import is_loopback

    if not is_loopback(host) and allow_remote:  # without the flag the server refuses it
        console.print(f"[yellow]warning:[/] the panel listens on {escape(host)}, beyond this machine: "
                      "keep the token secret")
    return PanelOptions(host, port, allow_remote)


def _panel(cfg, options: "PanelOptions | None", *, rehearsal: bool, catalog, retrain):
    """The control panel beside the run (``--panel``), or nothing."""
    from contextlib import nullcontext

    from live.panel.launch import run_panel

    if options is None:
        return nullcontext()
    return run_panel(cfg, options, rehearsal=rehearsal, catalog=None if catalog is None else Path(catalog),
                     retrain=retrain)


def _panel_phases(watched: "RunPanel | None") -> dict:
    """The phases' arguments that give the panel each node and every journal row."""
    return {} if watched is None else {"control": watched.control, "also": [watched.sink]}


def _attach(watched: "RunPanel | None", journal) -> None:
    if watched is not None:
        watched.attach(journal)
        announce_panel(watched.server)


def _show_event(event) -> None:
    from live.retrain import decision_subject
    from live.schedule import NEW_YORK, Phase

    at = event.slot.start.tz_convert(NEW_YORK).strftime("%H:%M")
    line = f"{event.slot.day} {at} {event.slot.phase}: {event.outcome}"
    if event.slot.phase == Phase.CLOSE and event.outcome == "done":
        detail = event.detail
        line += "" if detail.get("flat", True) else f" [red]NOT FLAT at the broker: {detail.get('open_positions')}[/]"
        if drift := detail.get("drift"):
            unexplained = f"[red]{drift['unexplained']} unexplained[/]" if drift["unexplained"] else "none unexplained"
            line += f"; drift: {drift['differences']} differences, {unexplained} (`sextant journal drift {event.slot.day}`)"
    if event.slot.phase == Phase.POST_CLOSE and "action" in event.detail:  # the nightly retrain's decision
        detail = event.detail
        what = "[red]retrain failed[/]" if detail["action"] == "failed" else escape(decision_subject(detail))
        line += f" {what}: {escape(detail['reason'])}"
    console.print(line, highlight=False)


def _show_idle(day: date) -> None:
    console.print(f"{day}: no session ({'weekend' if day.weekday() >= 5 else 'holiday'})", highlight=False)
