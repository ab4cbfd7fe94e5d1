"""The pure translations: order bodies, Alpaca JSON -> reports, and the per-order bookkeeping
that turns snapshots and trade updates into events exactly once."""

import json
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from nautilus_trader.common.component import TestClock
from nautilus_trader.common.factories import OrderFactory
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import (
    LiquiditySide,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionSide,
    TimeInForce,
    TrailingOffsetType,
    TriggerType,
)
from nautilus_trader.model.identifiers import AccountId, ClientOrderId, StrategyId, TraderId
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.model.orders import StopLimitOrder

from adapters.alpaca.parsing.orders import (
    UnsupportedOrderError,
    as_bracket,
    bracket_body,
    bracket_legs,
    order_body,
    replace_body,
    wire_price,
)
from adapters.alpaca.parsing.progress import (
    Accept,
    Cancel,
    Expire,
    Fill,
    OrderProgress,
    Reject,
    Update,
)
from adapters.alpaca.parsing.reports import (
    account_balances,
    fill_report,
    order_status_report,
    position_status_report,
)
from adapters.alpaca.parsing.wire import (
    AlpacaAccount,
    AlpacaOrder,
    AlpacaPosition,
    AlpacaWireError,
    FillActivity,
    TradeUpdate,
    decode,
    execution_id,
    order_status,
    to_price,
    to_quantity,
    ts_ns,
)
from catalog.instruments import equity, instrument_id

AAPL = instrument_id("AAPL")
ACCOUNT = AccountId("ALPACA-PA0001")
T0 = "2024-12-30T14:31:00.000000Z"
T0_NS = 1735569060000000000


@pytest.fixture
def factory() -> OrderFactory:
    return OrderFactory(TraderId("TESTER-001"), StrategyId("S-001"), TestClock())


def alpaca_order(**fields: Any) -> dict[str, Any]:
    """An order as Alpaca's REST and trade_updates carry it (strings for money)."""
    base = {
        "id": "venue-1",
        "client_order_id": "O-1",
        "symbol": "AAPL",
        "side": "buy",
        "type": "limit",
        "order_type": "limit",
        "time_in_force": "gtc",
        "status": "new",
        "qty": "10",
        "filled_qty": "0",
        "filled_avg_price": None,
        "limit_price": "184.10",
        "stop_price": None,
        "order_class": "simple",
        "legs": None,
        "replaces": None,
        "replaced_by": None,
        "created_at": T0,
        "submitted_at": T0,
        "updated_at": T0,
        "filled_at": None,
        "notional": None,
        "extended_hours": False,
    }
    return base | fields


def snapshot(**fields: Any) -> AlpacaOrder:
    return decode(alpaca_order(**fields), AlpacaOrder)


def fill_update(event: str, price: str, qty: str, execution: str, **order: Any) -> TradeUpdate:
    return decode(
        {
            "event": event,
            "execution_id": execution,
            "timestamp": T0,
            "price": price,
            "qty": qty,
            "position_qty": qty,
            "order": alpaca_order(**order),
        },
        TradeUpdate,
    )


def kinds(actions: list) -> list[str]:
    return [type(a).__name__ for a in actions]


# -- order bodies --------------------------------------------------------------------------------


def test_market_order_body(factory: OrderFactory):
    order = factory.market(AAPL, OrderSide.BUY, Quantity.from_int(10), TimeInForce.DAY)
    assert order_body(order) == {
        "symbol": "AAPL",
        "qty": "10",
        "side": "buy",
        "type": "market",
        "time_in_force": "day",
        "client_order_id": order.client_order_id.value,
    }


@pytest.mark.parametrize(
    ("make", "fields"),
    [
        (
            lambda f: f.limit(AAPL, OrderSide.SELL, Quantity.from_int(3), Price.from_str("184.10")),
            {"type": "limit", "side": "sell", "time_in_force": "gtc", "limit_price": "184.10"},
        ),
        (
            lambda f: f.stop_market(
                AAPL,
                OrderSide.SELL,
                Quantity.from_int(3),
                Price.from_str("180.00"),
                time_in_force=TimeInForce.DAY,
            ),
            {"type": "stop", "side": "sell", "time_in_force": "day", "stop_price": "180.00"},
        ),
        (
            lambda f: f.stop_limit(
                AAPL,
                OrderSide.BUY,
                Quantity.from_int(3),
                Price.from_str("190.05"),
                Price.from_str("190.00"),
                time_in_force=TimeInForce.IOC,
            ),
            {
                "type": "stop_limit",
                "side": "buy",
                "time_in_force": "ioc",
                "limit_price": "190.05",
                "stop_price": "190.00",
            },
        ),
        (
            lambda f: f.limit(
                AAPL,
                OrderSide.BUY,
                Quantity.from_int(3),
                Price.from_str("1.00"),
                TimeInForce.AT_THE_OPEN,
            ),
            {"type": "limit", "side": "buy", "time_in_force": "opg", "limit_price": "1.00"},
        ),
        (
            lambda f: f.market(AAPL, OrderSide.BUY, Quantity.from_int(3), TimeInForce.AT_THE_CLOSE),
            {"type": "market", "side": "buy", "time_in_force": "cls"},
        ),
        (
            lambda f: f.market(AAPL, OrderSide.BUY, Quantity.from_int(3), TimeInForce.FOK),
            {"type": "market", "side": "buy", "time_in_force": "fok"},
        ),
    ],
    ids=["limit-gtc", "stop-day", "stop_limit-ioc", "opg", "cls", "fok"],
)
def test_order_bodies_by_type_and_time_in_force(factory: OrderFactory, make, fields: dict):
    order = make(factory)
    body = order_body(order)
    assert (
        body
        == {"symbol": "AAPL", "qty": "3", "client_order_id": order.client_order_id.value} | fields
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda f: f.limit(
            AAPL, OrderSide.BUY, Quantity.from_int(1), Price.from_str("1.00"), post_only=True
        ),
        lambda f: f.limit(
            AAPL,
            OrderSide.BUY,
            Quantity.from_int(1),
            Price.from_str("1.00"),
            TimeInForce.GTD,
            expire_time=pd.Timestamp("2030-01-01", tz="UTC"),
        ),
        lambda f: f.market_if_touched(
            AAPL, OrderSide.BUY, Quantity.from_int(1), Price.from_str("1.00")
        ),
        lambda f: f.trailing_stop_market(
            AAPL,
            OrderSide.SELL,
            Quantity.from_int(1),
            trailing_offset=Decimal("1.00"),
            trigger_price=Price.from_str("1.00"),
        ),
    ],
    ids=["post-only", "gtd", "market-if-touched", "trailing-stop"],
)
def test_what_alpaca_cannot_express_is_refused(factory: OrderFactory, make):
    with pytest.raises(UnsupportedOrderError):
        order_body(make(factory))


def test_bracket_list_becomes_one_bracket_order(factory: OrderFactory):
    order_list = factory.bracket(
        AAPL,
        OrderSide.BUY,
        Quantity.from_int(2),
        sl_trigger_price=Price.from_str("180.00"),
        tp_price=Price.from_str("190.00"),
        tp_post_only=False,
    )
    bracket = as_bracket(list(order_list.orders))
    assert bracket.entry.order_type == OrderType.MARKET
    assert bracket.take_profit.order_type == OrderType.LIMIT
    assert bracket.stop_loss.order_type == OrderType.STOP_MARKET
    assert bracket_body(bracket) == {
        "symbol": "AAPL",
        "qty": "2",
        "side": "buy",
        "type": "market",
        "time_in_force": "gtc",
        "client_order_id": bracket.entry.client_order_id.value,
        "order_class": "bracket",
        "take_profit": {"limit_price": "190.00"},
        "stop_loss": {"stop_price": "180.00"},
    }


def test_bracket_with_limit_entry_and_stop_limit_loss(factory: OrderFactory):
    """OrderFactory.bracket always makes a STOP_MARKET loss; a hand-built list may use a
    STOP_LIMIT, which Alpaca takes as stop_loss.limit_price."""
    order_list = factory.bracket(
        AAPL,
        OrderSide.SELL,
        Quantity.from_int(5),
        entry_order_type=OrderType.LIMIT,
        entry_price=Price.from_str("185.00"),
        sl_trigger_price=Price.from_str("190.00"),
        tp_price=Price.from_str("175.00"),
        tp_post_only=False,
        time_in_force=TimeInForce.DAY,
    )
    entry, stop_market, take_profit = order_list.orders
    stop_limit = StopLimitOrder(
        stop_market.trader_id,
        stop_market.strategy_id,
        AAPL,
        stop_market.client_order_id,
        OrderSide.BUY,
        Quantity.from_int(5),
        Price.from_str("190.50"),
        Price.from_str("190.00"),
        TriggerType.DEFAULT,
        UUID4(),
        0,
        contingency_type=stop_market.contingency_type,
        order_list_id=stop_market.order_list_id,
        linked_order_ids=stop_market.linked_order_ids,
        parent_order_id=stop_market.parent_order_id,
    )
    body = bracket_body(as_bracket([entry, stop_limit, take_profit]))
    assert (body["type"], body["side"], body["limit_price"], body["time_in_force"]) == (
        "limit",
        "sell",
        "185.00",
        "day",
    )
    assert body["stop_loss"] == {"stop_price": "190.00", "limit_price": "190.50"}
    assert body["take_profit"] == {"limit_price": "175.00"}


def test_lists_that_are_not_brackets_are_refused(factory: OrderFactory):
    independent = [factory.market(AAPL, OrderSide.BUY, Quantity.from_int(1)) for _ in range(3)]
    with pytest.raises(UnsupportedOrderError, match="OTO"):
        as_bracket(independent)
    mit_entry = factory.bracket(
        AAPL,
        OrderSide.BUY,
        Quantity.from_int(1),
        entry_order_type=OrderType.MARKET_IF_TOUCHED,
        entry_trigger_price=Price.from_str("100.00"),
        sl_trigger_price=Price.from_str("90.00"),
        tp_price=Price.from_str("110.00"),
        tp_post_only=False,
    )
    with pytest.raises(UnsupportedOrderError, match="market or limit"):
        as_bracket(list(mit_entry.orders))


def test_bracket_legs_are_matched_to_the_exits_by_type(factory: OrderFactory):
    order_list = factory.bracket(
        AAPL,
        OrderSide.BUY,
        Quantity.from_int(2),
        sl_trigger_price=Price.from_str("180.00"),
        tp_price=Price.from_str("190.00"),
        tp_post_only=False,
    )
    bracket = as_bracket(list(order_list.orders))
    parent = snapshot(
        id="parent",
        type="market",
        order_class="bracket",
        legs=[
            alpaca_order(
                id="leg-sl",
                client_order_id="x",
                type="stop",
                side="sell",
                status="held",
                limit_price=None,
                stop_price="180.00",
                order_class="bracket",
            ),
            alpaca_order(
                id="leg-tp",
                client_order_id="y",
                type="limit",
                side="sell",
                status="held",
                limit_price="190.00",
                order_class="bracket",
            ),
        ],
    )
    legs = bracket_legs(parent, bracket)
    assert legs[bracket.take_profit.client_order_id].id == "leg-tp"
    assert legs[bracket.stop_loss.client_order_id].id == "leg-sl"
    with pytest.raises(UnsupportedOrderError, match="expected one limit and one stop"):
        bracket_legs(snapshot(id="parent", legs=[]), bracket)


def test_replace_body_sends_only_what_changes():
    assert replace_body(None, Price.from_str("185.10"), None) == {"limit_price": "185.10"}
    assert replace_body(Quantity.from_int(4), None, Price.from_str("180.00")) == {
        "qty": "4",
        "stop_price": "180.00",
    }
    with pytest.raises(UnsupportedOrderError):
        replace_body(None, None, None)


# -- wire ----------------------------------------------------------------------------------------


def test_decoding_keeps_money_exact_from_dicts_and_bytes():
    order = snapshot(filled_qty="3", filled_avg_price="184.0333333333", status="partially_filled")
    assert order.filled_avg_price == Decimal("184.0333333333") and order.limit_price == Decimal(
        "184.10"
    )
    raw = json.dumps(
        {
            "event": "fill",
            "price": "184.07",
            "qty": "3",
            "execution_id": "e",
            "order": alpaca_order(),
        }
    ).encode()
    assert decode(raw, TradeUpdate).price == Decimal("184.07")
    assert decode(alpaca_order(limit_price=184.1), AlpacaOrder).limit_price == Decimal(
        "184.1"
    )  # a JSON number
    with pytest.raises(AlpacaWireError, match="AlpacaOrder"):
        decode({"id": "x"}, AlpacaOrder)
    with pytest.raises(AlpacaWireError):
        decode(b"not json", AlpacaOrder)


@pytest.mark.parametrize(
    ("status", "filled", "expected"),
    [
        ("new", "0", OrderStatus.ACCEPTED),
        ("accepted", "0", OrderStatus.ACCEPTED),
        ("pending_new", "0", OrderStatus.ACCEPTED),
        ("held", "0", OrderStatus.ACCEPTED),
        ("pending_cancel", "2", OrderStatus.PARTIALLY_FILLED),
        ("partially_filled", "2", OrderStatus.PARTIALLY_FILLED),
        ("done_for_day", "2", OrderStatus.PARTIALLY_FILLED),
        ("filled", "10", OrderStatus.FILLED),
        ("canceled", "0", OrderStatus.CANCELED),
        ("expired", "0", OrderStatus.EXPIRED),
        ("rejected", "0", OrderStatus.REJECTED),
        ("replaced", "0", OrderStatus.CANCELED),
    ],
)
def test_order_status_map(status: str, filled: str, expected: OrderStatus):
    assert order_status(snapshot(status=status, filled_qty=filled)) == expected


def test_unknown_status_is_an_error():
    with pytest.raises(AlpacaWireError, match="unknown order status"):
        order_status(snapshot(status="vanished"))


def test_prices_and_quantities_keep_every_digit():
    assert to_price(Decimal("184.1"), 2) == Price.from_str("184.10")
    assert to_price(Decimal("184.0012"), 2) == Price.from_str("184.0012")  # sub-penny stays
    assert to_price(Decimal("184.0012"), 2).precision == 4
    assert to_quantity(Decimal(10), 0) == Quantity.from_int(10)


@pytest.mark.parametrize(("price", "wire"), [
    ("98.0000", "98.00"),      # a 4-decimal instrument's whole-cent price: no zeros past the cent
    ("184.10", "184.10"),
    ("0.4321", "0.4321"),      # below a dollar the sub-penny digits are the price
    ("0.4300", "0.43"),
    ("1.0000", "1.00"),
    ("100", "100.00"),
    ("184.0012", "184.0012"),  # off the tick: sent as it is, for the venue to refuse
])
def test_prices_go_out_with_no_zeros_past_their_tick(price: str, wire: str):
    assert wire_price(Price.from_str(price)) == wire


def test_timestamps_and_execution_ids():
    assert ts_ns("2024-12-30T14:31:00.123456789Z") == T0_NS + 123456789
    assert ts_ns("2024-12-30T09:31:00-05:00") == T0_NS
    assert ts_ns(None, 7) == 7
    with pytest.raises(AlpacaWireError):
        ts_ns("yesterday")
    assert execution_id("20241230143100123::3f2a-uuid") == "3f2a-uuid"
    assert execution_id("plain-id") == "plain-id"


# -- reports -------------------------------------------------------------------------------------


def test_order_status_report_is_exact():
    order = snapshot(
        status="partially_filled",
        filled_qty="4",
        filled_avg_price="184.0725",
        updated_at="2024-12-30T14:32:00Z",
    )
    report = order_status_report(order, ACCOUNT, equity("AAPL"), ClientOrderId("O-1"), 99)
    assert (
        report.client_order_id == ClientOrderId("O-1") and report.venue_order_id.value == "venue-1"
    )
    assert (report.order_side, report.order_type, report.time_in_force) == (
        OrderSide.BUY,
        OrderType.LIMIT,
        TimeInForce.GTC,
    )
    assert report.order_status == OrderStatus.PARTIALLY_FILLED
    assert report.quantity == Quantity.from_int(10) and report.filled_qty == Quantity.from_int(4)
    assert report.price == Price.from_str("184.10") and report.trigger_price is None
    assert report.avg_px == Decimal("184.0725")
    assert (report.ts_accepted, report.ts_last, report.ts_init) == (
        T0_NS,
        T0_NS + 60_000_000_000,
        99,
    )


def test_stop_order_report_has_a_trigger():
    order = snapshot(type="stop", limit_price=None, stop_price="180.00", side="sell")
    report = order_status_report(order, ACCOUNT, equity("AAPL"), None, 0)
    assert (
        report.trigger_price == Price.from_str("180.00")
        and report.trigger_type == TriggerType.DEFAULT
    )
    assert report.order_type == OrderType.STOP_MARKET and report.client_order_id is None


@pytest.mark.parametrize(("trail", "offset", "offset_type"), [
    ({"trail_percent": "1.5"}, Decimal(150), TrailingOffsetType.BASIS_POINTS),
    ({"trail_price": "2.25"}, Decimal("2.25"), TrailingOffsetType.PRICE),
])
def test_a_trailing_stop_placed_elsewhere_is_reported_not_refused(trail: dict, offset: Decimal, offset_type):
    """Alpaca sends trailing_stop orders (from the dashboard, another tool) with trail_percent or
    trail_price and a moving stop_price (its high-water mark ``hwm`` too): the report refused
    them, and one such order failed the whole reconciliation of the account's orders."""
    order = snapshot(type="trailing_stop", order_type="trailing_stop", limit_price=None, stop_price="183.15",
                     side="sell", hwm="185.94", **{"trail_percent": None, "trail_price": None, **trail})
    report = order_status_report(order, ACCOUNT, equity("AAPL"), None, 0)
    assert report.order_type == OrderType.TRAILING_STOP_MARKET
    assert (report.trailing_offset, report.trailing_offset_type) == (offset, offset_type)
    assert report.trigger_price == Price.from_str("183.15") and report.trigger_type == TriggerType.DEFAULT


def test_fill_report_from_an_activity():
    activity = decode(
        {
            "id": "20241230143100000::exec-1",
            "activity_type": "FILL",
            "order_id": "venue-1",
            "symbol": "AAPL",
            "side": "sell",
            "price": "184.07",
            "qty": "3",
            "cum_qty": "3",
            "transaction_time": T0,
        },
        FillActivity,
    )
    report = fill_report(
        activity, ACCOUNT, equity("AAPL"), ClientOrderId("O-1"), LiquiditySide.MAKER, 5
    )
    assert report.trade_id.value == "exec-1"  # the stream's execution_id of the same fill
    assert (report.last_qty, report.last_px) == (Quantity.from_int(3), Price.from_str("184.07"))
    assert report.order_side == OrderSide.SELL and report.commission == Money(0, USD)
    assert report.ts_event == T0_NS and report.liquidity_side == LiquiditySide.MAKER


def test_position_reports_long_and_short():
    long = decode(
        {"symbol": "AAPL", "qty": "12", "side": "long", "avg_entry_price": "184.0333333333"},
        AlpacaPosition,
    )
    report = position_status_report(long, ACCOUNT, equity("AAPL"), 1)
    assert (report.position_side, report.quantity, report.avg_px_open) == (
        PositionSide.LONG,
        Quantity.from_int(12),
        Decimal("184.0333333333"),
    )
    short = decode(
        {"symbol": "AAPL", "qty": "-5", "side": "short", "avg_entry_price": "190.00"},
        AlpacaPosition,
    )
    report = position_status_report(short, ACCOUNT, equity("AAPL"), 1)
    assert report.position_side == PositionSide.SHORT and report.signed_decimal_qty == Decimal(-5)


def test_account_balance_is_equity_without_open_pnl():
    account = decode(
        {
            "account_number": "PA0001",
            "cash": "95000.00",
            "equity": "100250.5",
            "initial_margin": "2500.125",
            "maintenance_margin": "1500.0000001",
        },
        AlpacaAccount,
    )
    positions = [
        decode(
            {
                "symbol": "AAPL",
                "qty": "10",
                "side": "long",
                "avg_entry_price": "500",
                "unrealized_pl": "300.25",
            },
            AlpacaPosition,
        ),
        decode(
            {
                "symbol": "MSFT",
                "qty": "-2",
                "side": "short",
                "avg_entry_price": "100",
                "unrealized_pl": "-50",
            },
            AlpacaPosition,
        ),
    ]
    [balance], [margin] = account_balances(account, positions)
    assert balance.total == Money(Decimal("100000.25"), USD)
    assert balance.locked == Money(Decimal("2500.12"), USD)
    assert balance.free == Money(Decimal("97500.13"), USD)
    assert margin.initial == Money(Decimal("2500.12"), USD) and margin.maintenance == Money(
        1500, USD
    )
    foreign = decode(
        {"account_number": "X", "currency": "EUR", "cash": "1", "equity": "1"}, AlpacaAccount
    )
    with pytest.raises(AlpacaWireError, match="EUR"):
        account_balances(foreign, [])


# -- progress: each piece of news becomes events exactly once -------------------------------------


def test_acceptance_is_reported_once():
    progress = OrderProgress()
    first = progress.apply_snapshot(snapshot(status="new"), 0)
    assert first == [Accept("venue-1", T0_NS)]
    assert progress.apply_snapshot(snapshot(status="new"), 0) == []
    assert progress.apply_snapshot(snapshot(status="pending_cancel"), 0) == []


def test_a_fill_update_then_the_same_state_again_counts_once():
    progress = OrderProgress()
    update = fill_update(
        "fill",
        "184.05",
        "10",
        "exec-1",
        status="filled",
        filled_qty="10",
        filled_avg_price="184.05",
    )
    actions = progress.apply_fill(update, 0)
    assert kinds(actions) == ["Accept", "Fill"]
    assert actions[1] == Fill(
        "venue-1", "exec-1", Decimal(10), Decimal("184.05"), LiquiditySide.MAKER, T0_NS, False
    )
    assert progress.apply_fill(update, 0) == []  # redelivered
    assert (
        progress.apply_snapshot(
            snapshot(status="filled", filled_qty="10", filled_avg_price="184.05"), 0
        )
        == []
    )
    assert progress.closed


def test_a_missed_partial_fill_is_derived_exactly_before_the_next_one():
    progress = OrderProgress("venue-1")
    progress.accepted = True
    # 4 @ 184.01 was lost; the event for 6 @ 184.02 carries the cumulative state
    update = fill_update(
        "fill",
        "184.02",
        "6",
        "exec-2",
        status="filled",
        filled_qty="10",
        filled_avg_price="184.016",
    )
    derived, reported = progress.apply_fill(update, 0)
    assert (derived.last_qty, derived.last_px, derived.inferred) == (
        Decimal(4),
        Decimal("184.010"),
        True,
    )
    assert (reported.last_qty, reported.last_px, reported.trade_id) == (
        Decimal(6),
        Decimal("184.02"),
        "exec-2",
    )
    assert progress.filled_qty == 10 and progress.filled_notional == Decimal("1840.16")


def test_a_snapshot_after_a_disconnect_emits_what_was_missed():
    progress = OrderProgress("venue-1")
    progress.accepted = True
    actions = progress.apply_snapshot(
        snapshot(status="canceled", filled_qty="3", filled_avg_price="184.0333333333"), 0
    )
    assert kinds(actions) == ["Fill", "Cancel"]
    assert actions[0].last_qty == 3 and actions[0].last_px == Decimal("184.0333333333")
    assert (
        progress.apply_snapshot(
            snapshot(status="canceled", filled_qty="3", filled_avg_price="184.0333333333"), 0
        )
        == []
    )


def test_activities_place_missed_executions_exactly_in_order():
    progress = OrderProgress("venue-1")
    progress.accepted = True
    venue = snapshot(status="filled", filled_qty="10", filled_avg_price="184.016")

    def activity(qty: str, cum: str, price: str, exec_id: str) -> FillActivity:
        return FillActivity(
            id=f"20241230143100000::{exec_id}",
            order_id="venue-1",
            symbol="AAPL",
            side="buy",
            price=Decimal(price),
            qty=Decimal(qty),
            cum_qty=Decimal(cum),
            transaction_time=T0,
        )

    second, first = activity("6", "10", "184.02", "e2"), activity("4", "4", "184.01", "e1")
    assert progress.apply_activity(venue, second, 0) == []  # not the next execution: skipped
    [fill_1] = progress.apply_activity(venue, first, 0)
    [fill_2] = progress.apply_activity(venue, second, 0)
    assert [(f.trade_id, f.last_qty, f.last_px) for f in (fill_1, fill_2)] == [
        ("e1", Decimal(4), Decimal("184.01")),
        ("e2", Decimal(6), Decimal("184.02")),
    ]
    assert progress.apply_snapshot(venue, 0) == [] and progress.closed


def test_a_replacement_moves_the_order_to_its_new_venue_id():
    progress = OrderProgress()
    progress.apply_snapshot(snapshot(status="new"), 0)
    assert progress.superseded_by(snapshot(status="replaced", replaced_by="venue-2")) == "venue-2"
    successor = snapshot(
        id="venue-2",
        client_order_id="alpaca-made",
        replaces="venue-1",
        qty="8",
        limit_price="183.50",
    )
    [update] = progress.apply_snapshot(successor, 0)
    assert update == Update("venue-2", Decimal(8), Decimal("183.50"), None, T0_NS)
    assert progress.venue_order_id == "venue-2"
    assert (
        progress.apply_snapshot(snapshot(status="replaced", replaced_by="venue-2"), 0) == []
    )  # stale
    assert progress.apply_snapshot(successor, 0) == []


def test_rejection_after_acceptance_and_nothing_after_it():
    progress = OrderProgress()
    assert kinds(progress.apply_snapshot(snapshot(status="accepted"), 0)) == ["Accept"]
    [reject] = progress.apply_snapshot(snapshot(status="rejected"), 0)
    assert isinstance(reject, Reject) and "venue-1" in reject.reason
    assert progress.apply_snapshot(snapshot(status="rejected"), 0) == []
    assert (
        progress.apply_snapshot(snapshot(status="new"), 0) == []
    )  # a closed order is not re-accepted


def test_expiry_and_a_late_fill_after_a_cancel():
    progress = OrderProgress()
    assert kinds(progress.apply_snapshot(snapshot(status="expired"), 0)) == ["Accept", "Expire"]
    assert progress.apply_snapshot(snapshot(status="expired"), 0) == []
    late = OrderProgress()
    assert kinds(late.apply_snapshot(snapshot(status="canceled"), 0)) == ["Accept", "Cancel"]
    update = fill_update(
        "fill", "184.00", "10", "exec-9", status="filled", filled_qty="10", filled_avg_price="184"
    )
    assert kinds(late.apply_fill(update, 0)) == ["Fill"]  # NautilusTrader allows CANCELED -> FILLED


def test_fills_the_engine_inferred_are_not_reported_again():
    progress = OrderProgress("venue-1")
    progress.catch_up(Decimal(10), Decimal("184.05"), accepted=True, closed=True)
    assert (
        progress.apply_snapshot(
            snapshot(status="filled", filled_qty="10", filled_avg_price="184.05"), 0
        )
        == []
    )


@pytest.mark.parametrize(
    ("event", "status", "filled", "expected"),
    [
        ("new", "new", "0", ["Accept"]),
        ("pending_new", "pending_new", "0", ["Accept"]),
        ("partial_fill", "partially_filled", "4", ["Accept", "Fill"]),
        ("fill", "filled", "10", ["Accept", "Fill"]),
        ("canceled", "canceled", "0", ["Accept", "Cancel"]),
        ("expired", "expired", "0", ["Accept", "Expire"]),
        ("rejected", "rejected", "0", ["Reject"]),
        ("replaced", "replaced", "0", []),
        ("done_for_day", "done_for_day", "0", ["Accept"]),
    ],
)
def test_each_trade_update_event_maps_to_its_events(
    event: str, status: str, filled: str, expected: list[str]
):
    progress = OrderProgress("venue-1")
    fields = {
        "status": status,
        "filled_qty": filled,
        "filled_avg_price": "184.05" if filled != "0" else None,
    }
    if event in ("fill", "partial_fill"):
        actions = progress.apply_fill(fill_update(event, "184.05", filled, "exec", **fields), 0)
    else:
        actions = progress.apply_snapshot(snapshot(**fields), 0)
    assert kinds(actions) == expected
    assert all(isinstance(a, Accept | Fill | Cancel | Expire | Reject) for a in actions)
