"""The SignalActor predicts the bars of one close together: when the close completes, when a
newer bar arrives, when the close-wait alert fires on a missing symbol, or when it stops; the
signals of a close come out together, in symbol order, stamped with their bar's times.

The models are tiny but real (a 3-tree forest on the real feature columns): what is under test
is the flush logic and the batch, run by the real actor on a real engine's bus and clock.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig, LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import Bar, DataType
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.wranglers import BarDataWrangler

from catalog.instruments import VENUE, bar_type, equity, instrument_id
from catalog.synthetic import generate_market
from models.dataset import Panel
from models.pipeline import FeatureSpec, FittedFeatures, compute_features, feature_names
from models.zoo.forest import RandomForestModel
from strategies.actor import SignalActor, SignalActorConfig
from strategies.signals import MLSignal

SYMBOLS = ("CCC", "AAA", "BBB")  # configured out of order: signals still come in symbol order
WAIT_MS = 1_000
SECOND = 1_000_000_000


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    names = feature_names(FeatureSpec())
    rng = np.random.default_rng(0)
    n = 400
    panel = Panel(X=rng.standard_normal((n, len(names))), y=rng.integers(0, 2, n).astype(float),
                  ts_ns=np.arange(n), symbol=np.zeros(n), segment_start=np.zeros(n),
                  feature_names=names, symbols=("AAA",))
    model = RandomForestModel({"n_estimators": 3, "n_jobs": 1, "min_samples_leaf": 20})
    model.fit(panel, np.arange(n), seed=0)
    path = tmp_path_factory.mktemp("close-batch") / "random_forest"
    model.save(path)
    FittedFeatures().save(path)
    return path


@pytest.fixture(scope="module")
def feeds() -> dict[str, list[Bar]]:
    market = generate_market(n_symbols=len(SYMBOLS), n_days=2, seed=5)
    frames = dict(zip(SYMBOLS, market.bars.values(), strict=True))
    return {s: BarDataWrangler(bar_type(s), equity(s, "Technology")).process(f) for s, f in frames.items()}


class Recorder(Actor):
    """Every MLSignal with the engine clock's time when it arrived."""

    def __init__(self) -> None:
        super().__init__(ActorConfig(component_id="SIGNAL-RECORDER"))
        self.seen: list[tuple[int, MLSignal]] = []

    def on_start(self) -> None:
        self.subscribe_data(DataType(MLSignal))

    def on_data(self, data) -> None:
        if isinstance(data, MLSignal):
            self.seen.append((self.clock.timestamp_ns(), data))


@dataclass
class Rig:
    engine: BacktestEngine
    actor: SignalActor
    recorder: Recorder

    def signals(self) -> list[tuple[int, str, int]]:
        """(clock ns at arrival, symbol, ts_event) of every signal so far."""
        return [(t, s.instrument_id.symbol.value, s.ts_event) for t, s in self.recorder.seen]


def _rig(model_dir: Path, feeds: dict[str, list[Bar]], **config) -> Rig:
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR"), run_analysis=False))
    engine.add_venue(VENUE, oms_type=OmsType.NETTING, account_type=AccountType.CASH, base_currency=USD,
                     starting_balances=[Money(1_000_000, USD)])
    for symbol in feeds:
        engine.add_instrument(equity(symbol, "Technology"))
    actor = SignalActor(SignalActorConfig(instrument_ids=[str(instrument_id(s)) for s in SYMBOLS],
                                          model_dirs={"random_forest": str(model_dir)}, lookback_bars=400,
                                          close_wait_ms=WAIT_MS, **config))
    recorder = Recorder()
    engine.add_actor(actor)
    engine.add_actor(recorder)
    return Rig(engine, actor, recorder)


def test_a_close_missing_a_symbol_goes_out_at_the_alert_and_complete_closes_at_their_last_bar(
    model_dir, feeds
) -> None:
    skipped = 640  # BBB sends no bar at this minute (no trades)
    gap_ts = feeds["BBB"][skipped].ts_event
    rig = _rig(model_dir, feeds)
    data = [b for s, bars in feeds.items() for b in bars if not (s == "BBB" and b.ts_event == gap_ts)]
    rig.engine.add_data(data)
    try:
        rig.engine.run()
        signals = rig.signals()
    finally:
        rig.engine.dispose()
    by_ts: dict[int, list[tuple[int, str]]] = {}
    for t, symbol, ts in signals:
        by_ts.setdefault(ts, []).append((t, symbol))
    min_bars = rig.actor._min_bars
    expected_ts = [b.ts_event for b in feeds["AAA"][min_bars - 1 :]]
    assert sorted(by_ts) == expected_ts
    for ts, group in by_ts.items():
        symbols = [s for _, s in group]
        times = {t for t, _ in group}
        if ts == gap_ts:
            # The alert, on the engine clock: close_wait_ms after the close's first bar.
            assert symbols == ["AAA", "CCC"]
            assert times == {ts + WAIT_MS * 1_000_000}
        else:
            # Complete: out when the last symbol's bar is in, all together, in symbol order.
            assert symbols == ["AAA", "BBB", "CCC"]
            assert times == {ts}
    # One close after another: every signal of a close before any of the next.
    assert [ts for _, _, ts in signals] == sorted(ts for _, _, ts in signals)
    assert all(s.ts_init == s.ts_event for _, s in rig.recorder.seen)


def _by_hand(model_dir, feeds, **config) -> tuple[Rig, int]:
    """A started actor whose buffers hold the history; the clock stands still (no alert fires).
    Returns the rig and the index of the first bar to hand it."""
    rig = _rig(model_dir, feeds, **config)
    rig.actor.start()
    rig.recorder.start()
    first = rig.actor._min_bars + 5
    for bars in feeds.values():
        for bar in bars[:first]:
            rig.actor.on_historical_data(bar)
    return rig, first


def test_a_newer_bar_flushes_the_pending_close_and_stop_flushes_what_is_pending(model_dir, feeds) -> None:
    rig, k = _by_hand(model_dir, feeds)
    try:
        rig.actor.handle_bar(feeds["CCC"][k])
        rig.actor.handle_bar(feeds["AAA"][k])
        assert rig.signals() == []  # BBB may still come
        rig.actor.handle_bar(feeds["AAA"][k + 1])  # the next minute: close k will not complete
        ts = feeds["AAA"][k].ts_event
        assert [(s, t) for _, s, t in rig.signals()] == [("AAA", ts), ("CCC", ts)]
        # Close k was predicted from the bars up to k: AAA's bar of k + 1 had not joined its buffer.
        aaa = instrument_id("AAA")
        upto_k = tuple(column[:-1] for column in rig.actor.buffers[aaa].columns())
        assert upto_k[5][-1] == ts
        expected = compute_features({"AAA": upto_k}, FeatureSpec())["AAA"][-1]
        np.testing.assert_allclose(rig.actor.last_features[aaa], expected, rtol=1e-9, atol=1e-12)
        rig.actor.handle_bar(feeds["BBB"][k])  # a straggler of close k: still its own signal
        assert [(s, t) for _, s, t in rig.signals()][2:] == [("BBB", ts)]
        rig.actor.handle_bar(feeds["BBB"][k + 1])
        assert len(rig.signals()) == 3  # CCC's bar of k + 1 may still come
        rig.actor.stop()
        nxt = feeds["AAA"][k + 1].ts_event
        assert [(s, t) for _, s, t in rig.signals()][3:] == [("AAA", nxt), ("BBB", nxt)]
    finally:
        rig.engine.dispose()


def test_duplicates_and_late_bars_join_no_close(model_dir, feeds) -> None:
    rig, k = _by_hand(model_dir, feeds)
    try:
        for symbol in SYMBOLS:
            rig.actor.handle_bar(feeds[symbol][k])
        assert len(rig.signals()) == 3
        rig.actor.handle_bar(Bar.from_dict(Bar.to_dict(feeds["AAA"][k])))  # a repeat
        rig.actor.handle_bar(feeds["BBB"][k - 2])  # late
        rig.actor.stop()
        assert len(rig.signals()) == 3
    finally:
        rig.engine.dispose()


def test_close_wait_out_of_bounds_is_refused(model_dir, feeds) -> None:
    with pytest.raises(ValueError, match="close_wait_ms"):
        SignalActor(SignalActorConfig(instrument_ids=["AAA.ALPACA"], model_dirs={"random_forest": str(model_dir)},
                                      close_wait_ms=0))


def test_a_screened_out_symbol_feeds_the_close_but_gets_no_signal(model_dir, feeds) -> None:
    """The week's screen passed AAA and CCC: BBB's bars still reach the features, its signal
    does not reach the strategy."""
    rig, k = _by_hand(model_dir, feeds, traded=["AAA", "CCC"])
    try:
        for symbol in SYMBOLS:
            rig.actor.handle_bar(feeds[symbol][k])
        ts = feeds["AAA"][k].ts_event
        assert [(s, t) for _, s, t in rig.signals()] == [("AAA", ts), ("CCC", ts)]
        assert rig.actor.buffers[instrument_id("BBB")].last_ts == ts  # its bar joined its buffer
    finally:
        rig.engine.dispose()
