"""Harness: drive the real EnsembleStrategy through a real NautilusTrader BacktestEngine.

A test describes a tiny market (a few symbols over one or two NYSE sessions of 1-minute bars,
flat at 100 unless the test moves a bar) and the MLSignals the models emit, runs it, then reads
the outcome from the engine itself: orders, fills and positions in the cache, the account
balance, the RiskEngine's trading-state changes, and what the strategy logged.

Bars are stamped with their close time (the project's convention) and are added before the
signals, so at equal timestamps a bar reaches the venue and the strategy before the signal
computed from it, exactly as ``backtests.window`` orders its data configs.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.backtest.models import LatencyModel
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import CustomData, DataType
from nautilus_trader.model.enums import AccountType, OmsType, TradingState
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.objects import Money
from nautilus_trader.model.orders import Order
from nautilus_trader.model.position import Position
from nautilus_trader.persistence.wranglers import BarDataWrangler

from backtests.costs import FullLiquidityFillModel, PerShareFeeModel, PerShareFeeModelConfig
from catalog.instruments import VENUE, bar_type, equity, instrument_id
from catalog.sessions import session_minutes, trading_sessions
from strategies.decisions import StrategyDecision
from strategies.ensemble import EnsembleStrategy, EnsembleStrategyConfig
from strategies.risk import RiskRules, install_trading_state_endpoint
from strategies.signals import MLSignal

SIGNAL_CLIENT = ClientId("SEXTANT-SIGNALS")
MODELS = ("a", "b")
EQUAL_WEIGHTS = {"a": 1.0, "b": 1.0}
START_CASH = 100_000.0
HALF_RANGE = 0.05  # a quiet bar's high/low around its close


def utc(value) -> pd.Timestamp:
    """A UTC timestamp; naive strings/timestamps are read as UTC."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


# -- the market a test describes ------------------------------------------------------------------


class Market:
    """Whole-session 1-minute bars for some symbols on some NYSE days, plus the models' signals.

    Every bar is quiet (close = ``price``, high/low = close +- 5 cents) until a test moves it.
    Timestamps given to the methods are bar-close times in UTC (strings or Timestamps).
    """

    def __init__(
        self, days: Iterable[str], sectors: Mapping[str, str], price: float = 100.0
    ) -> None:
        wanted = pd.DatetimeIndex(sorted(pd.Timestamp(d) for d in days))
        sessions = trading_sessions(wanted[0], wanted[-1]).loc[wanted]
        self.sessions = sessions
        self.minutes = session_minutes(sessions)
        self.sectors = dict(sectors)
        self.frames = {symbol: self._quiet(price) for symbol in self.sectors}
        self.signals: list[MLSignal] = []

    def _quiet(self, price: float) -> pd.DataFrame:
        frame = pd.DataFrame(
            index=self.minutes, columns=["open", "high", "low", "close", "volume"], dtype=float
        )
        frame[["open", "close"]] = price
        frame["high"] = price + HALF_RANGE
        frame["low"] = price - HALF_RANGE
        frame["volume"] = 1_000.0
        return frame

    def hold(self, symbol: str, price: float, start, end=None) -> None:
        """Quiet bars at ``price`` for every minute in [start, end] (end defaults to the last bar)."""
        frame = self.frames[symbol]
        rows = (frame.index >= utc(start)) & (
            frame.index <= utc(end if end is not None else frame.index[-1])
        )
        frame.loc[rows, ["open", "close"]] = price
        frame.loc[rows, "high"] = price + HALF_RANGE
        frame.loc[rows, "low"] = price - HALF_RANGE

    def bar(self, symbol: str, ts, **ohlc: float) -> None:
        """Overwrite some of one bar's open/high/low/close."""
        stamp = utc(ts)
        if stamp not in self.frames[symbol].index:
            raise KeyError(f"no bar at {stamp} (outside the regular sessions)")
        for name, value in ohlc.items():
            self.frames[symbol].loc[stamp, name] = value

    def signal(self, symbol: str, ts, *probabilities: float, **outlook) -> None:
        """One MLSignal; a single probability is given to every model. ``outlook``: MLSignal's
        outlook fields (e.g. volatility, horizon)."""
        probs = probabilities * len(MODELS) if len(probabilities) == 1 else probabilities
        stamp = utc(ts).value
        self.signals.append(
            MLSignal(
                ts_event=stamp,
                ts_init=stamp,
                instrument_id=instrument_id(symbol),
                models=",".join(MODELS),
                probabilities=np.array(probs, dtype=np.float64),
                **outlook,
            )
        )

    def heartbeat(self, symbols: Iterable[str], start, end, probability: float = 0.5) -> None:
        """Neutral signals every minute, as the live SignalActor emits them on every bar."""
        rows = self.minutes[(self.minutes >= utc(start)) & (self.minutes <= utc(end))]
        for ts in rows:
            for symbol in symbols:
                self.signal(symbol, ts, probability)

    def close_of(self, day: str) -> pd.Timestamp:
        return self.sessions.loc[pd.Timestamp(day), "close"]


# -- the real strategy, with its log teed ---------------------------------------------------------


class LogTee:
    """Forwards to the strategy's NautilusTrader logger and keeps (level, message) records."""

    def __init__(self, logger) -> None:
        self._logger = logger
        self.records: list[tuple[str, str]] = []

    def _emit(self, level: str, message: str, *args) -> None:
        self.records.append((level, message))
        getattr(self._logger, level)(message, *args)

    def debug(self, message: str, *args) -> None:
        self._emit("debug", message, *args)

    def info(self, message: str, *args) -> None:
        self._emit("info", message, *args)

    def warning(self, message: str, *args) -> None:
        self._emit("warning", message, *args)

    def error(self, message: str, *args) -> None:
        self._emit("error", message, *args)


class TeedEnsembleStrategy(EnsembleStrategy):
    """EnsembleStrategy unchanged except that ``self.log`` also records what it says.

    NautilusTrader's logger writes from a Rust thread that is initialised once per process, so
    capturing its output is unreliable inside a test suite; teeing the strategy's own calls is not.
    """

    def __init__(self, config: EnsembleStrategyConfig) -> None:
        super().__init__(config)
        self.log_tee = LogTee(self._log)

    @property
    def log(self) -> LogTee:
        return self.log_tee


# -- running it -----------------------------------------------------------------------------------


@dataclass
class Run:
    """What one backtest did, read back from the engine."""

    engine: BacktestEngine
    strategy: TeedEnsembleStrategy
    market: Market
    state_changes: list[tuple[pd.Timestamp, TradingState]] = field(default_factory=list)
    decisions: list[StrategyDecision] = field(default_factory=list)  # when it publishes them

    def orders(self, symbol: str | None = None, tag: str | None = None) -> list[Order]:
        iid = instrument_id(symbol) if symbol else None
        orders = self.engine.cache.orders(instrument_id=iid)
        if tag is not None:
            orders = [o for o in orders if tag in (o.tags or [])]
        # Client order ids end with the strategy's submission counter: order by it, not as text.
        return sorted(
            orders, key=lambda o: (o.ts_init, int(o.client_order_id.value.rsplit("-", 1)[1]))
        )

    def entries(self, symbol: str | None = None) -> list[Order]:
        return self.orders(symbol, tag="ENTRY")

    def entered(self) -> list[str]:
        """Symbols with an entry order, in submission order."""
        return [o.instrument_id.symbol.value for o in self.entries()]

    def positions(self, symbol: str | None = None) -> list[Position]:
        iid = instrument_id(symbol) if symbol else None
        return sorted(
            self.engine.cache.positions(instrument_id=iid), key=lambda p: (p.ts_opened, p.id.value)
        )

    def position(self, symbol: str) -> Position:
        (position,) = self.positions(symbol)
        return position

    def open_positions(self) -> list[Position]:
        return self.engine.cache.positions_open()

    def open_orders(self) -> list[Order]:
        return self.engine.cache.orders_open()

    def balance(self) -> float:
        return self.engine.cache.account_for_venue(VENUE).balance_total(USD).as_double()

    def logged(self, level: str, text: str) -> list[str]:
        return [m for lvl, m in self.strategy.log_tee.records if lvl == level and text in m]


def build_engine(
    market: Market,
    *,
    rules: RiskRules,
    threshold: float,
    allow_short: bool,
    weights: Mapping[str, float],
    cash: float,
    account_type: AccountType,
    traded: Iterable[str] | None,
    latency_ms: float = 0.0,
    venue_costs: bool = False,
    publish_decisions: bool = False,
) -> Run:
    """``venue_costs`` adds the production fee and fill models (backtests.costs);
    ``publish_decisions``: the strategy publishes its decisions, collected in ``Run.decisions``."""
    engine = BacktestEngine(
        BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR"), run_analysis=False)
    )
    engine.add_venue(
        VENUE,
        oms_type=OmsType.NETTING,
        account_type=account_type,
        base_currency=USD,
        starting_balances=[Money(cash, USD)],
        bar_adaptive_high_low_ordering=True,
        latency_model=LatencyModel(base_latency_nanos=int(latency_ms * 1e6))
        if latency_ms
        else None,
        fee_model=PerShareFeeModel(PerShareFeeModelConfig()) if venue_costs else None,
        fill_model=FullLiquidityFillModel(prob_slippage=0.0) if venue_costs else None,
    )
    for symbol, sector in market.sectors.items():
        instrument = equity(symbol, sector)
        engine.add_instrument(instrument)
        engine.add_data(
            BarDataWrangler(bar_type(symbol), instrument).process(market.frames[symbol])
        )
    if market.signals:
        signals = [CustomData(DataType(MLSignal), s) for s in market.signals]
        engine.add_data(signals, client_id=SIGNAL_CLIENT)
    symbols = list(traded) if traded is not None else list(market.sectors)
    strategy = TeedEnsembleStrategy(
        EnsembleStrategyConfig(
            instrument_ids=[str(instrument_id(s)) for s in symbols],
            weights=dict(weights),
            entry_threshold=threshold,
            allow_short=allow_short,
            risk=rules,
            publish_decisions=publish_decisions,
        )
    )
    engine.add_strategy(strategy)
    install_trading_state_endpoint(engine.kernel.msgbus, engine.kernel.risk_engine)
    run = Run(engine=engine, strategy=strategy, market=market)
    engine.kernel.msgbus.subscribe(
        topic="events.risk",
        handler=lambda event: run.state_changes.append(
            (pd.Timestamp(event.ts_event, tz="UTC"), event.state)
        ),
    )
    engine.kernel.msgbus.subscribe(topic=f"data.{DataType(StrategyDecision).topic}", handler=run.decisions.append)
    return run


@pytest.fixture
def backtest():
    """``backtest(market, **overrides) -> Run``: build, run and (at teardown) dispose an engine."""
    engines: list[BacktestEngine] = []

    def run(
        market: Market,
        *,
        rules: RiskRules | None = None,
        threshold: float = 0.65,
        allow_short: bool = True,
        weights: Mapping[str, float] = EQUAL_WEIGHTS,
        cash: float = START_CASH,
        account_type: AccountType = AccountType.MARGIN,
        traded: Iterable[str] | None = None,
        latency_ms: float = 0.0,
        venue_costs: bool = False,
        publish_decisions: bool = False,
    ) -> Run:
        result = build_engine(
            market,
            rules=rules or RiskRules(),
            threshold=threshold,
            allow_short=allow_short,
            weights=weights,
            cash=cash,
            account_type=account_type,
            traded=traded,
            latency_ms=latency_ms,
            venue_costs=venue_costs,
            publish_decisions=publish_decisions,
        )
        engines.append(result.engine)
        result.engine.run()
        return result

    yield run
    for engine in engines:
        engine.dispose()
