"""The journal's collector: a NautilusTrader actor turning the node's events into rows.

It runs on the event loop, and what it does there is what the order path waits for: a bar,
a signal or an order event reaches the collector before the strategy that trades on it
(NautilusTrader handles a burst of 50 bars, and the 50 orders they cause, before the first
order goes out). So a handler only takes note of the event (its place in the run, the
order's intent as created) and the typed rows (``live.journal.rows``) are built once the
node has been quiet for ``QUIET_SECS`` (at the latest ``MAX_DEFER_SECS`` after the first
event waiting), then handed to every sink; the sinks do the I/O elsewhere (a writer thread,
files at the end). Building rows as events came cost a 50-order burst ~1.5 ms at p50 and
~30% at p99 (`sextant bench --part live`). Stopping builds what waits before the summary.
What it records: the run starting and stopping, the model versions it trades, every order
(as created) and every order event, fills, position snapshots, account equity, every
MLSignal, every decision the strategy published about one (``strategies.decisions``), every
bar the data client delivered, and the day's summary when it stops.
"""

import asyncio
import itertools
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

import msgspec
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.data import Bar, DataType
from nautilus_trader.model.events import (
    AccountState,
    OrderEvent,
    OrderFilled,
    PositionClosed,
    PositionEvent,
    PositionOpened,
)
from nautilus_trader.model.objects import AccountBalance

from live.journal.rows import (
    AccountRow,
    BarRow,
    DailySummary,
    FillRow,
    ModelVersion,
    OrderEventRow,
    OrderRow,
    PositionRow,
    Row,
    RunEvent,
    SignalRow,
    StrategyDecisionRow,
)
from live.journal.sinks import Sink
from strategies.decisions import StrategyDecision
from strategies.records import creation_key, order_intent, signal_record
from strategies.signals import MLSignal

QUIET_SECS = 0.005  # rows are built once no event came for this long (the burst is out) ...
MAX_DEFER_SECS = 0.1  # ... or this long after the first waiting event, whichever is first


class JournalCollectorConfig(ActorConfig, frozen=True, kw_only=True):
    """``model_dirs``: name -> saved model directory, as the SignalActor loads them."""

    run_id: str
    trading_day: str  # YYYY-MM-DD, New York: the session the run trades
    name: str
    mode: str
    model_dirs: dict[str, str]


class JournalCollector(Actor):
    def __init__(self, config: JournalCollectorConfig, sinks: Sequence[Sink]) -> None:
        super().__init__(config)
        self._sinks = tuple(sinks)
        self._seq = itertools.count(1)
        self._known_orders: set[str] = set()
        self._known_events: set[str] = set()
        self._counts = {"signals": 0, "orders": 0, "fills": 0}
        self._equity: tuple[str, str] | None = None  # the first currency's first and last total
        self._realized = Decimal(0)
        self._waiting: list[tuple[Callable[[int, object], None], int, object]] = []  # (build, seq, item)
        self._loop: asyncio.AbstractEventLoop | None = None  # None: no node running, build at once
        self._first_waiting = 0.0
        self._last_noted = 0.0

    def _note(self, build: Callable[[int, object], None], item: object) -> None:
        """Keep ``item`` (an immutable event, or what was read off a mutable order) for
        ``build(seq, item)`` to turn into its row when the node is quiet; ``seq`` is taken
        now, so rows keep the order events happened in."""
        self._waiting.append((build, next(self._seq), item))
        if self._loop is None:
            self._build_waiting()
            return
        self._last_noted = now = self._loop.time()
        if len(self._waiting) == 1:
            self._first_waiting = now
            self._loop.call_at(now + QUIET_SECS, self._build_when_quiet)

    def _build_when_quiet(self) -> None:
        if not self._waiting:  # built already (the run stopped)
            return
        now = self._loop.time()
        due = min(self._last_noted + QUIET_SECS, self._first_waiting + MAX_DEFER_SECS)
        if now < due:
            self._loop.call_at(due, self._build_when_quiet)
            return
        self._build_waiting()

    def _build_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        for build, seq, item in waiting:
            build(seq, item)

    def _emit(self, row_type: type[Row], seq: int, **fields) -> None:
        row = row_type(run_id=self.config.run_id, seq=seq, **fields)
        for sink in self._sinks:
            sink.put(row)

    def register_base(self, portfolio, msgbus, cache, clock) -> None:
        """Subscribes to the events as the node is built, before anything publishes: the
        orders reconciliation restores at start-up are published before actors start, and
        NautilusTrader 1.221 never routes a topic already published to a wildcard subscribed
        after it (``MessageBus.subscribe`` matches the new pattern against topics the wrong
        way round)."""
        super().register_base(portfolio, msgbus, cache, clock)
        msgbus.subscribe(topic="events.order.*", handler=self._on_order_event)
        msgbus.subscribe(topic="events.position.*", handler=self._on_position_event)
        msgbus.subscribe(topic="events.account.*", handler=self._on_account_state)
        msgbus.subscribe(topic="data.bars.*", handler=self._on_bar)

    def on_start(self) -> None:
        try:  # a live node starts its actors on its loop
            self._loop = asyncio.get_running_loop()
        except RuntimeError:  # a backtest engine runs none: rows are built at once
            self._loop = None
        self._emit_run("started")
        for name, path in sorted(self.config.model_dirs.items()):
            self._emit(ModelVersion, next(self._seq), name=name, version=_version_of(Path(path)), path=path)
        self.subscribe_data(DataType(MLSignal))
        self.subscribe_data(DataType(StrategyDecision))

    def on_stop(self) -> None:
        """The node stops its strategies (cancel, flatten, settled) before its actors: every
        order has settled here (or the bounded wait gave up). Its unpublished events are swept
        in, then the day's summary."""
        for order in self.cache.orders():
            self._on_order_event(order.last_event)
        self._build_waiting()
        self._emit(DailySummary, next(self._seq), trading_day=date.fromisoformat(self.config.trading_day),
                   start_equity=self._equity[0] if self._equity else None,
                   end_equity=self._equity[1] if self._equity else None,
                   realized_pnl=str(self._realized), **self._counts)
        self._emit_run("stopped")
        self._loop = None  # an event after the stop is built at once: the loop may stop next

    def _emit_run(self, kind: str) -> None:
        self._emit(RunEvent, next(self._seq), ts=self.clock.timestamp_ns(), kind=kind,
                   trading_day=date.fromisoformat(self.config.trading_day),
                   trader_id=self.trader_id.value, name=self.config.name, mode=self.config.mode)

    def on_data(self, data) -> None:
        if isinstance(data, MLSignal):
            self._note(self._signal_row, data)
        elif isinstance(data, StrategyDecision):
            self._note(self._decision_row, data)

    def _signal_row(self, seq: int, signal: MLSignal) -> None:
        self._counts["signals"] += 1
        self._emit(SignalRow, seq, **signal_record(signal))

    def _decision_row(self, seq: int, decision: StrategyDecision) -> None:
        self._emit(StrategyDecisionRow, seq, ts_event=decision.ts_event, ts_init=decision.ts_init,
                   instrument_id=decision.instrument_id.value, probability=decision.probability,
                   threshold=decision.threshold, action=decision.action, reason=decision.reason,
                   client_order_id=decision.client_order_id)

    def _on_bar(self, bar: Bar) -> None:
        self._note(self._bar_row, bar)

    def _bar_row(self, seq: int, bar: Bar) -> None:
        self._emit(BarRow, seq, ts_event=bar.ts_event, ts_init=bar.ts_init,
                   instrument_id=bar.bar_type.instrument_id.value, open=str(bar.open), high=str(bar.high),
                   low=str(bar.low), close=str(bar.close), volume=str(bar.volume))

    def _on_order_event(self, event: OrderEvent) -> None:
        """The event, and any event of its order NautilusTrader applied without publishing
        it (the pending-cancel of a cancel the strategy sends), in the order's own order."""
        order = self.cache.order(event.client_order_id)
        if order is None:
            self._record_event(event)
            return
        if order.client_order_id.value not in self._known_orders:  # its first event: as created
            self._known_orders.add(order.client_order_id.value)
            # read now: the order is mutable, its intent is what it was created as
            self._note(self._order_row, (order.strategy_id.value, order_intent(order)))
        for applied in order.events:
            self._record_event(applied)
        self._record_event(event)

    def _order_row(self, seq: int, created: tuple[str, dict]) -> None:
        strategy_id, intent = created
        self._counts["orders"] += 1
        self._emit(OrderRow, seq, strategy_id=strategy_id, **intent)

    def _record_event(self, event: OrderEvent) -> None:
        event_id = str(event.id)
        if event_id in self._known_events:
            return
        self._known_events.add(event_id)
        self._note(self._order_event_row, event)
        if isinstance(event, OrderFilled):
            self._note(self._fill_row, event)

    def _order_event_row(self, seq: int, event: OrderEvent) -> None:
        venue_order_id = event.venue_order_id
        self._emit(OrderEventRow, seq, ts_event=event.ts_event, ts_init=event.ts_init, event_id=str(event.id),
                   kind=type(event).__name__, client_order_id=event.client_order_id.value,
                   venue_order_id=venue_order_id.value if venue_order_id is not None else None,
                   strategy_id=event.strategy_id.value, instrument_id=event.instrument_id.value,
                   details=msgspec.json.encode(type(event).to_dict(event)).decode())

    def _fill_row(self, seq: int, event: OrderFilled) -> None:
        self._counts["fills"] += 1
        self._emit(FillRow, seq, ts_event=event.ts_event, client_order_id=event.client_order_id.value,
                       venue_order_id=event.venue_order_id.value, trade_id=event.trade_id.value,
                       position_id=event.position_id.value if event.position_id is not None else None,
                       instrument_id=event.instrument_id.value, side=event.order_side.name,
                       last_qty=str(event.last_qty), last_px=str(event.last_px),
                       commission=str(event.commission.as_decimal()),
                       currency=event.commission.currency.code, liquidity_side=event.liquidity_side.name)

    def _on_position_event(self, event: PositionEvent) -> None:
        self._note(self._position_row, event)

    def _position_row(self, seq: int, event: PositionEvent) -> None:
        kind = ("opened" if isinstance(event, PositionOpened)
                else "closed" if isinstance(event, PositionClosed) else "changed")
        if kind == "closed":
            self._realized += event.realized_pnl.as_decimal()
        unrealized = event.unrealized_pnl
        self._emit(PositionRow, seq, ts_event=event.ts_event, kind=kind, position_id=event.position_id.value,
                   instrument_id=event.instrument_id.value, side=event.side.name,
                   quantity=str(event.quantity), avg_px_open=float(event.avg_px_open),
                   realized_pnl=str(event.realized_pnl.as_decimal()),
                   unrealized_pnl=str(unrealized.as_decimal()) if unrealized is not None else "0",
                   currency=event.currency.code)

    def _on_account_state(self, event: AccountState) -> None:
        for i, balance in enumerate(event.balances):
            self._note(self._account_row, (event, balance, i == 0))

    def _account_row(self, seq: int, item: tuple[AccountState, AccountBalance, bool]) -> None:
        event, balance, first = item
        total = str(balance.total.as_decimal())
        if first:
            self._equity = (self._equity[0] if self._equity else total, total)
        self._emit(AccountRow, seq, ts_event=event.ts_event, account_id=event.account_id.value,
                   currency=balance.currency.code, total=total,
                   free=str(balance.free.as_decimal()), locked=str(balance.locked.as_decimal()))

    def intents(self) -> list[dict]:
        """Every order the node's strategies created, in creation order (read on the node's
        loop: ``NodeThread.call``)."""
        return [order_intent(o) for o in sorted(self.cache.orders(), key=creation_key)]


def _version_of(path: Path) -> int | None:
    """The registry version of a saved model directory (``.../name/v0003`` -> 3)."""
    name = path.name
    return int(name[1:]) if name.startswith("v") and name[1:].isdigit() else None
