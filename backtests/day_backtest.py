"""The backtest of one live or rehearsed day, for its drift report (``live.drift``).

The same bars (the catalog's, through the day), the same models (the saved versions the run
journaled as in use), the same strategy settings and the venue's costs as the backtest config
says: the saved ensemble predicts the day's rows without refitting
(``backtests.saved_ensemble``), the trade step's own window replays them in a BacktestNode
from the run's starting cash. Beside the signals, orders and fills it hands back the day's
feature rows as the batch function computes them with the champion's saved feature fit (what
the live actor computed, by the parity tests), for the feature-drift check.
"""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd

from backtests.config import BacktestConfig, ConfigError
from backtests.saved_ensemble import predict_saved
from backtests.signal_outlook import SignalOutlook
from backtests.trade import window_spec
from backtests.train import panel_from_bars, read_bars
from backtests.trained import TrainedRun
from backtests.window import run_windows
from catalog.instruments import instrument_id
from catalog.store import MarketCatalog
from models.pipeline import load_fitted, with_fitted
from models.promotion import Ensemble, find_ensembles
from models.registry import ModelRegistry
from models.splits import Fold
from strategies.settings import StrategySettings


class UnknownModelsError(ConfigError):
    """The run's model directories are not one ensemble of their registry."""


@dataclass(frozen=True)
class DayBacktest:
    """``signals``: (instrument id, bar ts) -> probabilities in ``columns`` order; ``intents``:
    the order intents in creation order; ``fills``: the engine's fills report; ``equity``:
    (ts ns, account total); ``features``: the day's feature rows, columns ``feature_names``."""

    columns: tuple[str, ...]
    bars: frozenset[tuple[str, int]]
    signals: dict[tuple[str, int], tuple[float, ...]]
    intents: list[dict]
    fills: pd.DataFrame
    pnl: float
    equity: list[tuple[int, float]]
    features: np.ndarray
    feature_names: tuple[str, ...]


def backtest_day(config: BacktestConfig, catalog_path: Path, symbols: list[str], model_dirs: Mapping[str, str],
                 strategy: StrategySettings, day: date, starting_cash: float, work_dir: Path) -> DayBacktest:
    """Backtest ``day`` (a session of the catalog) with the saved models ``model_dirs`` (name
    -> directory, as ``RunInfo.model_dirs`` journals them); engine files go to ``work_dir``."""
    registry, ensemble = _ensemble_of(model_dirs)
    columns = config.signal_columns()
    if set(columns) != set(model_dirs):
        raise ConfigError(f"the backtest config computes the signals {list(columns)}, the run traded "
                          f"{sorted(model_dirs)}: give the config the models were trained with")
    catalog = MarketCatalog(catalog_path)
    start, end = (int(pd.Timestamp(d).tz_localize("America/New_York").value) for d in (day, day + timedelta(days=1)))
    bars = read_bars(catalog, symbols)
    panel, _ = panel_from_bars(bars, config)
    fold = Fold(index=0, train_start_ns=start, train_end_ns=start, test_start_ns=start, test_end_ns=end)
    unscreened = msgspec.structs.replace(config, universe_screen=None)  # the run traded its whole universe
    outlook = SignalOutlook.prepare(unscreened, catalog, symbols, [fold], panel.feature_names)
    in_day = np.flatnonzero((panel.ts_ns >= start) & (panel.ts_ns < end))
    work_dir = Path(work_dir)
    signal_catalog = MarketCatalog(work_dir / "signals")
    signal_catalog.nautilus.write_data([i for i in catalog.instruments() if i.id.symbol.value in symbols])
    predicted = predict_saved(registry, ensemble, columns, strategy.weights, panel, bars, in_day, outlook,
                              signal_catalog)
    ids = np.array([str(instrument_id(s)) for s in panel.symbols])[panel.symbol]
    signals = {(ids[r], int(panel.ts_ns[r])): tuple(float(predicted.probabilities[c][k]) for c in columns)
               for k, r in enumerate(predicted.rows)}
    funded = msgspec.structs.replace(config, venue=msgspec.structs.replace(config.venue, starting_cash=starting_cash))
    run = TrainedRun(run_dir=work_dir, config=funded, catalog_path=catalog.path.resolve(), symbols=tuple(symbols),
                     folds=(fold,))
    spec = dataclasses.replace(window_spec(run, fold, strategy, work_dir), name=f"day-{day}")
    (window,) = run_windows([spec])
    account = pd.read_parquet(window.account_path)
    equity = [(int(pd.Timestamp(ts).value), float(total)) for ts, total in account["total"].astype(float).items()]
    fitted = with_fitted(panel, bars, load_fitted(Path(next(iter(model_dirs.values())))))
    return DayBacktest(
        columns=columns, bars=frozenset((ids[r], int(panel.ts_ns[r])) for r in in_day), signals=signals,
        intents=pd.read_parquet(window.orders_path).to_dict("records"), fills=pd.read_parquet(window.fills_path),
        pnl=window.final_balance - starting_cash, equity=equity, features=fitted.X[in_day],
        feature_names=tuple(panel.feature_names))


def _ensemble_of(model_dirs: Mapping[str, str]) -> tuple[ModelRegistry, Ensemble]:
    """The registry holding ``model_dirs`` (``root/<name>/vNNNN``) and the ensemble they are."""
    roots = {Path(d).resolve().parent.parent for d in model_dirs.values()}
    if len(roots) != 1:
        raise UnknownModelsError(f"the run's models {dict(model_dirs)} are not in one registry")
    registry = ModelRegistry(roots.pop())
    wanted = {name: Path(d).resolve() for name, d in model_dirs.items()}
    for ensemble in reversed(find_ensembles(registry)):
        if all(name in ensemble.versions and registry.path(name, ensemble.versions[name]).resolve() == path
               for name, path in wanted.items()):
            return registry, ensemble
    raise UnknownModelsError(f"the run's models {dict(model_dirs)} are no ensemble of the registry {registry.root}")
