"""The drift report's composition: the backtest of a day (``backtests.day_backtest``) handed
to live as a ``DayBacktestHook``, built here because only the composition root imports both
the backtest engine and live."""

from datetime import date
from pathlib import Path

import pandas as pd

from backtests.config import BacktestConfig, ConfigError, load_config
from backtests.day_backtest import backtest_day
from backtests.trained import MANIFEST, TrainedRun
from live.drift import DayBacktestHook, DayRecord, Fill
from live.settings import LiveConfig


def backtest_config(cfg: LiveConfig, path: Path | None) -> BacktestConfig:
    """The config the models were trained with: ``path`` (``--drift-config``), else the run
    whose ``models/`` the registry is."""
    if path is not None:
        return load_config(path)
    run_dir = Path(cfg.models.registry).parent
    if not (run_dir / MANIFEST).is_file():
        raise ConfigError(f"the drift report backtests the day with the config the models were trained with: the "
                          f"registry {cfg.models.registry} is not a run's models/ (no {run_dir / MANIFEST}); "
                          "give it with --drift-config")
    return TrainedRun.load(run_dir).config


def day_backtest_hook(cfg: LiveConfig, config: BacktestConfig, catalog: Path, work_dir: Path) -> DayBacktestHook:
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


def _fills(report: pd.DataFrame, intents: list[dict]) -> list[Fill]:
    """The engine's order fills report (one row per filled order) in fill order."""
    if report.empty:
        return []
    created = {str(i["client_order_id"]): n for n, i in enumerate(intents)}
    tags = {str(i["client_order_id"]): i["tags"] for i in intents}
    rows = report.reset_index()
    rows = rows.assign(created=rows["client_order_id"].map(created), last=pd.to_datetime(rows["ts_last"]))
    return [Fill(r.instrument_id, r.side, float(r.filled_qty), float(r.avg_px), tags.get(r.client_order_id) or "")
            for r in rows.sort_values(["last", "created"]).itertuples()]
