"""Replay a catalog range through the engine at full speed and show what a strategy sees.

For inspection, not for results: the bars (and, with models, the SignalActor's MLSignals and
the EnsembleStrategy's orders and fills) come out as one time-ordered event stream, plus a
per-symbol summary that counts missing in-session minutes. The engine, actor and strategy
are the ones the backtest and the live node run; only the observer is replay's own.
"""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig, BacktestEngineConfig, LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import Bar, BarType, DataType
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.events import OrderEvent, OrderFilled
from nautilus_trader.model.objects import Money

from backtests.config import BacktestConfig
from backtests.costs import FullLiquidityFillModel, PerShareFeeModel, PerShareFeeModelConfig
from catalog.errors import CalendarRangeError
from catalog.instruments import VENUE, bar_type
from catalog.sessions import session_minutes, trading_sessions
from catalog.store import EmptyCatalogError, MarketCatalog
from models.outlook import read_outlook_spec
from strategies.actor import SignalActor, SignalActorConfig
from strategies.ensemble import EnsembleStrategy, EnsembleStrategyConfig
from strategies.risk import install_trading_state_endpoint
from strategies.signals import MLSignal


@dataclass(frozen=True)
class ReplayEvent:
    ts_ns: int
    kind: str  # bar | signal | order | fill
    symbol: str
    detail: str


@dataclass
class SymbolSummary:
    bars: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    missing_minutes: int = 0
    signals: int = 0
    orders: int = 0
    fills: int = 0


@dataclass
class ReplaySummary:
    symbols: dict[str, SymbolSummary] = field(default_factory=dict)
    sessions: int = 0
    elapsed_s: float = 0.0

    @property
    def bars(self) -> int:
        return sum(s.bars for s in self.symbols.values())


class ReplayObserverConfig(ActorConfig, frozen=True, kw_only=True):
    bar_types: list[str]


class ReplayObserver(Actor):
    """Hands every bar, signal and order event to ``sink`` as it reaches the strategies."""

    def __init__(self, config: ReplayObserverConfig, sink: Callable[[ReplayEvent], None]) -> None:
        super().__init__(config)
        self._sink = sink

    def on_start(self) -> None:
        for bt in self.config.bar_types:
            self.subscribe_bars(BarType.from_str(bt))
        self.subscribe_data(DataType(MLSignal))
        self.msgbus.subscribe(topic="events.order.*", handler=self._on_order_event)

    def on_bar(self, bar: Bar) -> None:
        self._sink(ReplayEvent(bar.ts_event, "bar", bar.bar_type.instrument_id.symbol.value,
                               f"o={bar.open} h={bar.high} l={bar.low} c={bar.close} v={bar.volume}"))

    def on_data(self, data) -> None:
        if isinstance(data, MLSignal):
            votes = " ".join(f"{n}={p:.3f}" for n, p in zip(data.models.split(","), data.probabilities, strict=True))
            self._sink(ReplayEvent(data.ts_event, "signal", data.instrument_id.symbol.value, votes))

    def _on_order_event(self, event: OrderEvent) -> None:
        symbol = event.instrument_id.symbol.value
        if isinstance(event, OrderFilled):
            self._sink(ReplayEvent(event.ts_event, "fill", symbol,
                                   f"{event.order_side.name} {event.last_qty} @ {event.last_px} "
                                   f"{event.client_order_id}"))
        else:
            self._sink(ReplayEvent(event.ts_event, "order", symbol,
                                   f"{type(event).__name__.removeprefix('Order')} {event.client_order_id}"))


def replay(
    catalog_path: str | Path,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    sink: Callable[[ReplayEvent], None],
    symbols: list[str] | None = None,
    timeframe: str = "1m",
    model_dirs: Mapping[str, Path] | None = None,
    config: BacktestConfig | None = None,
) -> ReplaySummary:
    """Replay the sessions ``start``..``end`` (dates, inclusive) of ``symbols`` (default: all).

    With ``model_dirs`` the SignalActor runs the models on the replayed bars (it publishes
    once it holds enough history); with a ``config`` as well, the EnsembleStrategy trades
    the signals under that config's strategy, weights and venue costs."""
    catalog = MarketCatalog(catalog_path)
    universe = symbols or catalog.symbols()
    if not universe:
        raise EmptyCatalogError(f"catalog {catalog.path} holds no bars")
    unknown = sorted(set(universe) - set(catalog.symbols()))
    if unknown:
        raise EmptyCatalogError(f"no bars for {', '.join(unknown)} in catalog {catalog.path}")
    sessions = trading_sessions(start, end)
    if sessions.empty:
        raise CalendarRangeError(f"no NYSE session between {start} and {end}")
    first_open, last_close = sessions["open"].iloc[0], sessions["close"].iloc[-1]
    catalog.verify(universe, timeframe)  # a damaged file would abort the process inside DataFusion

    engine = _engine(config)
    instruments = {i.id.symbol.value: i for i in catalog.instruments()}
    bar_types = [str(bar_type(s, timeframe)) for s in universe]
    for symbol in universe:
        engine.add_instrument(instruments[symbol])
    bars = catalog.nautilus.bars(bar_types=bar_types, start=first_open.value, end=last_close.value)
    if not bars:  # a day before or after the catalog, or a timeframe it does not hold
        raise EmptyCatalogError(
            f"no {timeframe} bars for {', '.join(universe)} between {start} and {end} in catalog {catalog.path} "
            f"(`sextant catalog info --catalog {catalog.path}` shows the sessions and timeframes it holds)"
        )
    engine.add_data(bars)

    summary = ReplaySummary(symbols={s: SymbolSummary() for s in universe}, sessions=len(sessions))

    def record(event: ReplayEvent) -> None:
        row = summary.symbols[event.symbol]
        if event.kind == "bar":
            row.bars += 1
            row.first_ns = event.ts_ns if row.first_ns is None else row.first_ns
            row.last_ns = event.ts_ns
        else:
            setattr(row, f"{event.kind}s", getattr(row, f"{event.kind}s") + 1)
        sink(event)

    engine.add_actor(ReplayObserver(ReplayObserverConfig(bar_types=bar_types), record))
    ids = [str(instruments[s].id) for s in universe]
    if model_dirs:
        # The outlook as the models' run computed it (its spec sits in the registry root).
        outlook = read_outlook_spec(Path(next(iter(model_dirs.values()))).parent.parent)
        if config is not None:
            settings = config.strategy_settings(ids)
            settings["weights"] = {n: w for n, w in settings["weights"].items() if n in model_dirs}
            outlook |= {"weights": settings["weights"], "entry_threshold": config.strategy.entry_threshold,
                        "allow_short": config.strategy.allow_short}
        engine.add_actor(SignalActor(SignalActorConfig(
            instrument_ids=ids, model_dirs={n: str(p) for n, p in model_dirs.items()}, **outlook)))
        if config is not None:
            engine.add_strategy(EnsembleStrategy(msgspec.convert(settings, EnsembleStrategyConfig)))
            install_trading_state_endpoint(engine.kernel.msgbus, engine.kernel.risk_engine)
    began = time.perf_counter()
    try:
        engine.run()
    finally:
        summary.elapsed_s = time.perf_counter() - began
        engine.dispose()
    if timeframe == "1m":
        expected = len(session_minutes(sessions))
        for row in summary.symbols.values():
            row.missing_minutes = max(expected - row.bars, 0)
    return summary


def _engine(config: BacktestConfig | None) -> BacktestEngine:
    venue = config.venue if config is not None else None
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR"), run_analysis=False))
    engine.add_venue(
        VENUE,
        oms_type=OmsType.NETTING,
        account_type=AccountType.MARGIN,
        base_currency=USD,
        starting_balances=[Money(venue.starting_cash if venue else 1_000_000, USD)],
        bar_adaptive_high_low_ordering=True,
        fee_model=PerShareFeeModel(PerShareFeeModelConfig(
            per_share=venue.commission_per_share, minimum=venue.min_commission) if venue else PerShareFeeModelConfig()),
        fill_model=FullLiquidityFillModel(prob_slippage=venue.slippage_probability if venue else 0.0),
    )
    return engine
