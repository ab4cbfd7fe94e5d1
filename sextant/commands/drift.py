"""The drift report's composition: the backtest of a day (``backtests.day_backtest``) handed
to live as a ``DayBacktestHook``, built here because only the composition root imports both
the backtest engine and live. Imports are inside the functions: the CLI starts without them."""

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

DriftConfigOpt = Annotated[Path | None, typer.Option(
    "--drift-config", help="the backtest YAML the models were trained with (default: the run the registry is in)")]

# (the rehearsed day's result, its starting cash, its directory) -> the report and its summary
DriftAfterDay = Callable[[object, float, Path], tuple[object, dict]]


def backtest_config(cfg, path: Path | None):
    """The config the models were trained with: ``path`` (``--drift-config``), else the run
    whose ``models/`` the registry is."""
    from backtests.config import ConfigError, load_config
    from backtests.trained import MANIFEST, TrainedRun

    if path is not None:
        return load_config(path)
    run_dir = Path(cfg.models.registry).parent
    if not (run_dir / MANIFEST).is_file():
        raise ConfigError(f"the drift report backtests the day with the config the models were trained with: the "
                          f"registry {cfg.models.registry} is not a run's models/ (no {run_dir / MANIFEST}); "
                          "give it with --drift-config")
    return TrainedRun.load(run_dir).config


def day_backtest_hook(cfg, config, catalog: Path, work_dir: Path):
    """A ``live.drift.DayBacktestHook`` over ``backtests.day_backtest`` with the live config's
    universe and strategy settings."""
    from backtests.day_backtest import backtest_day
    from live.drift import DayRecord

    def backtest(day: date, model_dirs, starting_cash: float) -> DayRecord:
        result = backtest_day(config, catalog, list(cfg.universe), model_dirs, cfg.strategy, day, starting_cash,
                              Path(work_dir) / f"drift-backtest-{day}")
        order = sorted(range(len(result.columns)), key=lambda k: result.columns[k])  # DayRecord: sorted names
        return DayRecord(
            model_dirs=dict(model_dirs), bars=result.bars, intents=result.intents, pnl=result.pnl,
            signals={key: tuple(p[k] for k in order) for key, p in result.signals.items()},
            fills=_fills(result.fills, result.intents), equity=result.equity, features=result.features,
            feature_names=result.feature_names)

    return backtest


def _fills(report, intents: list[dict]) -> list:
    """The engine's order fills report (one row per filled order) in fill order."""
    import pandas as pd

    from live.drift import Fill

    if report.empty:
        return []
    created = {str(i["client_order_id"]): n for n, i in enumerate(intents)}
    tags = {str(i["client_order_id"]): i["tags"] for i in intents}
    rows = report.reset_index()
    rows = rows.assign(created=rows["client_order_id"].map(created), last=pd.to_datetime(rows["ts_last"]))
    return [Fill(r.instrument_id, r.side, float(r.filled_qty), float(r.avg_px), tags.get(r.client_order_id) or "")
            for r in rows.sort_values(["last", "created"]).itertuples()]


def drift_after_day(cfg, catalog: Path, out: Path, drift_config: Path | None) -> DriftAfterDay | None:
    """What runs after each rehearsed day: its backtest, the report (journaled, drift.json in
    the day's directory) and the ledger's summary. None, with a one-line notice, when the
    config the models were trained with cannot be found (the day itself still stands)."""
    from backtests.config import ConfigError
    from live.drift_run import drift_summary, report_rehearsed_day
    from sextant.commands.common import console

    try:
        hook = day_backtest_hook(cfg, backtest_config(cfg, drift_config), catalog, out)
    except ConfigError as e:
        if drift_config is not None:
            raise
        console.print(f"[yellow]no drift report: {e}[/]")
        return None

    def after(result, starting_cash: float, day_dir: Path):
        report = report_rehearsed_day(result, starting_cash, hook, cfg.journal, day_dir)
        return report, drift_summary(report)

    return after


def drift_after_live_day(cfg, out: Path, drift_config: Path | None):
    """A ``live.live_phases.LiveDriftHook``: the day's backtest over the schedule's catalog and
    the report of the run read back from the journal. None, with a one-line notice, when the
    schedule has no catalog, the journal no database, or the models' config cannot be found."""
    from backtests.config import ConfigError
    from live.drift_run import drift_summary, report_live_day
    from sextant.commands.common import console

    if cfg.schedule.catalog is None or "postgres" not in cfg.journal.sinks:
        console.print("[yellow]no drift reports: they need schedule.catalog and the postgres journal[/]")
        return None
    try:
        hook = day_backtest_hook(cfg, backtest_config(cfg, drift_config), Path(cfg.schedule.catalog), out)
    except ConfigError as e:
        if drift_config is not None:
            raise
        console.print(f"[yellow]no drift report: {e}[/]")
        return None
    return lambda journal, run_id, day, day_dir: drift_summary(report_live_day(journal, run_id, day, hook, day_dir))
