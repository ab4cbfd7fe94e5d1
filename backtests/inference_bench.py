"""`sextant bench --part inference`: live inference of the full ensemble at one bar close.

One small fold of ``configs/zoo.yaml`` (every model kind, the stacking meta-learner, SHAP
selection, every feature block, horizon models) is trained on a generated catalog with tiny fits
(a 4-session train window, one epoch, few sampled rows: the size of the fitted models, which is
what inference pays for, is the config's; the weekly universe screen is left out, the actor does
not run it). The models are saved to a registry and loaded by the real ``SignalActor``, registered
in a BacktestEngine (its message bus, cache and clock) but driven by hand: its buffers are filled
with the history, then, for each measured bar close, the bars of every symbol at that minute are
handed to ``handle_bar`` one after the other, as the data engine does; the last one completes the
close and the actor predicts all of them in one batch. The clock runs from the first bar in (a
close's bars arrive together, so that is when the last one is in) to the last MLSignal out; one
close runs unmeasured first (it also seeds the streaming feature engine from the buffers; a
subscriber on the bus stamps each signal). The actor's features seam
(``SignalActor.close_features``: the streaming engine, market proxy included), every model's one
batched ``predict_proba``, the meta-learner and the horizon models are wrapped with timers, so
each close's figure splits into features, each model and the rest (Panel, outlook, publishing).
"""

import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import DataType
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.wranglers import BarDataWrangler
from rich.console import Console
from rich.table import Table

from backtests.config import load_config
from backtests.signal_outlook import SignalOutlook
from backtests.train import panel_from_bars, read_bars, train_fold
from catalog.instruments import VENUE, bar_type, equity, instrument_id
from catalog.jobs import generate_catalog
from catalog.store import MarketCatalog
from models.outlook import read_outlook_spec
from models.registry import ModelRegistry
from models.splits import walk_forward_folds
from strategies.actor import SignalActor, SignalActorConfig
from strategies.signals import MLSignal

ZOO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "zoo.yaml"  # wherever the bench runs from
WARMUP_CLOSES = 1  # run, not measured: first calls (allocations, lazy set-up in the libraries)
TARGET_P99_MS = 20.0
WARM_DAYS = 6  # sessions before the daily block is warm (as the every-block parity test)
TRAIN_DAYS, EMBARGO_DAYS, TEST_DAYS = 4, 1, 1  # 4: the fewest the inner folds allow
# Tiny fits: the structure (trees, layers, windows) stays the config's; only the training shrinks.
_TREES = {"early_stopping_rounds": 0}  # all the trees the config asks for, as a full fit keeps
_TORCH = {"epochs": 1, "patience": 0, "max_train_rows": 1_000, "importance_sample": 0}
# The forest and the SVM keep their sampling: tree sizes and support vectors are what they predict with.
TINY_PARAMS = {"lightgbm": _TREES, "xgboost": _TREES, "svm": {"importance_sample": 0}, "mlp": _TORCH, "lstm": _TORCH, "transformer": _TORCH, "cnn": _TORCH}


class _SignalClock(Actor):
    """Stamps every MLSignal the bus delivers (perf_counter_ns)."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[int] = []

    def on_start(self) -> None:
        self.subscribe_data(DataType(MLSignal))

    def on_data(self, data) -> None:
        if isinstance(data, MLSignal):
            self.stamps.append(time.perf_counter_ns())


def train_zoo(root: Path, n_symbols: int, config_path: Path = ZOO_CONFIG) -> tuple[dict, dict, Path]:
    """One tiny fold of the zoo config on a generated ``n_symbols`` catalog under ``root``: the
    SignalActorConfig fields to load it, the bars and the registry root."""
    n_days = WARM_DAYS + TRAIN_DAYS + EMBARGO_DAYS + TEST_DAYS
    catalog = generate_catalog(root / "catalog", n_symbols, n_days, seed=7, signal_strength=0.15)
    base = load_config(config_path)
    overrides = {"walk_forward.folds": 1, "walk_forward.train_days": TRAIN_DAYS,
                 "walk_forward.test_days": TEST_DAYS, "walk_forward.embargo_days": EMBARGO_DAYS,
                 "universe_screen": None, "catalog.path": str(root / "catalog")}
    for name, spec in base.models.items():
        tiny = TINY_PARAMS.get(name.split("@")[0], {})
        overrides[f"models.{name}.params"] = {**spec.params, **tiny}
    if base.selection is not None:  # the SHAP reference model: selection cost is not inference
        overrides |= {"selection.n_estimators": 20, "selection.inner_folds": 2}
    config = load_config(config_path, overrides)
    symbols = catalog.symbols()
    bars = read_bars(catalog, symbols)
    panel, label_end = panel_from_bars(bars, config)
    folds = walk_forward_folds(panel.ts_ns, n_folds=1, train_days=TRAIN_DAYS, test_days=TEST_DAYS,
                               embargo_days=EMBARGO_DAYS)
    outlook = SignalOutlook.prepare(config, catalog, symbols, folds, panel.feature_names)
    registry = ModelRegistry(root / "models")
    train_fold(folds[0], panel, label_end, config, registry, MarketCatalog(root / "signals"), bars, outlook)
    names = config.signal_columns()
    fields = {"model_dirs": {n: str(registry.path(n)) for n in names},
              "weights": dict(config.weights()), "entry_threshold": config.strategy.entry_threshold,
              "allow_short": config.strategy.allow_short, **read_outlook_spec(root / "models")}
    return fields, {"catalog": catalog, "symbols": symbols}, root / "models"


def inference_latency(n_symbols: int = 50, closes: int = 30, config_path: Path = ZOO_CONFIG,
                      console: Console | None = None) -> dict:
    """p50/p99 ms from the first bar of a close in to the last MLSignal out over ``closes``
    bar closes of ``n_symbols`` symbols, the same without the features seam, and the mean
    split per close (ms)."""
    say = console.print if console else (lambda *_: None)
    with tempfile.TemporaryDirectory(prefix="sextant-inference-bench-") as tmp:
        say(f"inference bench: training one tiny fold of {config_path} on {n_symbols} symbols ...")
        started = time.perf_counter()
        fields, data, _ = train_zoo(Path(tmp), n_symbols, config_path)
        train_s = time.perf_counter() - started
        catalog, symbols = data["catalog"], data["symbols"]
        engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR"),
                                                     run_analysis=False))
        try:
            engine.add_venue(VENUE, oms_type=OmsType.NETTING, account_type=AccountType.CASH,
                             base_currency=USD, starting_balances=[Money(1_000_000, USD)])
            feeds, sectors = {}, catalog.sectors()
            for symbol in symbols:
                instrument = equity(symbol, sectors[symbol])
                engine.add_instrument(instrument)
                feeds[symbol] = BarDataWrangler(bar_type(symbol), instrument).process(catalog.read_bars(symbol))
            actor = SignalActor(SignalActorConfig(instrument_ids=[str(instrument_id(s)) for s in symbols], **fields))
            clock = _SignalClock()
            engine.add_actor(actor)
            engine.add_actor(clock)
            actor.start()
            clock.start()
            try:
                return _measure(actor, clock, feeds, closes, train_s, say)
            finally:
                clock.stop()
                actor.stop()
        finally:
            engine.dispose()


def _measure(actor: SignalActor, clock: _SignalClock, feeds: dict, closes: int, train_s: float, say) -> dict:
    symbols = list(feeds)
    n_bars = min(len(f) for f in feeds.values())
    first = n_bars - closes - WARMUP_CLOSES
    for symbol, bars in feeds.items():  # the history the buffers hold before the measured closes
        for bar in bars[max(0, first - actor.buffers[instrument_id(symbol)].capacity):first]:
            actor.on_historical_data(bar)
    spent: dict[str, int] = defaultdict(int)

    def timed(key: str, fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[key] += time.perf_counter_ns() - t0
        return wrapper

    actor.close_features = timed("features", actor.close_features)
    for name, model in actor.models.items():
        model.predict_proba = timed(f"model:{name}", model.predict_proba)
    for name, stack in actor.stacks.items():
        stack.combine = timed(f"stack:{name}", stack.combine)
    if actor._horizon_models is not None:
        actor._horizon_models.predict = timed("horizons", actor._horizon_models.predict)
    say(f"inference bench: {len(symbols)} symbols x {closes} bar closes through SignalActor.handle_bar ...")
    latencies, signals = [], 0
    for k in range(first, n_bars):
        if k == first + WARMUP_CLOSES:
            spent.clear()
            latencies, signals = [], 0
        before = len(clock.stamps)
        t0 = time.perf_counter_ns()
        for symbol in symbols:
            actor.handle_bar(feeds[symbol][k])
        out = len(clock.stamps) - before
        if out:
            latencies.append((clock.stamps[-1] - t0) / 1e6)
        signals += out
    measured = max(len(latencies), 1)
    per_close = {key: ns / 1e6 / measured for key, ns in sorted(spent.items())}
    per_close["other"] = max(sum(latencies) - sum(spent.values()) / 1e6, 0.0) / measured

    def p(values: list[float], q: float) -> float:
        return float(np.percentile(values, q)) if values else np.nan

    p99 = p(latencies, 99)
    return {"symbols": len(symbols), "closes": closes, "measured_closes": len(latencies), "signals": signals,
            "models": list(actor.models), "stacks": list(actor.stacks),
            "features": len(actor._feature_names), "buffer_bars": actor.buffers[instrument_id(symbols[0])].capacity,
            "p50_ms": p(latencies, 50), "p99_ms": p99, "target_p99_ms": TARGET_P99_MS,
            "p99_over_target": p99 / TARGET_P99_MS,
            "per_close_ms": per_close, "train_s": train_s}


def run_inference_bench(console: Console, n_symbols: int = 50, closes: int = 30) -> dict:
    r = inference_latency(n_symbols, closes, console=console)
    table = Table(title=f"sextant bench: live inference, full zoo ensemble, {r['symbols']} symbols per bar close (CPU)")
    for col, justify in (("figure", "left"), ("value", "right"), ("target", "right")):
        table.add_column(col, justify=justify)
    table.add_row(f"last bar in -> last MLSignal out, p50 ms ({r['measured_closes']} closes, {r['signals']} signals)",
                  f"{r['p50_ms']:.1f}", "")
    table.add_row("last bar in -> last MLSignal out, p99 ms", f"{r['p99_ms']:.1f}", f"< {TARGET_P99_MS:.0f}")
    table.add_row("  p99 / target", f"{r['p99_over_target']:.1f}x", "<= 1")
    split = r["per_close_ms"]
    table.add_row(f"per close, mean ms ({r['features']} features, {r['buffer_bars']}-bar buffers):",
                  f"{sum(split.values()):.2f}", "")
    for key, ms in sorted(split.items(), key=lambda kv: -kv[1]):
        table.add_row(f"  {key}", f"{ms:.2f}", "")
    console.print(table)
    return r
