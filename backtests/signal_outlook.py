"""The train step's part beyond the classifiers: horizon models, the signals' outlook and the
weekly universe screen, per fold and inside its train window.

``backtests.train`` calls this for every fold: fit the horizon models on the fold's train rows
(each horizon purged by its own label end), compute the outlook (``models.outlook``) of the
test rows it writes, and drop the test rows of stocks the screen did not select that week.

Why the screen acts on the written signals rather than in the strategy: it is a data decision
fixed when the run is trained (like its models), so every replay of the run (its backtest,
every tuning trial) trades the same weekly universe for free, and the strategy keeps one path
for backtest and live. The models still train on every symbol (more rows; the screen is about
what is traded, not what is learnt) and out-of-sample metrics cover every symbol.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from backtests.config import BacktestConfig, ConfigError
from catalog.store import MarketCatalog
from models.dataset import Panel
from models.features import ny_day
from models.horizons import HORIZONS_DIR, HorizonModels, forward_returns
from models.outlook import Outlook, OutlookRule, outlook, write_outlook_spec
from models.splits import Fold, train_rows
from models.universe import daily_bars, screen, week_start


@dataclass(frozen=True)
class HorizonTargets:
    """Per panel row and horizon: the forward log return and when it is known."""

    returns: np.ndarray  # (rows, horizons)
    label_end: np.ndarray  # (rows, horizons)


class SignalOutlook:
    """What a run adds to its MLSignal rows besides the probabilities (module docstring)."""

    def __init__(self, config: BacktestConfig, targets: HorizonTargets | None = None,
                 universe: pd.DataFrame | None = None) -> None:
        if (config.horizons is None) != (targets is None):
            raise ValueError("horizon targets are needed exactly when the config has 'horizons'")
        self.config = config
        self.targets = targets
        self.universe = universe  # models.universe.screen's frame, None when not screened
        horizon = config.horizons.trade if config.horizons else config.labels.horizon
        self.rule = OutlookRule(weights=config.weights(), entry_threshold=config.strategy.entry_threshold,
                                allow_short=config.strategy.allow_short,
                                volatility_feature=config.signal.volatility_feature, horizon=horizon)

    @classmethod
    def prepare(cls, config: BacktestConfig, catalog: MarketCatalog, symbols: list[str],
                folds: list[Fold], feature_names: tuple[str, ...]) -> "SignalOutlook":
        """Reads ``symbols``' bars of ``catalog`` in the panel's row order (``build_panel``);
        ConfigError when the volatility feature is not one of ``feature_names``."""
        if config.signal.volatility_feature not in feature_names:
            raise ConfigError(f"'signal.volatility_feature': {config.signal.volatility_feature!r} is not a "
                              f"feature column; choose one of {list(feature_names)}")
        if config.horizons is None and config.universe_screen is None:
            return cls(config)
        returns, ends, daily = [], [], {}
        proxy = config.universe_screen.market_proxy if config.universe_screen else None
        for symbol in dict.fromkeys([*symbols, *([proxy] if proxy in catalog.symbols() else [])]):
            bars = catalog.read_bars(symbol)
            ts = bars.index.asi8
            daily[symbol] = daily_bars(ts, bars["high"].to_numpy(), bars["low"].to_numpy(),
                                       bars["close"].to_numpy(), bars["volume"].to_numpy())
            if config.horizons is not None and symbol in symbols:
                pairs = [forward_returns(bars["close"].to_numpy(), ts, h) for h in config.horizons.bars]
                returns.append(np.column_stack([r for r, _ in pairs]))
                ends.append(np.column_stack([e for _, e in pairs]))
        targets = HorizonTargets(np.concatenate(returns), np.concatenate(ends)) if config.horizons else None
        universe = None
        if config.universe_screen is not None:
            universe = screen(daily, config.universe_screen, _test_weeks(folds))
            # The proxy ETF is screened only when it is in the universe itself.
            universe = universe[universe["symbol"].isin(symbols)].reset_index(drop=True)
        return cls(config, targets, universe)

    def fit_horizons(self, fold: Fold, panel: Panel, usable: np.ndarray, registry_root: Path) -> HorizonModels | None:
        """Horizon models fitted on the fold's train rows with complete features, each horizon
        purged by its own label end; saved in the registry root as ``horizons/fold-<k>``, and
        the registry's outlook spec (``models.outlook.OUTLOOK_FILE``) names the newest fold's."""
        folder = f"{HORIZONS_DIR}/fold-{fold.index}" if self.targets is not None else None
        write_outlook_spec(registry_root, self.rule.volatility_feature, self.rule.horizon, folder)
        if self.targets is None:
            return None
        horizons = self.config.horizons
        rows = []
        for j, horizon in enumerate(horizons.bars):
            picked = train_rows(panel.ts_ns, self.targets.label_end[:, j], fold)
            picked = picked[usable[picked] & np.isfinite(self.targets.returns[picked, j])]
            if picked.size == 0:
                raise ValueError(f"fold {fold.index}: no train rows for the {horizon}-bar horizon model")
            rows.append(picked)
        model = HorizonModels(tuple(horizons.bars), horizons.alpha)
        model.fit(panel, self.targets.returns, rows)
        model.save(Path(registry_root) / folder)
        return model

    def traded(self, panel: Panel, rows: np.ndarray) -> np.ndarray:
        """Mask of ``rows`` whose stock the screen selected for the row's week (all without one)."""
        if self.universe is None:
            return np.ones(len(rows), bool)
        chosen = self.universe[self.universe["selected"]]
        keys = set(zip(chosen["week"], chosen["symbol"]))
        days = pd.to_datetime(ny_day(panel.ts_ns[rows]), unit="D").date
        symbols = np.asarray(panel.symbols)[panel.symbol[rows]]
        weeks = {d: week_start(d) for d in set(days)}
        return np.array([(weeks[d], s) in keys for d, s in zip(days, symbols)], dtype=bool)

    def of(self, panel: Panel, rows: np.ndarray, probabilities: dict[str, np.ndarray],
           horizons: HorizonModels | None) -> Outlook:
        """The outlook of ``rows`` (the fold's test rows) given the models' probabilities."""
        volatility = panel.X[rows, self.rule.volatility_column(panel.feature_names)]
        if horizons is None:
            return outlook(self.rule, probabilities, volatility)
        return outlook(self.rule, probabilities, volatility, horizons.horizons, horizons.predict(panel, rows))

    def prediction_columns(self, rows: np.ndarray, view: Outlook, traded: np.ndarray) -> dict[str, np.ndarray]:
        """The outlook of the test rows for predictions.parquet, each horizon's forecast beside
        its realised return (what the report's horizon table is computed from)."""
        columns = {"decision": np.array(view.decision, dtype=object), "confidence": view.confidence,
                   "expected_return": view.expected_return, "risk_score": view.risk_score,
                   "volatility": view.volatility, "traded": traded}
        for j, horizon in enumerate(view.horizons):
            columns[f"forecast_{horizon}"] = view.horizon_returns[:, j]
            columns[f"realised_{horizon}"] = self.targets.returns[rows, j]
        return columns


def _test_weeks(folds: list[Fold]) -> list:
    """The Mondays of every week a test window touches."""
    days = pd.date_range(pd.Timestamp(min(f.test_start_ns for f in folds), tz="UTC").tz_convert("America/New_York").date(),
                         pd.Timestamp(max(f.test_end_ns for f in folds) - 1, tz="UTC").tz_convert("America/New_York").date())
    return sorted({week_start(d.date()) for d in days})
