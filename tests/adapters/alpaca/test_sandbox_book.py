"""The broker's fill rules and order state machine, on the book alone (no HTTP).

Expected prices are read from the catalog bars, so each test states which bar must fill an
order and at what price (the rules are numbered in adapters/alpaca/sandbox/book.py)."""

from decimal import Decimal

import pandas as pd
import pytest

from adapters.alpaca.sandbox import CatalogMarket
from adapters.alpaca.sandbox.book import Book
from adapters.alpaca.sandbox.market import SymbolBars
from adapters.alpaca.sandbox.orders import BrokerError, OrderSpec, ReplaceSpec

OPEN_NS = int(pd.Timestamp("2024-12-27 14:30", tz="UTC").value)
CLOSE_NS = int(pd.Timestamp("2024-12-27 21:00", tz="UTC").value)
MINUTE = 60_000_000_000


def at(minutes_after_open: int) -> int:
    return OPEN_NS + minutes_after_open * MINUTE


def spec(**fields) -> OrderSpec:
    base = {"symbol": "S000", "qty": 10, "side": "buy", "type": "market", "time_in_force": "day"}
    return OrderSpec(**(base | fields))


def row_at(bars: SymbolBars, ts_ns: int) -> int:
    i = bars.last_index_at(ts_ns)
    assert i is not None and int(bars.close_ns[i]) == ts_ns
    return i


def first_row(bars: SymbolBars, after: int, predicate) -> int:
    for i in range(after + 1, len(bars)):
        if predicate(bars.bar(i)):
            return i
    raise AssertionError("no bar in the catalog satisfies the test's condition")


@pytest.fixture
def book(alpaca_market: CatalogMarket) -> Book:
    return Book(alpaca_market, start_ns=OPEN_NS)


@pytest.fixture
def s000(alpaca_market: CatalogMarket) -> SymbolBars:
    return alpaca_market.bars("S000")


def events(updates) -> list[str]:
    return [u.event for u in updates]


def test_market_order_at_the_open_fills_at_the_first_bar_close(book: Book, s000: SymbolBars):
    order, accepted, updates = book.submit(spec())
    assert accepted["status"] == "new" and events(updates) == ["new"]
    updates = book.advance(at(5))
    first = s000.bar(row_at(s000, at(1)))
    assert events(updates) == ["fill"]
    fill = updates[0].data
    assert (
        fill["price"] == str(first.close) and fill["qty"] == "10" and fill["position_qty"] == "10"
    )
    assert fill["timestamp"] == "2024-12-27T14:31:00.000000Z"
    assert order.status == "filled" and order.avg_price == first.close
    assert book.cash == Decimal(100_000) - 10 * first.close


def test_market_order_mid_session_fills_at_the_last_close_on_arrival(book, s000):
    book.advance(at(30))
    _, accepted, updates = book.submit(spec(side="sell", qty=7))
    last = s000.bar(row_at(s000, at(30)))
    assert accepted["status"] == "new" and accepted["filled_qty"] == "0"  # what POST answers
    assert events(updates) == ["new", "fill"]
    assert updates[1].data["price"] == str(last.close)
    assert updates[1].data["position_qty"] == "-7"
    assert book.positions["S000"].qty == -7


def test_resting_limit_fills_at_its_limit_on_the_first_bar_trading_through(book, s000):
    book.advance(at(10))
    now = row_at(s000, at(10))
    limit = min(s000.bar(i).low for i in range(now + 1, now + 30))
    assert limit < s000.bar(now).close  # not marketable on arrival
    order, _, updates = book.submit(spec(type="limit", limit_price=limit, time_in_force="gtc"))
    assert events(updates) == ["new"]
    fill_row = first_row(s000, now, lambda b: b.low <= limit)
    book.advance(int(s000.close_ns[fill_row]) - 1)
    assert order.status == "new"
    updates = book.advance(int(s000.close_ns[fill_row]))
    assert events(updates) == ["fill"]
    assert updates[0].data["price"] == str(limit)
    assert order.filled_ns == int(s000.close_ns[fill_row])


def test_marketable_limit_fills_at_the_last_close(book, s000):
    book.advance(at(10))
    last = s000.bar(row_at(s000, at(10)))
    _, _, updates = book.submit(spec(type="limit", limit_price=last.close + 5))
    assert events(updates) == ["new", "fill"]
    assert updates[1].data["price"] == str(last.close)


def test_stop_triggers_on_a_later_bar_and_fills_at_the_stop(book, s000):
    book.advance(at(10))
    now = row_at(s000, at(10))
    stop = min(s000.bar(i).low for i in range(now + 1, now + 30))
    order, _, updates = book.submit(spec(side="sell", type="stop", stop_price=stop))
    assert events(updates) == ["new"]
    fill_row = first_row(s000, now, lambda b: b.low <= stop)
    updates = book.advance(at(60))
    assert events(updates) == ["fill"]
    assert updates[0].data["price"] == str(stop)
    assert order.filled_ns == int(s000.close_ns[fill_row])


def test_stop_already_crossed_on_arrival_fills_at_the_last_close(book, s000):
    book.advance(at(10))
    last = s000.bar(row_at(s000, at(10)))
    _, _, updates = book.submit(spec(type="stop", stop_price=last.close - 1))
    assert events(updates) == ["new", "fill"]
    assert updates[1].data["price"] == str(last.close)


def test_stop_limit_triggers_then_fills_at_its_limit(book, s000):
    book.advance(at(10))
    now = row_at(s000, at(10))
    high = max(s000.bar(i).high for i in range(now + 1, now + 30))
    assert high > s000.bar(now).close
    order, _, _ = book.submit(
        spec(type="stop_limit", stop_price=high, limit_price=high, time_in_force="gtc")
    )
    trigger = first_row(s000, now, lambda b: b.high >= high)
    fill_row = first_row(s000, trigger - 1, lambda b: b.low <= high)
    updates = book.advance(at(120))
    assert events(updates) == ["fill"]
    assert updates[0].data["price"] == str(high)
    assert order.triggered and order.filled_ns == int(s000.close_ns[fill_row])


def test_bracket_legs_wake_when_the_entry_fills_and_cancel_each_other(book, s000):
    book.advance(at(10))
    now = row_at(s000, at(10))
    last = s000.bar(now).close
    tp = max(s000.bar(i).high for i in range(now + 2, now + 60))
    sl = Decimal("1.00")
    order, accepted, updates = book.submit(
        spec(order_class="bracket", take_profit_limit=tp, stop_loss_stop=sl, time_in_force="gtc")
    )
    assert [leg["status"] for leg in accepted["legs"]] == ["held", "held"]
    take_profit, stop_loss = order.legs
    assert events(updates) == ["new", "fill", "new", "new"]  # entry fills on arrival at `last`
    assert updates[1].data["price"] == str(last)
    assert [u.order_id for u in updates[2:]] == [take_profit.id, stop_loss.id]
    assert take_profit.status == stop_loss.status == "new"
    tp_row = first_row(s000, now, lambda b: b.high >= tp)
    updates = book.advance(at(120))
    assert events(updates) == ["fill", "canceled"]
    assert updates[0].order_id == take_profit.id and updates[0].data["price"] == str(tp)
    assert updates[0].data["position_qty"] == "0"
    assert updates[1].order_id == stop_loss.id
    assert take_profit.filled_ns == int(s000.close_ns[tp_row])
    assert book.cash == Decimal(100_000) + 10 * (tp - last)


def test_cancelling_a_bracket_entry_cancels_its_held_legs(book):
    order, _, _ = book.submit(
        spec(
            type="limit",
            limit_price=Decimal("1.00"),
            order_class="bracket",
            take_profit_limit=Decimal("2.00"),
            stop_loss_stop=Decimal("0.50"),
        )
    )
    with pytest.raises(BrokerError) as held:
        book.cancel(order.legs[0].id)
    assert held.value.status == 422
    updates = book.cancel(order.id)
    assert events(updates) == ["canceled", "canceled", "canceled"]
    assert {o.status for o in (order, *order.legs)} == {"canceled"}


def test_day_orders_expire_at_the_session_close_and_gtc_orders_stay(book):
    day, _, _ = book.submit(spec(type="limit", limit_price=Decimal("1.00")))
    gtc, _, _ = book.submit(spec(type="limit", limit_price=Decimal("1.00"), time_in_force="gtc"))
    assert book.advance(CLOSE_NS - 1) == []
    updates = book.advance(CLOSE_NS + 5 * MINUTE)
    assert events(updates) == ["expired"] and updates[0].order_id == day.id
    assert updates[0].data["timestamp"] == "2024-12-27T21:00:00.000000Z"
    assert day.status == "expired" and gtc.status == "new"


def test_participation_caps_each_bar_and_gives_partial_fills(alpaca_market, s000):
    book = Book(alpaca_market, start_ns=OPEN_NS, participation=0.001)
    caps = [max(1, int(0.001 * s000.bar(i).volume)) for i in range(3)]
    qty = sum(caps[:2]) + 1
    order, _, _ = book.submit(spec(qty=qty))
    updates = book.advance(at(3))
    assert events(updates) == ["partial_fill", "partial_fill", "fill"]
    assert [u.data["qty"] for u in updates] == [str(caps[0]), str(caps[1]), "1"]
    assert [u.data["price"] for u in updates] == [str(s000.bar(i).close) for i in range(3)]
    expected_avg = sum(q * s000.bar(i).close for i, q in enumerate([caps[0], caps[1], 1])) / qty
    assert order.avg_price == expected_avg


def test_ioc_cancels_what_did_not_fill_and_fok_fills_all_or_nothing(alpaca_market, s000):
    book = Book(alpaca_market, start_ns=at(10), participation=0.001)
    cap = max(1, int(0.001 * s000.bar(row_at(s000, at(10))).volume))
    ioc, _, updates = book.submit(spec(qty=cap + 5, time_in_force="ioc"))
    assert events(updates) == ["new", "partial_fill", "canceled"]
    assert ioc.filled_qty == cap and ioc.status == "canceled"
    fok, _, updates = book.submit(spec(qty=cap + 5, time_in_force="fok", symbol="S001"))
    assert events(updates) == ["new", "canceled"] and fok.filled_qty == 0


def test_positions_net_with_exact_average_prices(book):
    book.advance(at(1))
    book.submit(spec(qty=3))
    book.advance(at(2))
    book.submit(spec(qty=4))
    p1, p2 = (o.avg_price for o in book.orders.values())
    position = book.positions["S000"]
    assert position.qty == 7
    assert position.avg_entry_price == (3 * p1 + 4 * p2) / 7
    book.advance(at(3))
    book.submit(spec(qty=10, side="sell"))  # through zero: short 3 at the new price
    p3 = list(book.orders.values())[-1].avg_price
    assert position.qty == -3 and position.avg_entry_price == p3


def test_insufficient_buying_power_and_duplicate_client_order_id(book):
    with pytest.raises(BrokerError) as poor:
        book.submit(spec(qty=10_000))
    assert (poor.value.status, poor.value.code) == (403, 40310000)
    book.submit(spec(client_order_id="same"))
    with pytest.raises(BrokerError) as duplicate:
        book.submit(spec(client_order_id="same"))
    assert (duplicate.value.status, duplicate.value.code) == (422, 40010001)


def test_replace_creates_a_new_order_and_retires_the_old(book):
    old, _, _ = book.submit(spec(type="limit", limit_price=Decimal("1.00"), client_order_id="a"))
    new, accepted, updates = book.replace(old.id, ReplaceSpec(qty=5, limit_price=Decimal("2.00")))
    assert events(updates) == ["replaced", "new"]
    assert old.status == "replaced" and old.replaced_by == new.id and new.replaces == old.id
    assert accepted["qty"] == "5" and accepted["limit_price"] == "2.00"
    assert new.client_order_id != "a"
    with pytest.raises(BrokerError) as closed:
        book.replace(old.id, ReplaceSpec(qty=3))
    assert closed.value.status == 422


def test_reject_accepts_then_rejects(book):
    order, accepted, updates = book.submit(spec(), reject=lambda: True)
    assert accepted["status"] == "accepted"
    assert events(updates) == ["rejected"] and order.status == "rejected"
    assert book.advance(at(5)) == []


def test_oco_exits_work_at_once_and_stop_loss_goes_first(book, s000):
    book.advance(at(10))
    book.submit(spec(qty=10))  # long 10 at the last close
    now = row_at(s000, at(10))
    low = min(s000.bar(i).low for i in range(now + 1, now + 30))
    order, accepted, updates = book.submit(
        spec(
            side="sell",
            type="limit",
            limit_price=Decimal("10000.00"),  # intake copies take_profit.limit_price here
            order_class="oco",
            take_profit_limit=Decimal("10000.00"),
            stop_loss_stop=low,
            time_in_force="gtc",
        )
    )
    stop_loss = order.legs[0]
    assert accepted["limit_price"] == "10000.00" and accepted["legs"][0]["status"] == "new"
    assert events(updates) == ["new", "new"]
    updates = book.advance(at(60))
    assert events(updates) == ["fill", "canceled"]
    assert [u.order_id for u in updates] == [stop_loss.id, order.id]
    assert updates[0].data["price"] == str(low) and book.positions["S000"].qty == 0


def test_oto_entry_wakes_its_single_leg(book):
    book.advance(at(10))
    order, _, updates = book.submit(
        spec(order_class="oto", stop_loss_stop=Decimal("1.00"), time_in_force="gtc")
    )
    [leg] = order.legs
    assert events(updates) == ["new", "fill", "new"]
    assert (leg.type, leg.side, leg.status, leg.oco) == ("stop", "sell", "new", None)


def test_replacing_a_bracket_leg_keeps_the_oco_link(book, s000):
    book.advance(at(10))
    order, _, _ = book.submit(
        spec(
            order_class="bracket",
            take_profit_limit=Decimal("10000.00"),
            stop_loss_stop=Decimal("1.00"),
            time_in_force="gtc",
        )
    )
    take_profit, stop_loss = order.legs
    now = row_at(s000, at(10))
    low = min(s000.bar(i).low for i in range(now + 1, now + 30))
    new_stop, _, updates = book.replace(stop_loss.id, ReplaceSpec(stop_price=low))
    assert events(updates) == ["replaced", "new"]
    assert order.legs == [take_profit, new_stop] and new_stop.parent is order
    updates = book.advance(at(60))
    assert events(updates) == ["fill", "canceled"]
    assert [u.order_id for u in updates] == [new_stop.id, take_profit.id]


def test_partial_leg_fill_shrinks_the_other_leg(alpaca_market, s000):
    book = Book(alpaca_market, start_ns=at(10), participation=0.0001)
    now = row_at(s000, at(10))
    caps = [max(1, int(0.0001 * s000.bar(i).volume)) for i in range(now, now + 60)]
    qty = 3 * max(caps)  # more than any bar allows: every fill below is partial at first
    order, _, _ = book.submit(  # a short entry: S000 falls after 14:40 in this catalog
        spec(
            qty=qty,
            side="sell",
            order_class="bracket",
            take_profit_limit=s000.bar(now).close - Decimal("0.01"),
            stop_loss_stop=Decimal("10000.00"),
            time_in_force="gtc",
        )
    )
    take_profit, stop_loss = order.legs
    minute = 10
    while take_profit.filled_qty == 0:
        minute += 1
        assert minute < 70, "the take-profit never traded"
        book.advance(at(minute))
    assert order.status == "filled" and take_profit.status == "partially_filled"
    assert stop_loss.qty == qty - take_profit.filled_qty and stop_loss.status == "new"
    assert book.positions["S000"].qty == -stop_loss.qty


def test_expiring_a_partly_filled_entry_cancels_its_held_legs(alpaca_market, s000):
    book = Book(alpaca_market, start_ns=CLOSE_NS - 2 * MINUTE, participation=0.0001)
    order, _, _ = book.submit(
        spec(
            qty=100,
            order_class="bracket",
            take_profit_limit=Decimal("10000.00"),
            stop_loss_stop=Decimal("1.00"),
        )
    )
    updates = book.advance(CLOSE_NS)
    assert events(updates)[-3:] == ["expired", "canceled", "canceled"]
    assert order.status == "expired" and 0 < order.filled_qty < order.qty
    assert [leg.status for leg in order.legs] == ["canceled", "canceled"]


def test_shorts_need_buying_power_and_closing_does_not(book):
    book.advance(at(10))
    with pytest.raises(BrokerError) as poor:
        book.submit(spec(side="sell", qty=2_000))
    assert poor.value.status == 403
    book.submit(spec(qty=200))
    _, accepted, _ = book.submit(spec(side="sell", qty=200))  # closes: no buying power needed
    assert accepted["position_intent"] == "sell_to_close"
    assert book.positions["S000"].qty == 0
    assert book.account().buying_power == 2 * book.cash


def test_close_position_by_percentage(book):
    book.advance(at(10))
    book.submit(spec(qty=10))
    order, _, updates = book.close_position("S000", percentage=Decimal(25))
    assert (order.side, order.qty, events(updates)) == ("sell", 2, ["new", "fill"])
    with pytest.raises(BrokerError) as missing:
        book.close_position("S001")
    assert missing.value.status == 404
