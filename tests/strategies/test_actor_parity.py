"""Streaming parity: the live SignalActor reproduces the walk-forward batch path bar for bar.

The batch side is the real one: a synthetic market written to a catalog, ``build_panel`` (features
over each symbol's whole history) and ``train_fold`` (fit every model kind, save it in the
registry, predict the fold's test window in batch). The live side is the real SignalActor inside a
real NautilusTrader BacktestEngine, loading the models the fold saved and fed the same bars one at
a time. For every test-window bar the actor's published probabilities and its feature row must
equal the batch path's, and it must publish nothing until it holds enough bars.

The engine is fed only ``LOOKBACK_BARS - 1`` bars before the test window, so every compared bar is
computed from a full, rolling buffer that has long forgotten the start of the history: the live
condition, not the easy case where the buffer still holds everything the batch path saw.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig, LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import Bar, BarType, DataType
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.persistence.wranglers import BarDataWrangler

from backtests.config import (
    BacktestConfig,
    CatalogConfig,
    HorizonConfig,
    ModelConfig,
    WalkForwardConfig,
)
from backtests.signal_outlook import HORIZONS_DIR, SignalOutlook
from backtests.train import panel_from_bars, read_bars, train_fold
from catalog.instruments import VENUE, bar_type, equity, instrument_id
from catalog.store import MarketCatalog
from catalog.synthetic import generate_market
from models.features import LOOKBACK_BARS, WARMUP_BARS, feature_matrix
from models.registry import ModelRegistry
from models.splits import walk_forward_folds
from strategies.actor import BarBuffer, SignalActor, SignalActorConfig
from strategies.settings import StrategySettings
from strategies.signals import MLSignal

SEED = 11
N_DAYS = 8  # 5 train + 1 embargo + 2 test sessions
WALK_FORWARD = WalkForwardConfig(folds=1, train_days=5, test_days=2, embargo_days=1)
# Light but real fits of every kind the live actor can run. LightGBM keeps its default n_jobs=2,
# so its batch predictions run on two threads while the actor predicts on one (set_threads).
# The CNN reads its default 20 named features, so the actor's column selection is covered.
NETWORK = {"epochs": 1, "max_train_rows": 3000, "importance_sample": 0}
MODELS = {
    "lightgbm": ModelConfig(params={"n_estimators": 50}),
    "xgboost": ModelConfig(params={"n_estimators": 50, "n_jobs": 1}),
    "random_forest": ModelConfig(params={"n_estimators": 20}),
    "svm": ModelConfig(params={"max_train_rows": 500, "importance_sample": 0}),
    "mlp": ModelConfig(params=NETWORK),
    "lstm": ModelConfig(params=NETWORK),
    "transformer": ModelConfig(params={**NETWORK, "seq_len": 20}),
    "cnn": ModelConfig(params=NETWORK),
}
# Observed with SEED (2 x 780 test bars): trees, forest and SVM 0.0 (bit-identical), networks
# 3e-8 to 8e-8, features at most 2.1e-10 relative.
EXACT_TOLERANCE = 1e-12  # trees and kernels: the same float32 row gives the same sums
NETWORK_TOLERANCE = 1e-6  # a single window vs a batch of 1024 rounds differently in float32
TOLERANCE = {name: NETWORK_TOLERANCE if name in ("mlp", "lstm", "transformer", "cnn")
             else EXACT_TOLERANCE for name in MODELS}
# A 1000-bar buffer vs the whole history: EMA seeds are forgotten and rolling sums start their
# blocks at a different bar, so values agree to ~1e-15 absolute. Features of the form x/y - 1
# (close_sma_*) cancel to ~1e-5, where that is ~1e-10 relative; values near 0 need the atol.
FEATURE_RTOL = 1e-9
FEATURE_ATOL = 1e-12
# The outlook: horizon models on the same features, an entry threshold the ensemble crosses.
HORIZONS = HorizonConfig(bars=[1, 5, 30], trade=5)
ENTRY_THRESHOLD = 0.55  # low enough that the 8-model vote reaches BUY and SELL on this market


# -- the batch path ---------------------------------------------------------------------------------


@dataclass
class Batch:
    bars: dict[str, pd.DataFrame]  # the generated market, as fed to the engine
    sectors: dict[str, str]
    features: dict[str, pd.DataFrame]  # float64 feature_matrix over each symbol's whole history
    preds: pd.DataFrame  # train_fold's test-window predictions: symbol, ts, one column per model
    model_dirs: dict[str, str]
    history_bars: int
    config: BacktestConfig
    horizons_dir: str | None


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Batch:
    root = tmp_path_factory.mktemp("actor-parity")
    market = generate_market(n_symbols=2, n_days=N_DAYS, seed=SEED, signal_strength=0.2)
    catalog = MarketCatalog(root / "catalog")
    for symbol, frame in market.bars.items():
        catalog.write_bars(symbol, frame, sector=market.sectors[symbol])
    config = BacktestConfig(
        seed=SEED,
        catalog=CatalogConfig(path=root / "catalog"),
        walk_forward=WALK_FORWARD,
        models=MODELS,
        horizons=HORIZONS,
        strategy=StrategySettings(weights=dict.fromkeys(MODELS, 1.0), entry_threshold=ENTRY_THRESHOLD),
    )
    symbols = catalog.symbols()
    bars = read_bars(catalog, symbols)
    panel, label_end = panel_from_bars(bars, config)
    (fold,) = walk_forward_folds(
        panel.ts_ns,
        n_folds=WALK_FORWARD.folds,
        train_days=WALK_FORWARD.train_days,
        test_days=WALK_FORWARD.test_days,
        embargo_days=WALK_FORWARD.embargo_days,
    )
    registry = ModelRegistry(root / "models")
    outlook = SignalOutlook.prepare(config, catalog, symbols, [fold], panel.feature_names)
    _, preds, _ = train_fold(
        fold, panel, label_end, config, registry, MarketCatalog(root / "signals"), bars, outlook
    )

    features = {}
    for symbol in symbols:
        bars = catalog.read_bars(symbol)
        values = feature_matrix(
            *(bars[c].to_numpy() for c in ("open", "high", "low", "close", "volume")),
            bars.index.asi8,
        )
        rows = np.flatnonzero(np.asarray(panel.symbols)[panel.symbol] == symbol)
        # The oracle is exactly what the panel was built from (which stores it as float32).
        np.testing.assert_array_equal(panel.X[rows], values.astype(np.float32))
        features[symbol] = pd.DataFrame(values, index=bars.index.asi8)

    model_dirs = {
        name: str(registry.root / name / f"v{registry.latest(name):04d}") for name in MODELS
    }
    history = max(registry.load(name)[0].history_bars for name in MODELS)
    horizons_dir = str(registry.root / HORIZONS_DIR / f"fold-{fold.index}")
    return Batch(market.bars, market.sectors, features, preds, model_dirs, history, config, horizons_dir)


# -- the live path ----------------------------------------------------------------------------------


class SignalCollector(Actor):
    """Records every MLSignal on the bus with the publisher's feature row at that moment, and
    every bar the engine delivered."""

    def __init__(self, source: SignalActor, bar_types: list[BarType]) -> None:
        super().__init__(ActorConfig(component_id="SIGNAL-COLLECTOR"))
        self.source = source
        self.bar_types = bar_types
        self.signals: list[MLSignal] = []
        self.features: list[np.ndarray] = []
        self.bars: list[Bar] = []

    def on_start(self) -> None:
        self.subscribe_data(DataType(MLSignal))
        for bt in self.bar_types:
            self.subscribe_bars(bt)

    def on_data(self, data) -> None:
        if isinstance(data, MLSignal):
            self.signals.append(data)
            # publish_data is synchronous: the actor set this row just before publishing.
            self.features.append(self.source.last_features[data.instrument_id].copy())

    def on_bar(self, bar: Bar) -> None:
        self.bars.append(bar)


@dataclass
class Live:
    fed: dict[str, pd.DatetimeIndex]  # bar-close times fed to the engine per symbol (real bars)
    injected: dict[str, list[Bar]]  # a duplicate and a late bar slipped into the feed
    collector: SignalCollector
    actor: SignalActor


def _scaled(bar: Bar, factor: float, ts_event: int, ts_init: int) -> Bar:
    def price(p: Price) -> Price:
        return Price(round(p.as_double() * factor, p.precision), p.precision)

    return Bar(
        bar.bar_type,
        price(bar.open),
        price(bar.high),
        price(bar.low),
        price(bar.close),
        bar.volume,
        ts_event,
        ts_init,
    )


@pytest.fixture(scope="module")
def live(batch: Batch) -> Live:
    test_ts = batch.preds.groupby("symbol")["ts"].min()
    engine = BacktestEngine(
        BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR"), run_analysis=False)
    )
    engine.add_venue(
        VENUE,
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        base_currency=USD,
        starting_balances=[Money(1_000_000, USD)],
    )
    fed, injected = {}, {}
    for symbol, frame in batch.bars.items():
        first_test = int(np.searchsorted(frame.index.asi8, test_ts[symbol]))
        start = first_test - (LOOKBACK_BARS - 1)
        assert start > 0, "the feed must start after the history does, or the test is too easy"
        frame = frame.iloc[start:]
        instrument = equity(symbol, batch.sectors[symbol])
        engine.add_instrument(instrument)
        bars = BarDataWrangler(bar_type(symbol), instrument).process(frame)
        # Mid test window: an exact repeat of a bar, then a late bar (an older bar-close time,
        # arriving now, with prices 1.5x). Neither may produce a signal or enter the buffer.
        k = len(bars) - 300
        extra = [
            Bar.from_dict(Bar.to_dict(bars[k])),
            _scaled(bars[k - 3], 1.5, bars[k - 3].ts_event, bars[k].ts_init),
        ]
        engine.add_data(bars[: k + 1] + extra + bars[k + 1 :])
        fed[symbol], injected[symbol] = frame.index, extra
    ids = [str(instrument_id(s)) for s in batch.bars]
    actor = SignalActor(
        SignalActorConfig(
            instrument_ids=ids,
            model_dirs=batch.model_dirs,
            weights=batch.config.weights(),
            entry_threshold=ENTRY_THRESHOLD,
            volatility_feature=batch.config.signal.volatility_feature,
            horizon=HORIZONS.trade,
            horizons_dir=batch.horizons_dir,
        )
    )
    collector = SignalCollector(actor, [bar_type(s) for s in batch.bars])
    engine.add_actor(actor)
    engine.add_actor(collector)
    engine.run()
    yield Live(fed, injected, collector, actor)
    engine.dispose()


def _signals_of(live: Live, symbol: str) -> tuple[list[MLSignal], list[np.ndarray]]:
    iid = instrument_id(symbol)
    pairs = [
        (s, f)
        for s, f in zip(live.collector.signals, live.collector.features, strict=True)
        if s.instrument_id == iid
    ]
    return [s for s, _ in pairs], [f for _, f in pairs]


# -- tests ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_signals_start_after_warm_up_one_per_bar_at_bar_close(batch: Batch, live: Live) -> None:
    assert batch.history_bars == 60  # the LSTM's seq_len sets the warm-up
    min_bars = WARMUP_BARS + batch.history_bars
    for symbol, closes in live.fed.items():
        signals, _ = _signals_of(live, symbol)
        # Nothing before the actor holds min_bars bars, then exactly one signal per bar, stamped
        # with that bar's close: not for the repeated bar, not for the late one.
        expected = closes.asi8[min_bars - 1 :]
        np.testing.assert_array_equal([s.ts_event for s in signals], expected)
        np.testing.assert_array_equal([s.ts_init for s in signals], expected)
        assert {s.models for s in signals} == {",".join(MODELS)}
        # The engine did deliver the injected bars: the actor, not the feed, dropped them.
        delivered = {
            (b.ts_event, b.ts_init, b.close.as_double())
            for b in live.collector.bars
            if b.bar_type == bar_type(symbol)
        }
        for bar in live.injected[symbol]:
            assert (bar.ts_event, bar.ts_init, bar.close.as_double()) in delivered


@pytest.mark.slow
def test_live_probabilities_and_features_equal_the_batch_rows(batch: Batch, live: Live) -> None:
    worst = {name: 0.0 for name in MODELS} | {"features_rel": 0.0}
    compared = 0
    for symbol in batch.bars:
        signals, rows = _signals_of(live, symbol)
        by_ts = {s.ts_event: (s, f) for s, f in zip(signals, rows, strict=True)}
        preds = batch.preds[batch.preds["symbol"] == symbol]
        assert len(preds) >= 700  # two sessions of test bars
        missing = [ts for ts in preds["ts"] if ts not in by_ts]
        assert not missing, f"{symbol}: no live signal for {len(missing)} test bars"
        live_probs = np.array([by_ts[ts][0].probabilities for ts in preds["ts"]])
        for j, name in enumerate(MODELS):
            diff = np.abs(live_probs[:, j] - preds[name].to_numpy())
            worst[name] = max(worst[name], float(diff.max()))
        live_x = np.array([by_ts[ts][1] for ts in preds["ts"]])
        batch_x = batch.features[symbol].loc[preds["ts"]].to_numpy()
        np.testing.assert_allclose(
            live_x,
            batch_x,
            rtol=FEATURE_RTOL,
            atol=FEATURE_ATOL,
            err_msg=f"{symbol}: live features differ from the batch row",
        )
        finite = np.isfinite(batch_x) & (batch_x != 0)
        rel = np.abs(live_x[finite] - batch_x[finite]) / np.abs(batch_x[finite])
        worst["features_rel"] = max(worst["features_rel"], float(rel.max()))
        compared += len(preds)
    print(f"\nstreaming parity over {compared} test bars, max differences: {worst}")
    for name in MODELS:
        assert worst[name] <= TOLERANCE[name], (name, worst[name])


@pytest.mark.slow
def test_live_outlook_equals_the_batch_rows(batch: Batch, live: Live) -> None:
    """Decision, confidence, expected return, risk score, volatility and every horizon's
    forecast: what the live actor publishes is what the train step stored for the bar."""
    assert batch.config.strategy.entry_threshold == ENTRY_THRESHOLD
    decisions = set()
    for symbol in batch.bars:
        signals, _ = _signals_of(live, symbol)
        by_ts = {s.ts_event: s for s in signals}
        preds = batch.preds[batch.preds["symbol"] == symbol]
        live_rows = [by_ts[ts] for ts in preds["ts"]]
        assert [s.decision for s in live_rows] == preds["decision"].tolist()
        decisions |= set(preds["decision"])
        assert [s.risk_score for s in live_rows] == preds["risk_score"].tolist()
        assert {(s.horizon, s.horizons) for s in live_rows} == {(HORIZONS.trade, "1,5,30")}
        np.testing.assert_allclose([s.confidence for s in live_rows], preds["confidence"], atol=NETWORK_TOLERANCE)
        np.testing.assert_allclose([s.volatility for s in live_rows], preds["volatility"], rtol=FEATURE_RTOL)
        forecasts = np.array([s.horizon_returns for s in live_rows])
        for j, h in enumerate(HORIZONS.bars):
            np.testing.assert_allclose(forecasts[:, j], preds[f"forecast_{h}"], rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose([s.expected_return for s in live_rows], preds[f"forecast_{HORIZONS.trade}"],
                                   rtol=1e-7, atol=1e-12)
    assert {"BUY", "SELL", "HOLD"} <= decisions  # every branch of the decision was compared


# -- BarBuffer --------------------------------------------------------------------------------------

BT = bar_type("AAA")
MINUTE = 60_000_000_000


def _bar(i: int, close: float | None = None) -> Bar:
    c = 100.0 + i if close is None else close
    return Bar(
        BT,
        Price(c, 2),
        Price(c + 1, 2),
        Price(c - 1, 2),
        Price(c, 2),
        Quantity(1000 + i, 0),
        i * MINUTE,
        i * MINUTE,
    )


def _held(buffer: BarBuffer) -> tuple[list[int], list[float]]:
    o, h, low, c, v, ts = buffer.columns()
    np.testing.assert_array_equal(o, c)
    np.testing.assert_array_equal(h, c + 1)
    np.testing.assert_array_equal(low, c - 1)
    np.testing.assert_array_equal(v, 1000 + ts // MINUTE)
    return (ts // MINUTE).tolist(), c.tolist()


@pytest.mark.parametrize("capacity", [1, 2, 5])
def test_bar_buffer_keeps_the_newest_bars_in_order(capacity: int) -> None:
    buffer = BarBuffer(capacity)
    assert len(buffer) == 0 and buffer.last_ts is None
    for i in range(1, 6 * capacity + 4):  # several compactions of the 2x backing arrays
        assert buffer.append(_bar(i))
        kept = list(range(max(1, i - capacity + 1), i + 1))
        assert len(buffer) == len(kept)
        assert buffer.last_ts == i * MINUTE
        assert _held(buffer) == (kept, [100.0 + k for k in kept])


@pytest.mark.parametrize("capacity", [1, 3])
def test_bar_buffer_ignores_repeated_and_late_bars(capacity: int) -> None:
    buffer = BarBuffer(capacity)
    for i in range(1, 2 * capacity + 1):  # backing arrays exactly full: next append compacts
        buffer.append(_bar(i))
    before = _held(buffer)
    newest = 2 * capacity
    assert not buffer.append(_bar(newest, close=1.0))  # repeat, other prices: first one stays
    assert not buffer.append(_bar(newest - 1, close=2.0))  # late
    assert not buffer.append(_bar(0, close=3.0))  # older than anything held
    assert _held(buffer) == before
    assert buffer.append(_bar(newest + 1))
    assert not buffer.append(_bar(newest, close=4.0))  # still late after a compaction
    kept = list(range(newest + 2 - capacity, newest + 2))
    assert _held(buffer) == (kept, [100.0 + k for k in kept])


def test_bar_buffer_rejects_zero_capacity() -> None:
    with pytest.raises(ValueError, match="capacity"):
        BarBuffer(0)
