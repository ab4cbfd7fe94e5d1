"""Streaming parity with every feature block on: multi-timeframe, VaR, beta to the equal-weight
market proxy (which the actor builds from its own buffers), GARCH and the t copula (fitted by
the fold, saved with the model, loaded by the actor).

Same shape as ``test_actor_parity`` (the real batch path, the real actor in a real engine), but
one tabular model: what is under test here is the feature pipeline, not the zoo. The engine gets
only ``lookback_bars(spec) - 1`` bars before the test window, so every compared row comes from a
rolling buffer that has forgotten the history's start.
"""

import numpy as np
import pytest
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.wranglers import BarDataWrangler

from backtests.config import BacktestConfig, CatalogConfig, ModelConfig, WalkForwardConfig
from backtests.train import panel_from_bars, read_bars, train_fold
from catalog.instruments import VENUE, bar_type, equity, instrument_id
from catalog.store import MarketCatalog
from catalog.synthetic import generate_market
from models.pipeline import (
    FeatureSpec,
    RiskSpec,
    compute_features,
    feature_names,
    load_fitted,
    lookback_bars,
)
from models.registry import ModelRegistry
from models.splits import walk_forward_folds
from strategies.actor import SignalActor, SignalActorConfig
from strategies.settings import StrategySettings
from tests.strategies.test_actor_parity import SignalCollector

pytestmark = pytest.mark.slow

SPEC = FeatureSpec(timeframes=("5m", "30m", "1h", "1d"),
                   risk=RiskSpec(garch=True, var=True, beta=True, copula=True))
WALK_FORWARD = WalkForwardConfig(folds=1, train_days=4, test_days=1, embargo_days=1)
N_DAYS = 12  # 6 sessions before the daily block is warm, then train, embargo and test


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("actor-parity-blocks")
    market = generate_market(n_symbols=2, n_days=N_DAYS, seed=5, signal_strength=0.2)
    catalog = MarketCatalog(root / "catalog")
    for symbol, frame in market.bars.items():
        catalog.write_bars(symbol, frame, sector=market.sectors[symbol])
    config = BacktestConfig(seed=5, catalog=CatalogConfig(path=root / "catalog"), walk_forward=WALK_FORWARD,
                            features=SPEC, models={"lightgbm": ModelConfig(params={"n_estimators": 30})},
                            strategy=StrategySettings(weights={"lightgbm": 1.0}))
    symbols = catalog.symbols()
    bars = read_bars(catalog, symbols)
    panel, label_end = panel_from_bars(bars, config)
    (fold,) = walk_forward_folds(panel.ts_ns, n_folds=1, train_days=4, test_days=1, embargo_days=1)
    registry = ModelRegistry(root / "models")
    _, preds, _ = train_fold(fold, panel, label_end, config, registry, MarketCatalog(root / "signals"), bars)
    model_dir = registry.path("lightgbm")
    fitted = load_fitted(model_dir)
    assert fitted.spec == SPEC and set(fitted.garch) == set(symbols) == set(fitted.universe)

    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR"), run_analysis=False))
    engine.add_venue(VENUE, oms_type=OmsType.NETTING, account_type=AccountType.CASH, base_currency=USD,
                     starting_balances=[Money(1_000_000, USD)])
    test_start = preds.groupby("symbol")["ts"].min()
    lookback = lookback_bars(SPEC)
    for symbol, frame in market.bars.items():
        start = int(np.searchsorted(frame.index.asi8, test_start[symbol])) - (lookback - 1)
        assert start > 0, "the feed must start after the history does"
        instrument = equity(symbol, market.sectors[symbol])
        engine.add_instrument(instrument)
        engine.add_data(BarDataWrangler(bar_type(symbol), instrument).process(frame.iloc[start:]))
    actor = SignalActor(SignalActorConfig(instrument_ids=[str(instrument_id(s)) for s in symbols],
                                          model_dirs={"lightgbm": str(model_dir)}))
    collector = SignalCollector(actor, [bar_type(s) for s in symbols])
    engine.add_actor(actor)
    engine.add_actor(collector)
    engine.run()
    yield bars, fitted, preds, collector, actor
    engine.dispose()


def test_live_features_and_probabilities_equal_the_batch_rows_with_every_block_on(run) -> None:
    bars, fitted, preds, collector, actor = run
    assert all(b.capacity == lookback_bars(SPEC) for b in actor.buffers.values())
    batch = compute_features(bars, SPEC, fitted)  # what the fold filled its panel with
    compared = 0
    for symbol, cols in bars.items():
        iid = instrument_id(symbol)
        live = {s.ts_event: (s.probabilities[0], f)
                for s, f in zip(collector.signals, collector.features, strict=True) if s.instrument_id == iid}
        expected = preds[preds["symbol"] == symbol]
        assert len(expected) >= 350  # a session of test bars
        missing = [ts for ts in expected["ts"] if ts not in live]
        assert not missing, f"{symbol}: no live signal for {len(missing)} test bars"
        rows = np.searchsorted(cols[5], expected["ts"].to_numpy())
        live_x = np.array([live[ts][1] for ts in expected["ts"]])
        assert live_x.shape[1] == len(feature_names(SPEC)) and np.isfinite(live_x).all()
        np.testing.assert_allclose(live_x, batch[symbol][rows], rtol=1e-9, atol=1e-12,
                                   err_msg=f"{symbol}: live features differ from the batch row")
        live_p = np.array([live[ts][0] for ts in expected["ts"]])
        np.testing.assert_allclose(live_p, expected["lightgbm"].to_numpy(), rtol=0, atol=1e-12)
        compared += len(expected)
    assert compared >= 700
