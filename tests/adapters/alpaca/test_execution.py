"""AlpacaExecutionClient inside a real TradingNode, trading against the loopback sandbox
through alpaca-py and the trade_updates stream.

Each test builds its own node (``ExecNode``: the node's event loop runs in a background
thread, this thread drives the sandbox's manual clock and faults) with one exec client and a
``ProbeStrategy`` that records every order event. Expected prices come from the broker's own
fill activities, so each check is exact: the NautilusTrader fill must carry the same
Decimal price and quantity Alpaca reported.
"""

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from decimal import Decimal
from typing import Any, Self, TypeVar

import pandas as pd
import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass
from alpaca.trading.enums import OrderSide as AlpacaSide
from alpaca.trading.enums import TimeInForce as AlpacaTif
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    StopLossRequest,
    TakeProfitRequest,
)
from nautilus_trader.config import (
    InstrumentProviderConfig,
    LiveExecEngineConfig,
    LoggingConfig,
    StrategyConfig,
    TradingNodeConfig,
)
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import (
    GenerateFillReports,
    GenerateOrderStatusReport,
    GenerateOrderStatusReports,
    GeneratePositionStatusReports,
)
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import OrderSide, OrderStatus, OrderType, TimeInForce
from nautilus_trader.model.events import (
    OrderEvent,
    OrderFilled,
    OrderModifyRejected,
    OrderRejected,
    OrderUpdated,
)
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.model.orders import Order, OrderList
from nautilus_trader.trading.strategy import Strategy

from adapters.alpaca.common import (
    ALPACA,
    AlpacaCredentials,
    MissingCredentialsError,
    credentials_from_env,
)
from adapters.alpaca.config import AlpacaExecClientConfig
from adapters.alpaca.execution import AlpacaExecutionClient
from adapters.alpaca.factories import AlpacaLiveExecClientFactory
from adapters.alpaca.sandbox import AlpacaFault, AlpacaSandbox, CatalogMarket
from adapters.alpaca.sandbox.market import BarPrices
from adapters.alpaca.stream import AlpacaTradeStream, StreamAuthError
from catalog.instruments import VENUE, instrument_id

T = TypeVar("T")
KEY_ID, SECRET_KEY = "test-key", "test-secret"
SYMBOLS = ["S000", "S001", "S002"]
S000 = instrument_id("S000")
OPEN = pd.Timestamp("2024-12-27 14:30", tz="UTC")
MINUTE = pd.Timedelta(minutes=1)
NOW = OPEN + 5 * MINUTE
WAIT = 15.0


@pytest.fixture(autouse=True)
def alpaca_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPACA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("ALPACA_API_SECRET_KEY", SECRET_KEY)


# -- harness -------------------------------------------------------------------------------------


class ProbeStrategy(Strategy):
    """Records every order event; the test thread reads them through ``wait_for``."""

    def __init__(self) -> None:
        # claims what start-up reconciliation finds, as a restarted strategy would
        super().__init__(
            StrategyConfig(
                strategy_id="PROBE-001", external_order_claims=[f"{s}.{VENUE}" for s in SYMBOLS]
            )
        )
        self.events: list[OrderEvent] = []
        self._changed = threading.Condition()

    def on_start(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def on_order_event(self, event: OrderEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        with self._changed:
            if not self._changed.wait_for(predicate, timeout):
                names = [type(e).__name__ for e in self.events]
                raise TimeoutError(f"condition not met after {timeout}s; events: {names}")

    def events_of(
        self, client_order_id: ClientOrderId, kind: type | None = None
    ) -> list[OrderEvent]:
        with self._changed:
            return [
                e
                for e in self.events
                if e.client_order_id == client_order_id and (kind is None or isinstance(e, kind))
            ]

    def fills(self, client_order_id: ClientOrderId) -> list[OrderFilled]:
        return self.events_of(client_order_id, OrderFilled)  # type: ignore[return-value]


class ExecNode:
    """A TradingNode with only the Alpaca exec client and a ProbeStrategy, on an event loop
    in a background thread."""

    def __init__(
        self, config: AlpacaExecClientConfig, engine: LiveExecEngineConfig | None = None
    ) -> None:
        self.strategy = ProbeStrategy()
        self._config = TradingNodeConfig(
            logging=LoggingConfig(log_level="ERROR"),
            exec_clients={ALPACA: config},
            exec_engine=engine or LiveExecEngineConfig(reconciliation=True),
            timeout_connection=20.0,
            timeout_reconciliation=10.0,
            timeout_disconnection=5.0,
            timeout_post_stop=0.0,
        )
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="exec-node-loop", daemon=True
        )
        self.node: TradingNode | None = None
        self.client: AlpacaExecutionClient | None = None
        self._running: Any = None

    def __enter__(self) -> Self:
        self._thread.start()
        try:
            node = TradingNode(config=self._config, loop=self.loop)
            node.trader.add_strategy(self.strategy)
            node.add_exec_client_factory(ALPACA, self._capturing_factory())
            node.build()
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(WAIT)
            raise
        self.node = node
        self._running = asyncio.run_coroutine_threadsafe(node.run_async(), self.loop)
        self.strategy.wait_for(lambda: self.strategy.is_running, timeout=30.0)
        return self

    def __exit__(self, *exc: object) -> None:
        node = self.node
        assert node is not None
        try:
            self.run(node.stop_async())
            self._running.result(WAIT)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(WAIT)
            node.dispose()

    def _capturing_factory(self) -> type[AlpacaLiveExecClientFactory]:
        """The real factory, keeping the client it builds for the test to inspect."""
        node = self

        def create(*args: Any, **kwargs: Any) -> AlpacaExecutionClient:
            node.client = AlpacaLiveExecClientFactory.create(*args, **kwargs)
            return node.client

        return type(
            "CapturingFactory", (AlpacaLiveExecClientFactory,), {"create": staticmethod(create)}
        )

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = WAIT) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = WAIT) -> T:
        """``fn()`` on the node's loop thread (strategy commands, cache reads)."""

        async def invoke() -> T:
            return fn()

        return self.run(invoke(), timeout)

    # -- strategy actions (on the loop thread) --------------------------------------------------

    def submit(self, make: Callable[[Strategy], Order]) -> Order:
        def go() -> Order:
            order = make(self.strategy)
            self.strategy.submit_order(order)
            return order

        return self.call(go)

    def submit_list(self, make: Callable[[Strategy], OrderList]) -> OrderList:
        def go() -> OrderList:
            order_list = make(self.strategy)
            self.strategy.submit_order_list(order_list)
            return order_list

        return self.call(go)

    def order(self, client_order_id: ClientOrderId) -> Order:
        return self.call(lambda: self.strategy.cache.order(client_order_id))

    def wait_status(self, client_order_id: ClientOrderId, *statuses: OrderStatus) -> Order:
        def reached() -> bool:
            return self.call(lambda: self.strategy.cache.order(client_order_id).status) in statuses

        eventually(
            reached,
            lambda: (
                f"{client_order_id} is {self.order(client_order_id).status_string()}, "
                f"expected {statuses}"
            ),
        )
        return self.order(client_order_id)


def eventually(
    predicate: Callable[[], bool], failure: str | Callable[[], str], timeout: float = WAIT
) -> None:
    """Poll ``predicate`` (cheap reads of node or sandbox state) until it holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(failure() if callable(failure) else failure)
        time.sleep(0.02)


def client_config(sb: AlpacaSandbox, **overrides: Any) -> AlpacaExecClientConfig:
    settings: dict[str, Any] = {
        "base_url": sb.base_url,
        "instrument_provider": InstrumentProviderConfig(
            load_ids=frozenset(f"{s}.{VENUE}" for s in SYMBOLS)
        ),
        "instrument_sectors": {"S000": "Manufacturing"},
        "request_timeout_secs": 2.0,
        "retry_initial_delay_secs": 0.05,
        "retry_max_delay_secs": 0.5,
        "reconnect_initial_delay_secs": 0.05,
        "reconnect_max_delay_secs": 0.5,
        "stream_connect_timeout_secs": 5.0,
    }
    return AlpacaExecClientConfig(**(settings | overrides))


@pytest.fixture
def sandbox(alpaca_sandbox: AlpacaSandbox) -> AlpacaSandbox:
    """The conftest broker with its clock five minutes into the first session (bars to
    trade at)."""
    alpaca_sandbox.advance_to(NOW)
    return alpaca_sandbox


@pytest.fixture
def node(sandbox: AlpacaSandbox) -> Iterator[ExecNode]:
    with ExecNode(client_config(sandbox)) as running:
        yield running


def activities_of(sb: AlpacaSandbox, venue_order_id: str) -> list[dict]:
    return [a for a in sb.activities() if a["order_id"] == venue_order_id]


def assert_fills_match_venue(
    node: ExecNode, sb: AlpacaSandbox, client_order_id: ClientOrderId
) -> None:
    """The node's fills of the order are exactly Alpaca's executions (Decimal qty/px)."""
    order = node.order(client_order_id)
    venue = activities_of(sb, order.venue_order_id.value)
    fills = node.strategy.fills(client_order_id)
    assert [(f.last_qty, f.last_px) for f in fills] == [
        (Quantity.from_str(a["qty"]), Price.from_str(a["price"])) for a in venue
    ]
    assert [f.trade_id.value for f in fills] == [a["id"].rpartition("::")[2] for a in venue]


def stream_barrier(node: ExecNode) -> None:
    """Return once a fresh market order on S001 has filled: the trade_updates stream is
    ordered, so any event the venue sent about earlier orders has been handled by then (a
    negative check waits on this, not on a sleep)."""
    barrier = node.submit(
        lambda s: s.order_factory.market(
            instrument_id("S001"), OrderSide.BUY, Quantity.from_int(1), TimeInForce.DAY
        )
    )
    node.wait_status(barrier.client_order_id, OrderStatus.FILLED)


def bars_after(market: CatalogMarket, symbol: str, ts: pd.Timestamp, n: int) -> list[BarPrices]:
    """The ``n`` bars of ``symbol`` closing after ``ts``."""
    bars = market.bars(symbol)
    first, _ = bars.index_range(int(ts.value), int(ts.value) + 10**18)
    return [bars.bar(k) for k in range(first, first + n)]


def last_close(market: CatalogMarket, symbol: str, ts: pd.Timestamp) -> Decimal:
    bars = market.bars(symbol)
    i = bars.last_index_at(int(ts.value))
    assert i is not None
    return bars.bar(i).close


def px(value: Decimal) -> Price:
    return Price.from_str(str(value))


def event_names(node: ExecNode, client_order_id: ClientOrderId) -> list[str]:
    return [type(e).__name__ for e in node.strategy.events_of(client_order_id)]


# -- order types ---------------------------------------------------------------------------------


def test_market_order_fills_at_alpacas_price(node: ExecNode, sandbox: AlpacaSandbox):
    order = node.submit(
        lambda s: s.order_factory.market(
            S000, OrderSide.BUY, Quantity.from_int(10), TimeInForce.DAY
        )
    )
    filled = node.wait_status(order.client_order_id, OrderStatus.FILLED)
    assert_fills_match_venue(node, sandbox, order.client_order_id)
    assert filled.filled_qty == Quantity.from_int(10)
    positions = node.call(lambda: node.strategy.cache.positions_open(instrument_id=S000))
    assert len(positions) == 1 and positions[0].quantity == Quantity.from_int(10)
    assert event_names(node, order.client_order_id) == [
        "OrderInitialized",
        "OrderSubmitted",
        "OrderAccepted",
        "OrderFilled",
    ]
    [request] = sandbox.order_requests
    assert request.client_order_id == order.client_order_id.value  # the NT id is Alpaca's


def test_limit_order_rests_then_fills_at_its_limit(
    node: ExecNode, sandbox: AlpacaSandbox, alpaca_market: CatalogMarket
):
    limit = min(b.low for b in bars_after(alpaca_market, "S000", NOW, 10))
    assert limit < last_close(alpaca_market, "S000", NOW)  # not marketable on arrival
    order = node.submit(
        lambda s: s.order_factory.limit(S000, OrderSide.BUY, Quantity.from_int(7), px(limit))
    )
    accepted = node.wait_status(order.client_order_id, OrderStatus.ACCEPTED)
    assert accepted.venue_order_id.value == sandbox.orders()[0]["id"]
    sandbox.advance_to(NOW + 10 * MINUTE)
    node.wait_status(order.client_order_id, OrderStatus.FILLED)
    [fill] = node.strategy.fills(order.client_order_id)
    assert fill.last_px == px(limit) and fill.last_qty == Quantity.from_int(7)
    assert_fills_match_venue(node, sandbox, order.client_order_id)


def test_stop_market_order_triggers_and_fills_at_the_stop(
    node: ExecNode, sandbox: AlpacaSandbox, alpaca_market: CatalogMarket
):
    stop = min(b.low for b in bars_after(alpaca_market, "S000", NOW, 10))
    order = node.submit(
        lambda s: s.order_factory.stop_market(S000, OrderSide.SELL, Quantity.from_int(5), px(stop))
    )
    node.wait_status(order.client_order_id, OrderStatus.ACCEPTED)
    sandbox.advance_to(NOW + 10 * MINUTE)
    node.wait_status(order.client_order_id, OrderStatus.FILLED)
    [fill] = node.strategy.fills(order.client_order_id)
    assert fill.last_px == px(stop)
    assert_fills_match_venue(node, sandbox, order.client_order_id)
    positions = node.call(lambda: node.strategy.cache.positions_open(instrument_id=S000))
    assert positions[0].signed_qty == -5  # a MARGIN account shorts


def test_stop_limit_order_fills_at_its_limit_once_triggered(
    node: ExecNode, sandbox: AlpacaSandbox, alpaca_market: CatalogMarket
):
    stop = max(b.high for b in bars_after(alpaca_market, "S000", NOW, 10))
    limit = stop + Decimal("0.10")
    order = node.submit(
        lambda s: s.order_factory.stop_limit(
            S000, OrderSide.BUY, Quantity.from_int(3), price=px(limit), trigger_price=px(stop)
        )
    )
    node.wait_status(order.client_order_id, OrderStatus.ACCEPTED)
    venue = sandbox.orders()[0]
    assert (venue["type"], venue["stop_price"], venue["limit_price"]) == (
        "stop_limit",
        str(stop),
        str(limit),
    )
    sandbox.advance_to(NOW + 10 * MINUTE)
    node.wait_status(order.client_order_id, OrderStatus.FILLED)
    assert node.strategy.fills(order.client_order_id)[0].last_px == px(limit)
    assert_fills_match_venue(node, sandbox, order.client_order_id)


def test_bracket_list_maps_legs_and_the_stop_loss_cancels_the_take_profit(
    node: ExecNode, sandbox: AlpacaSandbox, alpaca_market: CatalogMarket
):
    later = bars_after(alpaca_market, "S000", NOW, 10)
    sl = min(b.low for b in later) + Decimal("0.50")
    tp = max(b.high for b in later) + Decimal("1.00")
    bracket = node.submit_list(
        lambda s: s.order_factory.bracket(
            S000,
            OrderSide.BUY,
            Quantity.from_int(10),
            sl_trigger_price=px(sl),
            tp_price=px(tp),
            tp_post_only=False,
        )
    )
    entry, sl_order, tp_order = bracket.orders  # OrderFactory.bracket's order
    assert (sl_order.order_type, tp_order.order_type) == (OrderType.STOP_MARKET, OrderType.LIMIT)
    node.wait_status(entry.client_order_id, OrderStatus.FILLED)
    for leg in (tp_order, sl_order):
        node.wait_status(leg.client_order_id, OrderStatus.ACCEPTED)
    [parent] = [o for o in sandbox.orders() if o["order_class"] == "bracket" and o["legs"]]
    legs = {leg["type"]: leg["id"] for leg in parent["legs"]}
    assert node.order(tp_order.client_order_id).venue_order_id.value == legs["limit"]
    assert node.order(sl_order.client_order_id).venue_order_id.value == legs["stop"]
    assert len(sandbox.order_requests) == 1  # one POST for the whole bracket

    sandbox.advance_to(NOW + 10 * MINUTE)
    node.wait_status(sl_order.client_order_id, OrderStatus.FILLED)
    node.wait_status(tp_order.client_order_id, OrderStatus.CANCELED)
    assert node.strategy.fills(sl_order.client_order_id)[0].last_px == px(sl)
    for order in bracket.orders:
        assert_fills_match_venue(node, sandbox, order.client_order_id)
    assert node.call(lambda: node.strategy.portfolio.is_flat(S000))


def test_cancel_order(node: ExecNode, sandbox: AlpacaSandbox, alpaca_market: CatalogMarket):
    far = last_close(alpaca_market, "S000", NOW) - 50
    order = node.submit(
        lambda s: s.order_factory.limit(S000, OrderSide.BUY, Quantity.from_int(1), px(far))
    )
    node.wait_status(order.client_order_id, OrderStatus.ACCEPTED)
    node.call(lambda: node.strategy.cancel_order(node.strategy.cache.order(order.client_order_id)))
    node.wait_status(order.client_order_id, OrderStatus.CANCELED)
    assert sandbox.orders()[0]["status"] == "canceled"
    assert event_names(node, order.client_order_id)[-2:] == ["OrderPendingCancel", "OrderCanceled"]


def test_cancel_all_orders_cancels_resting_orders_and_a_held_bracket(
    node: ExecNode, sandbox: AlpacaSandbox, alpaca_market: CatalogMarket
):
    close = last_close(alpaca_market, "S000", NOW)
    singles = [
        node.submit(
            lambda s, k=k: s.order_factory.limit(
                S000, OrderSide.BUY, Quantity.from_int(1), px(close - 40 - k)
            )
        )
        for k in range(2)
    ]
    bracket = node.submit_list(
        lambda s: s.order_factory.bracket(
            S000,
            OrderSide.BUY,
            Quantity.from_int(2),
            entry_order_type=OrderType.LIMIT,
            entry_price=px(close - 30),
            sl_trigger_price=px(close - 35),
            tp_price=px(close + 30),
            tp_post_only=False,
        )
    )
    orders = singles + list(bracket.orders)
    for order in orders:
        node.wait_status(order.client_order_id, OrderStatus.ACCEPTED)
    node.call(lambda: node.strategy.cancel_all_orders(S000))
    for order in orders:
        node.wait_status(order.client_order_id, OrderStatus.CANCELED)
    assert {o["status"] for o in sandbox.orders()} == {"canceled"}
    assert node.call(lambda: node.strategy.cache.orders_open_count(instrument_id=S000)) == 0


def test_flatten_cancels_the_bracket_legs_before_the_closing_order_goes_out(
    node: ExecNode, sandbox: AlpacaSandbox, alpaca_market: CatalogMarket
):
    """The EnsembleStrategy's flatten: cancel_all_orders then close_all_positions in one
    go. At Alpaca the open legs reserve the shares, so the closing order must follow the
    cancels, not race them."""
    close = last_close(alpaca_market, "S000", NOW)
    bracket = node.submit_list(
        lambda s: s.order_factory.bracket(
            S000,
            OrderSide.BUY,
            Quantity.from_int(10),
            sl_trigger_price=px(close - 20),
            tp_price=px(close + 20),
            tp_post_only=False,
        )
    )
    for order in bracket.orders:
        node.wait_status(order.client_order_id, OrderStatus.FILLED, OrderStatus.ACCEPTED)

    def flatten() -> None:
        node.strategy.cancel_all_orders(S000)
        node.strategy.close_all_positions(S000)

    node.call(flatten)
    for leg in bracket.orders[1:]:
        node.wait_status(leg.client_order_id, OrderStatus.CANCELED)
    eventually(
        lambda: node.call(lambda: node.strategy.portfolio.is_flat(S000)), "position not closed"
    )
    methods = [r.method for r in sandbox.order_requests]
    assert methods == ["POST", "DELETE", "DELETE", "POST"]  # bracket, both legs, then the close
    assert sandbox.positions() == {}


def test_modify_replaces_the_order_under_a_new_venue_id_and_keeps_tracking_it(
    node: ExecNode, sandbox: AlpacaSandbox, alpaca_market: CatalogMarket
):
    far = last_close(alpaca_market, "S000", NOW) - 50
    order = node.submit(
        lambda s: s.order_factory.limit(S000, OrderSide.BUY, Quantity.from_int(4), px(far))
    )
    first_id = node.wait_status(order.client_order_id, OrderStatus.ACCEPTED).venue_order_id
    new_limit = min(b.low for b in bars_after(alpaca_market, "S000", NOW, 10))
    node.call(
        lambda: node.strategy.modify_order(
            node.strategy.cache.order(order.client_order_id), price=px(new_limit)
        )
    )
    node.strategy.wait_for(
        lambda: bool(node.strategy.events_of(order.client_order_id, OrderUpdated))
    )
    [updated] = node.strategy.events_of(order.client_order_id, OrderUpdated)
    assert updated.venue_order_id != first_id and updated.price == px(new_limit)
    venue = {o["id"]: o for o in sandbox.orders()}
    assert venue[first_id.value]["status"] == "replaced"
    assert venue[updated.venue_order_id.value]["replaces"] == first_id.value
    assert node.order(order.client_order_id).status == OrderStatus.ACCEPTED
    sandbox.advance_to(NOW + 10 * MINUTE)  # the replacement fills at its new limit
    node.wait_status(order.client_order_id, OrderStatus.FILLED)
    [fill] = node.strategy.fills(order.client_order_id)
    assert fill.venue_order_id == updated.venue_order_id and fill.last_px == px(new_limit)


def test_a_refused_modify_is_reported_and_the_order_keeps_working(
    node: ExecNode, sandbox: AlpacaSandbox, alpaca_market: CatalogMarket
):
    close = last_close(alpaca_market, "S000", NOW)
    bracket = node.submit_list(
        lambda s: s.order_factory.bracket(
            S000,
            OrderSide.BUY,
            Quantity.from_int(2),
            entry_order_type=OrderType.LIMIT,
            entry_price=px(close - 30),
            sl_trigger_price=px(close - 35),
            tp_price=px(close + 30),
            tp_post_only=False,
        )
    )
    take_profit = bracket.orders[2]
    node.wait_status(take_profit.client_order_id, OrderStatus.ACCEPTED)
    node.call(  # Alpaca does not replace a leg that is still held
        lambda: node.strategy.modify_order(
            node.strategy.cache.order(take_profit.client_order_id), price=px(close + 31)
        )
    )
    node.strategy.wait_for(
        lambda: bool(node.strategy.events_of(take_profit.client_order_id, OrderModifyRejected))
    )
    [refused] = node.strategy.events_of(take_profit.client_order_id, OrderModifyRejected)
    assert "held bracket leg" in refused.reason
    restored = node.wait_status(take_profit.client_order_id, OrderStatus.ACCEPTED)
    assert restored.price == px(close + 30)


# -- trade_updates events ------------------------------------------------------------------------


def test_batch_cancel(node: ExecNode, sandbox: AlpacaSandbox, alpaca_market: CatalogMarket):
    far = last_close(alpaca_market, "S000", NOW) - 50
    orders = [
        node.submit(
            lambda s, k=k: s.order_factory.limit(
                S000, OrderSide.BUY, Quantity.from_int(1), px(far - k)
            )
        )
        for k in range(3)
    ]
    for order in orders:
        node.wait_status(order.client_order_id, OrderStatus.ACCEPTED)
    node.call(
        lambda: node.strategy.cancel_orders(
            [node.strategy.cache.order(o.client_order_id) for o in orders[:2]]
        )
    )
    for order in orders[:2]:
        node.wait_status(order.client_order_id, OrderStatus.CANCELED)
    assert node.order(orders[2].client_order_id).status == OrderStatus.ACCEPTED


def test_day_order_expires_at_the_close(
    node: ExecNode, sandbox: AlpacaSandbox, alpaca_market: CatalogMarket
):
    far = last_close(alpaca_market, "S000", NOW) - 50
    order = node.submit(
        lambda s: s.order_factory.limit(
            S000, OrderSide.BUY, Quantity.from_int(1), px(far), TimeInForce.DAY
        )
    )
    node.wait_status(order.client_order_id, OrderStatus.ACCEPTED)
    sandbox.advance_to(pd.Timestamp("2024-12-27 21:01", tz="UTC"))
    node.wait_status(order.client_order_id, OrderStatus.EXPIRED)
    assert event_names(node, order.client_order_id)[-1] == "OrderExpired"


def test_partial_fills_arrive_exactly(alpaca_market: CatalogMarket):
    with AlpacaSandbox(
        alpaca_market, key_id=KEY_ID, secret_key=SECRET_KEY, participation=0.001
    ) as sb:
        sb.advance_to(NOW)
        with ExecNode(client_config(sb)) as node:
            order = node.submit(
                lambda s: s.order_factory.market(
                    S000, OrderSide.BUY, Quantity.from_int(30), TimeInForce.DAY
                )
            )
            node.wait_status(order.client_order_id, OrderStatus.PARTIALLY_FILLED)
            sb.advance_to(NOW + 10 * MINUTE)
            filled = node.wait_status(order.client_order_id, OrderStatus.FILLED)
            fills = node.strategy.fills(order.client_order_id)
            assert len(fills) >= 3 and sum(f.last_qty.as_decimal() for f in fills) == 30
            assert_fills_match_venue(node, sb, order.client_order_id)
            venue_avg = Decimal(sb.orders()[0]["filled_avg_price"])
            assert Decimal(repr(filled.avg_px)).quantize(Decimal("1e-6")) == venue_avg.quantize(
                Decimal("1e-6")
            )


def test_order_rejected_on_the_stream_after_acceptance(node: ExecNode, sandbox: AlpacaSandbox):
    sandbox.add_fault(AlpacaFault(kind="reject_next"))
    order = node.submit(
        lambda s: s.order_factory.market(S000, OrderSide.BUY, Quantity.from_int(1), TimeInForce.DAY)
    )
    node.wait_status(order.client_order_id, OrderStatus.REJECTED)
    names = event_names(node, order.client_order_id)
    # Alpaca said "accepted" in the POST answer and "rejected" on the stream; whichever the
    # node heard first, the order ends rejected, once, and is never accepted afterwards.
    assert names[-1] == "OrderRejected" and names.count("OrderRejected") == 1
    assert names.count("OrderAccepted") <= 1


def test_insufficient_buying_power_is_rejected_and_the_next_order_works(
    node: ExecNode, sandbox: AlpacaSandbox
):
    too_big = node.submit(
        lambda s: s.order_factory.market(
            S000, OrderSide.BUY, Quantity.from_int(10_000), TimeInForce.DAY
        )
    )
    node.wait_status(too_big.client_order_id, OrderStatus.REJECTED)
    [rejected] = node.strategy.events_of(too_big.client_order_id, OrderRejected)
    assert "insufficient buying power" in rejected.reason
    assert node.call(lambda: node.strategy.is_running)
    fine = node.submit(
        lambda s: s.order_factory.market(
            S000, OrderSide.BUY, Quantity.from_int(10), TimeInForce.DAY
        )
    )
    node.wait_status(fine.client_order_id, OrderStatus.FILLED)
    assert [r.status_code for r in sandbox.order_requests] == [403, 200]


def test_a_burst_of_orders_keeps_each_orders_state_and_reports_the_one_refused(
    node: ExecNode, sandbox: AlpacaSandbox
):
    """A bar close sends many orders at once, all in flight together on their own
    connections: each still ends with its own venue order and its own fills, and an order
    Alpaca refuses in the middle of the burst is rejected without disturbing the others."""
    sizes = [1, 2, 3, 4, 10_000, 5, 6, 7, 8, 9]  # the 10,000 shares exceed the buying power

    def burst() -> list[Order]:
        orders = [
            node.strategy.order_factory.market(
                instrument_id(SYMBOLS[k % len(SYMBOLS)]), OrderSide.BUY, Quantity.from_int(qty), TimeInForce.DAY
            )
            for k, qty in enumerate(sizes)
        ]
        for order in orders:
            node.strategy.submit_order(order)
        return orders

    orders = node.call(burst)
    refused = orders[sizes.index(10_000)]
    for order in orders:
        expected = OrderStatus.REJECTED if order is refused else OrderStatus.FILLED
        node.wait_status(order.client_order_id, expected)
    [rejected] = node.strategy.events_of(refused.client_order_id, OrderRejected)
    assert "insufficient buying power" in rejected.reason
    venue = {o["client_order_id"]: o for o in sandbox.orders()}
    for order, qty in zip(orders, sizes, strict=True):
        if order is refused:
            assert order.client_order_id.value not in venue
            continue
        placed = node.order(order.client_order_id)
        assert placed.venue_order_id.value == venue[order.client_order_id.value]["id"]
        assert placed.filled_qty == Quantity.from_int(qty)
        assert_fills_match_venue(node, sandbox, order.client_order_id)
    posts = sorted(r.client_order_id for r in sandbox.order_requests if r.method == "POST")
    assert posts == sorted(o.client_order_id.value for o in orders)  # each sent once


def test_updates_about_orders_placed_elsewhere_are_skipped(
    node: ExecNode, sandbox: AlpacaSandbox, trading_client: TradingClient
):
    trading_client.submit_order(
        MarketOrderRequest(symbol="S001", qty=2, side=AlpacaSide.BUY, time_in_force=AlpacaTif.DAY)
    )
    mine = node.submit(
        lambda s: s.order_factory.market(S000, OrderSide.BUY, Quantity.from_int(1), TimeInForce.DAY)
    )
    node.wait_status(mine.client_order_id, OrderStatus.FILLED)
    assert node.call(lambda: len(node.strategy.cache.orders())) == 1
    assert node.call(lambda: node.strategy.portfolio.is_flat(instrument_id("S001")))


def test_account_state_is_alpacas_equity_without_open_pnl(node: ExecNode, sandbox: AlpacaSandbox):
    account = node.call(lambda: node.strategy.portfolio.account(VENUE))
    assert account.id.value.startswith("ALPACA-PA")
    assert account.balance_total(USD) == Money(100_000, USD)
    order = node.submit(
        lambda s: s.order_factory.market(
            S000, OrderSide.BUY, Quantity.from_int(10), TimeInForce.DAY
        )
    )
    node.wait_status(order.client_order_id, OrderStatus.FILLED)
    states = node.call(lambda: account.event_count)
    sandbox.advance_to(NOW + 30 * MINUTE)  # the position moves: equity does, the balance not
    node.call(lambda: node.strategy.query_account(account.id))
    eventually(lambda: node.call(lambda: account.event_count) > states, "no new account state")
    assert account.balance_total(USD) == Money(100_000, USD)
    assert account.balance_locked(USD) > Money(0, USD)  # Alpaca's initial margin in use


# -- faults --------------------------------------------------------------------------------------


def test_fill_lost_with_the_stream_is_recovered_by_reconciliation(
    node: ExecNode, sandbox: AlpacaSandbox, alpaca_market: CatalogMarket
):
    limit = min(b.low for b in bars_after(alpaca_market, "S000", NOW, 10))
    order = node.submit(
        lambda s: s.order_factory.limit(S000, OrderSide.BUY, Quantity.from_int(6), px(limit))
    )
    node.wait_status(order.client_order_id, OrderStatus.ACCEPTED)
    connections = node.client.stream.connections
    sandbox.add_fault(AlpacaFault(kind="drop_before_fill"))
    sandbox.advance_to(NOW + 10 * MINUTE)  # fills at the venue; the event never leaves it
    assert "fill" not in {
        e.event
        for e in sandbox.events_sent
        if e.order_id == node.order(order.client_order_id).venue_order_id.value
    }
    node.wait_status(order.client_order_id, OrderStatus.FILLED)
    assert node.client.stream.connections == connections + 1
    [fill] = node.strategy.fills(order.client_order_id)  # exactly one
    assert fill.last_px == px(limit) and fill.last_qty == Quantity.from_int(6)
    assert_fills_match_venue(node, sandbox, order.client_order_id)  # trade id included
    position = node.call(lambda: node.strategy.cache.positions_open(instrument_id=S000))[0]
    assert position.signed_qty == 6 and Decimal(repr(position.avg_px_open)) == limit
    stream_barrier(node)  # a late duplicate would have arrived before this
    assert len(node.strategy.fills(order.client_order_id)) == 1


def test_a_short_sale_is_reconciled_from_its_sell_short_activity(node: ExecNode, sandbox: AlpacaSandbox):
    """Alpaca's fill activities say "sell_short" for a sale that opens a short (orders say
    "sell"); the sandbox now does too. The fill reports refused the whole activity list on it,
    so start-up reconciliation failed once the account had ever sold short."""
    sold = node.submit(
        lambda s: s.order_factory.market(S000, OrderSide.SELL, Quantity.from_int(4), TimeInForce.DAY)
    )
    node.wait_status(sold.client_order_id, OrderStatus.FILLED)
    venue_order_id = node.order(sold.client_order_id).venue_order_id.value
    assert [a["side"] for a in activities_of(sandbox, venue_order_id)] == ["sell_short"]
    command = GenerateFillReports(command_id=UUID4(), ts_init=0, instrument_id=S000, venue_order_id=None,
                                  start=pd.Timestamp("2024-12-27", tz="UTC"), end=None)
    [report] = node.run(node.client.generate_fill_reports(command))
    [fill] = node.strategy.fills(sold.client_order_id)
    assert (report.order_side, report.trade_id, report.last_px, report.last_qty) == (
        OrderSide.SELL, fill.trade_id, fill.last_px, Quantity.from_int(4))


def test_a_fill_whose_handling_raises_is_recovered_by_reconciliation(
    node: ExecNode, sandbox: AlpacaSandbox, alpaca_market: CatalogMarket,
    monkeypatch: pytest.MonkeyPatch,
):
    """A bug while handling one trade update (injected: the first fill update raises) must
    not lose that fill until some later reconnect: the client reconciles at once."""
    client = node.client
    assert client is not None
    apply_update = client._apply_update
    failed: list[str] = []

    def buggy_once(update: Any) -> None:
        if update.event == "fill" and not failed:
            failed.append(update.order.id)
            raise RuntimeError("injected handler bug")
        apply_update(update)

    monkeypatch.setattr(client, "_apply_update", buggy_once)
    limit = min(b.low for b in bars_after(alpaca_market, "S000", NOW, 10))
    order = node.submit(
        lambda s: s.order_factory.limit(S000, OrderSide.BUY, Quantity.from_int(6), px(limit))
    )
    node.wait_status(order.client_order_id, OrderStatus.ACCEPTED)
    connections = client.stream.connections
    sandbox.advance_to(NOW + 10 * MINUTE)
    node.wait_status(order.client_order_id, OrderStatus.FILLED)
    assert failed == [node.order(order.client_order_id).venue_order_id.value]
    assert client.stream.connections == connections  # recovered without a reconnect
    assert_fills_match_venue(node, sandbox, order.client_order_id)


def test_a_key_rejected_on_a_reconnect_halts_entries_retries_and_reconciles_when_back(
    sandbox: AlpacaSandbox, alpaca_market: CatalogMarket
):
    """The stream drops (instead of a fill) and Alpaca refuses the key on the next three
    reconnects: the client says it is disconnected (``is_connected`` and ``status_topic``,
    which the strategy's entries listen to), keeps retrying with backoff, and once back
    reconciles the fill it missed, then reports connected again."""
    topic = "test.execution.connected"
    with ExecNode(client_config(sandbox, status_topic=topic)) as node:
        client = node.client
        assert client is not None
        statuses: list[bool] = []
        node.call(lambda: node.node.kernel.msgbus.subscribe(topic=topic, handler=statuses.append))
        limit = min(b.low for b in bars_after(alpaca_market, "S000", NOW, 10))
        order = node.submit(
            lambda s: s.order_factory.limit(S000, OrderSide.BUY, Quantity.from_int(6), px(limit))
        )
        node.wait_status(order.client_order_id, OrderStatus.ACCEPTED)
        attempts = client.stream.attempts
        sandbox.add_fault(AlpacaFault(kind="drop_before_fill"))
        sandbox.add_fault(AlpacaFault(kind="reject_auth", times=3))
        sandbox.advance_to(NOW + 10 * MINUTE)  # fills at the venue; the stream drops instead
        eventually(lambda: statuses[:1] == [False], "no disconnected status published")
        node.wait_status(order.client_order_id, OrderStatus.FILLED)
        eventually(lambda: node.call(lambda: client.is_connected), "client not connected again")
        assert statuses == [False, True]
        assert client.stream.attempts == attempts + 4  # three refused, the fourth listening
        assert sandbox.pending_faults == []
        assert_fills_match_venue(node, sandbox, order.client_order_id)


def test_reconciliation_keeps_trying_through_rest_errors(
    sandbox: AlpacaSandbox, alpaca_market: CatalogMarket
):
    with ExecNode(client_config(sandbox, max_retries=1)) as node:
        limit = min(b.low for b in bars_after(alpaca_market, "S000", NOW, 10))
        order = node.submit(
            lambda s: s.order_factory.limit(S000, OrderSide.BUY, Quantity.from_int(6), px(limit))
        )
        node.wait_status(order.client_order_id, OrderStatus.ACCEPTED)
        sandbox.add_fault(AlpacaFault(kind="server_error", status=503, times=3, path="/v2/orders/"))
        sandbox.add_fault(AlpacaFault(kind="drop_before_fill"))
        sandbox.advance_to(NOW + 10 * MINUTE)
        node.wait_status(order.client_order_id, OrderStatus.FILLED)
        assert (
            sandbox.pending_faults == []
        )  # the first pass failed on them, a later one got through
        assert len(node.strategy.fills(order.client_order_id)) == 1
        assert_fills_match_venue(node, sandbox, order.client_order_id)


def test_partial_fill_lost_with_the_stream_is_recovered_exactly(alpaca_market: CatalogMarket):
    with AlpacaSandbox(
        alpaca_market, key_id=KEY_ID, secret_key=SECRET_KEY, participation=0.001
    ) as sb:
        sb.advance_to(NOW)
        with ExecNode(client_config(sb)) as node:
            sb.add_fault(AlpacaFault(kind="drop_before_fill", clean=True))
            order = node.submit(
                lambda s: s.order_factory.market(
                    S000, OrderSide.BUY, Quantity.from_int(30), TimeInForce.DAY
                )
            )
            node.wait_status(order.client_order_id, OrderStatus.PARTIALLY_FILLED)
            sb.advance_to(NOW + 10 * MINUTE)
            node.wait_status(order.client_order_id, OrderStatus.FILLED)
            assert_fills_match_venue(node, sb, order.client_order_id)
            assert (
                sum(f.last_qty.as_decimal() for f in node.strategy.fills(order.client_order_id))
                == 30
            )


def test_restart_reconciles_positions_and_working_orders_without_resubmitting(
    sandbox: AlpacaSandbox, alpaca_market: CatalogMarket
):
    s001 = instrument_id("S001")
    far = last_close(alpaca_market, "S001", NOW) - 50
    later = bars_after(alpaca_market, "S002", NOW, 10)
    sl = min(b.low for b in later) + Decimal("0.50")
    tp = max(b.high for b in later) + Decimal("1.00")
    with ExecNode(client_config(sandbox)) as first:
        bought = first.submit(
            lambda s: s.order_factory.market(
                S000, OrderSide.BUY, Quantity.from_int(12), TimeInForce.DAY
            )
        )
        working = first.submit(
            lambda s: s.order_factory.limit(s001, OrderSide.BUY, Quantity.from_int(3), px(far))
        )
        bracket = first.submit_list(
            lambda s: s.order_factory.bracket(
                instrument_id("S002"),
                OrderSide.BUY,
                Quantity.from_int(4),
                sl_trigger_price=px(sl),
                tp_price=px(tp),
                tp_post_only=False,
            )
        )
        first.wait_status(bought.client_order_id, OrderStatus.FILLED)
        first.wait_status(working.client_order_id, OrderStatus.ACCEPTED)
        for leg in bracket.orders[1:]:
            first.wait_status(leg.client_order_id, OrderStatus.ACCEPTED)
    requests_before = len(sandbox.order_requests)
    legs = {
        o["type"]: o["id"]
        for o in sandbox.orders()
        if o["symbol"] == "S002" and o["type"] != "market"
    }

    with ExecNode(client_config(sandbox)) as second:  # a fresh cache: everything from Alpaca
        restored = second.order(working.client_order_id)
        assert restored is not None and restored.status == OrderStatus.ACCEPTED
        assert restored.price == px(far) and restored.quantity == Quantity.from_int(3)
        assert second.order(bought.client_order_id).status == OrderStatus.FILLED
        positions = {
            p.instrument_id.symbol.value: p.signed_qty
            for p in second.call(lambda: second.strategy.cache.positions_open())
        }
        assert positions == {"S000": 12, "S002": 4}
        open_legs = second.call(
            lambda: second.strategy.cache.orders_open(instrument_id=instrument_id("S002"))
        )
        assert {o.venue_order_id.value for o in open_legs} == set(legs.values())
        assert len(sandbox.order_requests) == requests_before  # nothing submitted again

        # the restored orders keep trading: the stop-loss leg fills, its partner is cancelled
        sandbox.advance_to(NOW + 10 * MINUTE)
        by_venue = {o.venue_order_id.value: o.client_order_id for o in open_legs}
        second.wait_status(by_venue[legs["stop"]], OrderStatus.FILLED)
        second.wait_status(by_venue[legs["limit"]], OrderStatus.CANCELED)
        assert second.call(lambda: second.strategy.portfolio.is_flat(instrument_id("S002")))
        second.call(
            lambda: second.strategy.cancel_order(
                second.strategy.cache.order(working.client_order_id)
            )
        )
        second.wait_status(working.client_order_id, OrderStatus.CANCELED)
    assert [r.method for r in sandbox.order_requests[requests_before:]] == ["DELETE"]


def test_start_up_restores_working_orders_older_than_the_lookback(
    sandbox: AlpacaSandbox, trading_client: TradingClient, alpaca_market: CatalogMarket
):
    """NautilusTrader asks for the orders of the last ``reconciliation_lookback_mins``; a
    GTC order placed before that (here: the sandbox's 2024 against today's clock) and the
    legs of an old bracket still work at Alpaca and must be restored, or nothing here could
    cancel them."""
    far = float(last_close(alpaca_market, "S001", NOW) - 50)
    trading_client.submit_order(LimitOrderRequest(
        symbol="S001", qty=3, side=AlpacaSide.BUY, time_in_force=AlpacaTif.GTC, limit_price=far
    ))
    close = float(last_close(alpaca_market, "S002", NOW))
    trading_client.submit_order(MarketOrderRequest(
        symbol="S002", qty=4, side=AlpacaSide.BUY, time_in_force=AlpacaTif.GTC,
        order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=round(close + 20, 2)),
        stop_loss=StopLossRequest(stop_price=round(close - 20, 2)),
    ))
    working = {o["id"] for o in sandbox.orders() if o["status"] in ("new", "accepted")}
    assert len(working) == 3  # the limit order and both legs
    engine = LiveExecEngineConfig(reconciliation=True, reconciliation_lookback_mins=1440)
    with ExecNode(client_config(sandbox), engine) as node:
        restored = node.call(lambda: [o.venue_order_id.value for o in node.strategy.cache.orders_open()])
        assert set(restored) == working


@pytest.mark.parametrize(
    ("fault", "statuses"),
    [
        (
            AlpacaFault(kind="rate_limit", times=2, retry_after_secs=0.1, path="/v2/orders"),
            [429, 429, 200],
        ),
        (AlpacaFault(kind="server_error", status=503, path="/v2/orders"), [503, 200]),
    ],
    ids=["429", "503"],
)
def test_rate_limits_and_server_errors_are_retried_into_one_order(
    node: ExecNode, sandbox: AlpacaSandbox, fault: AlpacaFault, statuses: list[int]
):
    sandbox.add_fault(fault)
    order = node.submit(
        lambda s: s.order_factory.market(S000, OrderSide.BUY, Quantity.from_int(2), TimeInForce.DAY)
    )
    node.wait_status(order.client_order_id, OrderStatus.FILLED)
    assert [r.status_code for r in sandbox.order_requests] == statuses
    assert {r.client_order_id for r in sandbox.order_requests} == {order.client_order_id.value}
    assert len(sandbox.orders()) == 1
    assert len(node.strategy.fills(order.client_order_id)) == 1


def test_a_stalled_submit_times_out_and_its_retry_places_the_order_once(sandbox: AlpacaSandbox):
    with ExecNode(client_config(sandbox, request_timeout_secs=0.5)) as node:
        sandbox.add_fault(AlpacaFault(kind="stall", stall_secs=20.0, path="/v2/orders"))
        order = node.submit(
            lambda s: s.order_factory.market(
                S000, OrderSide.BUY, Quantity.from_int(2), TimeInForce.DAY
            )
        )
        # wait_status gives up after WAIT (15 s), before the 20 s stall ends: the fill came
        # from the retry after the 0.5 s timeout.
        node.wait_status(order.client_order_id, OrderStatus.FILLED)
        assert len(sandbox.orders()) == 1 and len(node.strategy.fills(order.client_order_id)) == 1


def test_submit_that_outlives_its_retries_is_rejected_with_the_reason(sandbox: AlpacaSandbox):
    with ExecNode(client_config(sandbox, max_retries=2, order_lookup_secs=0.3)) as node:
        sandbox.add_fault(AlpacaFault(kind="server_error", status=502, times=3, path="/v2/orders"))
        order = node.submit(
            lambda s: s.order_factory.market(
                S000, OrderSide.BUY, Quantity.from_int(2), TimeInForce.DAY
            )
        )
        node.wait_status(order.client_order_id, OrderStatus.REJECTED)
        [rejected] = node.strategy.events_of(order.client_order_id, OrderRejected)
        assert "gave up after 3 attempts" in rejected.reason and "502" in rejected.reason
        assert "not at Alpaca after 0.3s" in rejected.reason
        assert sandbox.orders() == []


def test_query_order_recovers_a_lost_fill_without_the_reconnect_hook(
    sandbox: AlpacaSandbox, alpaca_market: CatalogMarket
):
    """The engine's in-flight check queries orders the same way (QueryOrder)."""
    with ExecNode(client_config(sandbox, reconcile_on_reconnect=False)) as node:
        limit = min(b.low for b in bars_after(alpaca_market, "S000", NOW, 10))
        order = node.submit(
            lambda s: s.order_factory.limit(S000, OrderSide.BUY, Quantity.from_int(6), px(limit))
        )
        node.wait_status(order.client_order_id, OrderStatus.ACCEPTED)
        stream = node.client.stream
        connections = stream.connections
        sandbox.add_fault(AlpacaFault(kind="drop_before_fill"))
        sandbox.advance_to(NOW + 10 * MINUTE)
        eventually(lambda: stream.connections == connections + 1, "the stream did not reconnect")
        sandbox.wait_for_listeners(1, WAIT)
        stream_barrier(node)
        assert node.order(order.client_order_id).status == OrderStatus.ACCEPTED  # nobody told it
        node.call(
            lambda: node.strategy.query_order(node.strategy.cache.order(order.client_order_id))
        )
        node.wait_status(order.client_order_id, OrderStatus.FILLED)
        assert_fills_match_venue(node, sandbox, order.client_order_id)


def test_an_order_that_reaches_alpaca_after_being_given_up_is_cancelled_there(
    sandbox: AlpacaSandbox, alpaca_market: CatalogMarket
):
    """The first POST stalls past its timeout, the retries get 502s, the lookups find
    nothing for longer than ``order_lookup_secs``: the order is rejected here. When the
    stalled POST is finally processed, the order that appears at Alpaca is cancelled rather
    than left trading unseen."""
    far = last_close(alpaca_market, "S000", NOW) - 50
    config = client_config(sandbox, request_timeout_secs=0.3, max_retries=2, order_lookup_secs=0.3)
    with ExecNode(config) as node:
        sandbox.add_fault(AlpacaFault(kind="stall", stall_secs=1.5, path="/v2/orders"))
        sandbox.add_fault(AlpacaFault(kind="server_error", status=502, times=2, path="/v2/orders"))
        order = node.submit(
            lambda s: s.order_factory.limit(S000, OrderSide.BUY, Quantity.from_int(1), px(far))
        )
        node.wait_status(order.client_order_id, OrderStatus.REJECTED)
        eventually(
            lambda: [o["status"] for o in sandbox.orders()] == ["canceled"],
            "venue order not cancelled",
        )
        assert node.order(order.client_order_id).status == OrderStatus.REJECTED


def stalled_market_order(node: ExecNode, sandbox: AlpacaSandbox) -> Order:
    """A market order whose first POST reaches Alpaca only after 1.5 s, after the client's
    0.3 s timeout and two retries answered 502."""
    sandbox.add_fault(AlpacaFault(kind="stall", stall_secs=1.5, path="/v2/orders"))
    sandbox.add_fault(AlpacaFault(kind="server_error", status=502, times=2, path="/v2/orders"))
    return node.submit(
        lambda s: s.order_factory.market(S000, OrderSide.BUY, Quantity.from_int(2), TimeInForce.DAY)
    )


def test_an_unanswered_submission_stays_submitted_until_a_lookup_finds_it(sandbox: AlpacaSandbox):
    """No terminal event while the lookups by client_order_id have not settled it: the
    stalled POST turns up at Alpaca and fills; the strategy never sees it rejected."""
    config = client_config(sandbox, request_timeout_secs=0.3, max_retries=2, order_lookup_secs=10.0)
    with ExecNode(config) as node:
        order = stalled_market_order(node, sandbox)
        node.wait_status(order.client_order_id, OrderStatus.FILLED)
        assert "OrderRejected" not in event_names(node, order.client_order_id)
        assert len(sandbox.orders()) == 1
        assert_fills_match_venue(node, sandbox, order.client_order_id)


def test_a_fill_after_the_order_was_given_up_becomes_a_position(sandbox: AlpacaSandbox):
    """Lookups shorter than the stall: the order is rejected here, then Alpaca fills it.
    The venue's truth wins: the fill is not an event on the rejected order but an order of
    its own that the strategy claims, so the position exists and can be flattened."""
    config = client_config(sandbox, request_timeout_secs=0.3, max_retries=2, order_lookup_secs=0.3)
    with ExecNode(config) as node:
        order = stalled_market_order(node, sandbox)
        node.wait_status(order.client_order_id, OrderStatus.REJECTED)

        def position() -> Any:
            positions = node.strategy.cache.positions_open(instrument_id=S000)
            return positions[0] if positions else None

        eventually(lambda: node.call(position) is not None, "the late fill made no position")
        held = node.call(position)
        assert held.signed_qty == 2 and held.strategy_id == node.strategy.id
        [venue] = sandbox.orders()
        assert Decimal(repr(held.avg_px_open)) == Decimal(venue["filled_avg_price"])
        assert node.order(order.client_order_id).status == OrderStatus.REJECTED
        assert node.strategy.fills(order.client_order_id) == []  # nothing on the rejected order
        node.call(lambda: node.strategy.close_all_positions(S000))
        eventually(lambda: node.call(position) is None, "the adopted position did not close")
        assert sandbox.positions() == {}


# -- the stream on its own -----------------------------------------------------------------------


def run_stream(
    sandbox: AlpacaSandbox, secret: str, body: Callable[[AlpacaTradeStream, list], Coroutine]
) -> None:
    async def go() -> None:
        updates: list = []
        reconnects: list = []
        stream = AlpacaTradeStream(
            sandbox.stream_url,
            AlpacaCredentials(KEY_ID, secret),
            on_update=updates.append,
            on_reconnected=lambda: reconnects.append(len(updates)),
            on_update_failed=lambda: None,
            on_lost=lambda reason: None,
            connect_timeout_secs=2.0,
            reconnect_initial_delay_secs=0.05,
            reconnect_max_delay_secs=0.2,
        )
        stream.start()
        try:
            await body(stream, [updates, reconnects])
        finally:
            await stream.stop()

    asyncio.run(go())


def test_stream_with_a_rejected_key_fails_fast_and_does_not_retry(sandbox: AlpacaSandbox):
    async def body(stream: AlpacaTradeStream, _: list) -> None:
        with pytest.raises(StreamAuthError, match="unauthorized"):
            await stream.wait_connected(5.0)
        assert not stream.is_supervised  # the supervisor has returned: no retry can follow
        assert stream.attempts == 1 and not stream.is_connected

    run_stream(sandbox, "wrong-secret", body)


def test_stream_reconnects_and_says_so_before_new_updates(
    sandbox: AlpacaSandbox, trading_client: TradingClient
):
    async def body(stream: AlpacaTradeStream, seen: list) -> None:
        updates, reconnects = seen
        assert await stream.wait_connected(5.0)
        await asyncio.to_thread(sandbox.drop_stream)
        for _ in range(100):
            if reconnects and stream.is_connected:
                break
            await asyncio.sleep(0.05)
        assert reconnects == [0] and stream.connections == 2
        order = await asyncio.to_thread(
            trading_client.submit_order,
            MarketOrderRequest(
                symbol="S001", qty=1, side=AlpacaSide.BUY, time_in_force=AlpacaTif.DAY
            ),
        )
        for _ in range(100):
            if {u["event"] for u in updates} >= {"new", "fill"}:
                break
            await asyncio.sleep(0.05)
        assert [u["event"] for u in updates] == ["new", "fill"]
        assert {u["order"]["id"] for u in updates} == {str(order.id)}

    run_stream(sandbox, SECRET_KEY, body)


# -- reports and wiring --------------------------------------------------------------------------


def test_reports_for_reconciliation(
    node: ExecNode, sandbox: AlpacaSandbox, alpaca_market: CatalogMarket
):
    far = last_close(alpaca_market, "S001", NOW) - 50
    bought = node.submit(
        lambda s: s.order_factory.market(S000, OrderSide.BUY, Quantity.from_int(5), TimeInForce.DAY)
    )
    working = node.submit(
        lambda s: s.order_factory.limit(
            instrument_id("S001"), OrderSide.BUY, Quantity.from_int(2), px(far)
        )
    )
    node.wait_status(bought.client_order_id, OrderStatus.FILLED)
    node.wait_status(working.client_order_id, OrderStatus.ACCEPTED)
    client = node.client
    assert client is not None
    since = pd.Timestamp("2024-12-27", tz="UTC")

    def command(cls: type, **fields: Any) -> Any:
        return cls(command_id=UUID4(), ts_init=0, **fields)

    open_only = node.run(
        client.generate_order_status_reports(
            command(
                GenerateOrderStatusReports,
                instrument_id=None,
                start=since,
                end=None,
                open_only=True,
            )
        )
    )
    assert [(r.client_order_id, r.order_status, r.price) for r in open_only] == [
        (working.client_order_id, OrderStatus.ACCEPTED, px(far))
    ]
    every = node.run(
        client.generate_order_status_reports(
            command(
                GenerateOrderStatusReports,
                instrument_id=None,
                start=since,
                end=None,
                open_only=False,
            )
        )
    )
    assert {r.client_order_id for r in every} == {bought.client_order_id, working.client_order_id}
    [fill] = node.run(
        client.generate_fill_reports(
            command(
                GenerateFillReports, instrument_id=S000, venue_order_id=None, start=since, end=None
            )
        )
    )
    [venue_fill] = node.strategy.fills(bought.client_order_id)
    assert (fill.trade_id, fill.last_px, fill.last_qty, fill.client_order_id) == (
        venue_fill.trade_id,
        venue_fill.last_px,
        venue_fill.last_qty,
        bought.client_order_id,
    )
    [position] = node.run(
        client.generate_position_status_reports(
            command(GeneratePositionStatusReports, instrument_id=S000, start=None, end=None)
        )
    )
    assert position.signed_decimal_qty == 5
    [flat] = node.run(
        client.generate_position_status_reports(
            command(
                GeneratePositionStatusReports,
                instrument_id=instrument_id("S002"),
                start=None,
                end=None,
            )
        )
    )
    assert flat.signed_decimal_qty == 0
    single = node.run(
        client.generate_order_status_report(
            command(
                GenerateOrderStatusReport,
                instrument_id=S000,
                client_order_id=bought.client_order_id,
                venue_order_id=None,
            )
        )
    )
    assert single.order_status == OrderStatus.FILLED and single.avg_px == Decimal(
        str(venue_fill.last_px)
    )


def test_an_order_list_without_contingencies_is_sent_order_by_order(
    node: ExecNode, sandbox: AlpacaSandbox, alpaca_market: CatalogMarket
):
    far = last_close(alpaca_market, "S000", NOW) - 50

    def make(s: Strategy) -> OrderList:
        orders = [
            s.order_factory.limit(S000, OrderSide.BUY, Quantity.from_int(1), px(far - k))
            for k in range(2)
        ]
        return OrderList(s.order_factory.generate_order_list_id(), orders)

    order_list = node.submit_list(make)
    for order in order_list.orders:
        node.wait_status(order.client_order_id, OrderStatus.ACCEPTED)
    assert [r.client_order_id for r in sandbox.order_requests] == [
        o.client_order_id.value for o in order_list.orders
    ]


def test_keys_come_from_the_environment_and_stay_out_of_configs_and_logs(
    sandbox: AlpacaSandbox, monkeypatch: pytest.MonkeyPatch
):
    config = client_config(sandbox)
    assert SECRET_KEY not in repr(config) and SECRET_KEY not in config.json().decode()
    assert (
        repr(credentials_from_env({"APCA_API_KEY_ID": "k", "APCA_API_SECRET_KEY": "s"}))
        == "AlpacaCredentials()"
    )
    with pytest.raises(MissingCredentialsError, match="ALPACA_API_SECRET_KEY is not set"):
        credentials_from_env({"ALPACA_API_KEY_ID": "k"})
    for name in (
        "ALPACA_API_KEY_ID",
        "ALPACA_API_SECRET_KEY",
        "APCA_API_KEY_ID",
        "APCA_API_SECRET_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MissingCredentialsError, match="APCA_API_KEY_ID"):
        AlpacaLiveExecClientFactory.create(None, ALPACA, config, None, None, None)  # type: ignore[arg-type]


def test_stream_url_is_derived_from_the_rest_url():
    assert AlpacaExecClientConfig().resolved_stream_url == "wss://paper-api.alpaca.markets/stream"
    assert (
        AlpacaExecClientConfig(base_url="http://127.0.0.1:8080").resolved_stream_url
        == "ws://127.0.0.1:8080/stream"
    )
    assert (
        AlpacaExecClientConfig(base_url="http://127.0.0.1:1", stream_url="ws://127.0.0.1:1/y").resolved_stream_url
        == "ws://127.0.0.1:1/y"
    )
    with pytest.raises(ValueError, match="http"):
        AlpacaExecClientConfig(base_url="ftp://x")


def test_a_paper_config_never_points_at_the_live_endpoint():
    """Every spelling is covered in tests/live/test_settings.py; here, the client's own check."""
    with pytest.raises(ValueError, match="is Alpaca's live"):
        AlpacaExecClientConfig(base_url="https://API.alpaca.markets:443")
    with pytest.raises(ValueError, match="live trading needs Alpaca's live host"):
        AlpacaExecClientConfig(paper=False)
    assert (
        AlpacaExecClientConfig(paper=False, base_url="https://api.alpaca.markets/").paper is False
    )


def test_the_factory_refuses_a_key_of_the_other_account(monkeypatch):
    """The last gate before any request: a paper client with a live key (or the reverse)."""
    monkeypatch.setenv("ALPACA_API_KEY_ID", "AKLIVE")
    monkeypatch.setenv("ALPACA_API_SECRET_KEY", "s")
    with pytest.raises(ValueError, match="not a paper key"):
        AlpacaLiveExecClientFactory.create(None, ALPACA, AlpacaExecClientConfig(), None, None, None)  # type: ignore[arg-type]
    monkeypatch.setenv("ALPACA_API_KEY_ID", "PKPAPER")
    with pytest.raises(ValueError, match="is a paper key"):
        AlpacaLiveExecClientFactory.create(  # type: ignore[arg-type]
            None, ALPACA, AlpacaExecClientConfig(paper=False, base_url="https://api.alpaca.markets"), None, None, None)
