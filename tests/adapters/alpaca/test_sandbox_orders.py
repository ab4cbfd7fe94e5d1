"""Orders through alpaca-py's TradingClient against the sandbox, filled on catalog bars.

Raw HTTP (urllib) is used only where alpaca-py hides the status code or body."""

import json
import urllib.request
from decimal import Decimal

import pandas as pd
import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetOrderByIdRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
)

from adapters.alpaca.sandbox import AlpacaSandbox, CatalogMarket

OPEN = pd.Timestamp("2024-12-27 14:30", tz="UTC")
MINUTE = pd.Timedelta(minutes=1)


def market(symbol: str = "S000", qty: float = 10, side: OrderSide = OrderSide.BUY, **kw):
    return MarketOrderRequest(
        symbol=symbol, qty=qty, side=side, time_in_force=TimeInForce.DAY, **kw
    )


def close_at(alpaca_market: CatalogMarket, symbol: str, ts: pd.Timestamp) -> Decimal:
    bars = alpaca_market.bars(symbol)
    i = bars.last_index_at(int(ts.value))
    assert i is not None and int(bars.close_ns[i]) == ts.value
    return bars.bar(i).close


def raw(sandbox: AlpacaSandbox, method: str, path: str, body: dict | None = None):
    """(status, parsed JSON or None) of a request alpaca-py would hide the status of."""
    request = urllib.request.Request(
        sandbox.base_url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"APCA-API-KEY-ID": "test-key", "APCA-API-SECRET-KEY": "test-secret"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read().decode())


def test_market_order_fills_at_the_next_bar_close(alpaca_sandbox, trading_client, alpaca_market):
    order = trading_client.submit_order(market(client_order_id="m-1"))
    assert order.status == OrderStatus.NEW and order.client_order_id == "m-1"
    assert order.created_at == OPEN.to_pydatetime()
    alpaca_sandbox.advance_to(OPEN + 5 * MINUTE)
    filled = trading_client.get_order_by_id(order.id)
    assert filled.status == OrderStatus.FILLED
    assert filled.filled_qty == "10"
    assert Decimal(filled.filled_avg_price) == close_at(alpaca_market, "S000", OPEN + MINUTE)
    assert trading_client.get_order_by_client_id("m-1").id == order.id
    position = trading_client.get_open_position("S000")
    assert position.qty == "10"
    assert Decimal(position.avg_entry_price) == close_at(alpaca_market, "S000", OPEN + MINUTE)


def test_limit_stop_and_stop_limit_orders_fill_on_later_bars(
    alpaca_sandbox, trading_client, alpaca_market
):
    now = OPEN + 10 * MINUTE
    alpaca_sandbox.advance_to(now)
    bars = alpaca_market.bars("S001")
    i = bars.last_index_at(int(now.value))
    window = [bars.bar(k) for k in range(i + 1, i + 40)]
    low = min(b.low for b in window)
    high = max(b.high for b in window)
    assert low < bars.bar(i).close < high
    limit = trading_client.submit_order(
        LimitOrderRequest(
            symbol="S001",
            qty=3,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            limit_price=float(low),
        )
    )
    stop = trading_client.submit_order(
        StopOrderRequest(
            symbol="S001",
            qty=2,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            stop_price=float(high),
        )
    )
    stop_limit = trading_client.submit_order(
        StopLimitOrderRequest(
            symbol="S001",
            qty=1,
            side=OrderSide.SELL,
            time_in_force=TimeInForce.GTC,
            stop_price=float(low),
            limit_price=float(low),
        )
    )
    assert {o.status for o in (limit, stop, stop_limit)} == {OrderStatus.NEW}
    alpaca_sandbox.advance_to(now + 40 * MINUTE)
    done = {o.id: o for o in trading_client.get_orders(GetOrdersRequest(status="closed"))}
    assert Decimal(done[limit.id].filled_avg_price) == low
    assert Decimal(done[stop.id].filled_avg_price) == high
    assert Decimal(done[stop_limit.id].filled_avg_price) == low
    assert trading_client.get_open_position("S001").qty == "4"


def test_bracket_legs_come_back_held_then_protect_the_position(
    alpaca_sandbox, trading_client, alpaca_market
):
    alpaca_sandbox.advance_to(OPEN + 10 * MINUTE)
    last = close_at(alpaca_market, "S000", OPEN + 10 * MINUTE)
    order = trading_client.submit_order(
        MarketOrderRequest(
            symbol="S000",
            qty=5,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=float(last + 100)),
            stop_loss=StopLossRequest(stop_price=float(last - 100)),
            client_order_id="bracket-1",
        )
    )
    assert order.order_class == OrderClass.BRACKET
    assert [leg.status for leg in order.legs] == [OrderStatus.HELD, OrderStatus.HELD]
    assert [leg.type for leg in order.legs] == ["limit", "stop"]
    nested = trading_client.get_order_by_id(order.id, GetOrderByIdRequest(nested=True))
    assert nested.status == OrderStatus.FILLED
    assert [leg.status for leg in nested.legs] == [OrderStatus.NEW, OrderStatus.NEW]
    open_orders = trading_client.get_orders(GetOrdersRequest(status="open", nested=True))
    assert open_orders == []  # the filled parent is closed; its legs are nested in it
    flat = trading_client.get_orders(GetOrdersRequest(status="open"))
    assert {o.id for o in flat} == {leg.id for leg in order.legs}
    trading_client.cancel_order_by_id(order.legs[1].id)  # cancelling one leg cancels both
    legs = [trading_client.get_order_by_id(leg.id) for leg in order.legs]
    assert [leg.status for leg in legs] == [OrderStatus.CANCELED, OrderStatus.CANCELED]


def test_rejections_reach_alpaca_py_as_api_errors(alpaca_sandbox, trading_client):
    with pytest.raises(APIError) as poor:
        trading_client.submit_order(market(qty=100_000))
    assert (poor.value.status_code, poor.value.code) == (403, 40310000)
    assert poor.value.message == "insufficient buying power"
    trading_client.submit_order(market(client_order_id="dup"))
    with pytest.raises(APIError) as duplicate:
        trading_client.submit_order(market(client_order_id="dup"))
    assert (duplicate.value.status_code, duplicate.value.code) == (422, 40010001)
    assert duplicate.value.message == "client_order_id must be unique"
    with pytest.raises(APIError) as fractional:
        trading_client.submit_order(market(qty=1.5))
    assert fractional.value.status_code == 422 and "whole number" in fractional.value.message
    with pytest.raises(APIError) as unknown:
        trading_client.get_order_by_id("6b6f0b5e-9c1e-4f55-a3a1-7a2b27c1c000")
    assert (unknown.value.status_code, unknown.value.code) == (404, 40410000)


def test_invalid_combinations_name_the_field(alpaca_sandbox):
    base = {"symbol": "S000", "qty": 1, "side": "buy", "time_in_force": "day"}
    cases = {
        "limit_price": base | {"type": "limit"},
        "stop_price": base | {"type": "stop_limit", "limit_price": 1},
        "time_in_force": base | {"type": "market", "time_in_force": "opg"},
        "take_profit.limit_price": base | {"type": "market", "order_class": "bracket"},
        "sub-penny": base | {"type": "limit", "limit_price": 10.123},
        "asset": base | {"type": "market", "symbol": "NOPE"},
    }
    for field, body in cases.items():
        status, answer = raw(alpaca_sandbox, "POST", "/v2/orders", body)
        assert status == 422, field
        assert field in answer["message"], answer


def test_replace_cancel_and_cancel_all(alpaca_sandbox, trading_client):
    first = trading_client.submit_order(
        LimitOrderRequest(
            symbol="S000",
            qty=2,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            limit_price=1.0,
            client_order_id="r-1",
        )
    )
    replacement = trading_client.replace_order_by_id(
        first.id, ReplaceOrderRequest(qty=4, limit_price=1.5, client_order_id="r-2")
    )
    assert replacement.replaces == first.id and replacement.client_order_id == "r-2"
    assert replacement.qty == "4" and replacement.limit_price == "1.50"
    old = trading_client.get_order_by_id(first.id)
    assert old.status == OrderStatus.REPLACED and old.replaced_by == replacement.id
    second = trading_client.submit_order(
        LimitOrderRequest(
            symbol="S001",
            qty=1,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            limit_price=1.0,
        )
    )
    third = trading_client.submit_order(
        LimitOrderRequest(
            symbol="S002",
            qty=1,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            limit_price=1.0,
        )
    )
    trading_client.cancel_order_by_id(third.id)
    status, answer = raw(alpaca_sandbox, "DELETE", f"/v2/orders/{third.id}")
    assert status == 422 and answer["code"] == 42210000
    status, answer = raw(alpaca_sandbox, "DELETE", "/v2/orders")
    assert status == 207
    assert {(r["id"], r["status"]) for r in answer} == {
        (str(replacement.id), 200),
        (str(second.id), 200),
    }
    assert trading_client.get_orders() == []
    statuses = {o.id: o.status for o in trading_client.get_orders(GetOrdersRequest(status="all"))}
    assert statuses == {
        first.id: OrderStatus.REPLACED,
        replacement.id: OrderStatus.CANCELED,
        second.id: OrderStatus.CANCELED,
        third.id: OrderStatus.CANCELED,
    }
    assert [
        (r.method, r.client_order_id, r.status_code) for r in alpaca_sandbox.order_requests
    ] == [
        ("POST", "r-1", 200),
        ("PATCH", "r-2", 200),
        ("POST", None, 200),  # what the request carried: the broker generated one
        ("POST", None, 200),
        ("DELETE", third.client_order_id, 204),
        ("DELETE", third.client_order_id, 422),
        ("DELETE", None, 207),
    ]


def test_closing_positions_flattens_with_market_orders(
    alpaca_sandbox, trading_client, alpaca_market
):
    alpaca_sandbox.advance_to(OPEN + 5 * MINUTE)
    trading_client.submit_order(market("S000", 10))
    trading_client.submit_order(market("S001", 4, OrderSide.SELL))
    assert alpaca_sandbox.positions() == {
        "S000": (Decimal(10), close_at(alpaca_market, "S000", OPEN + 5 * MINUTE)),
        "S001": (Decimal(-4), close_at(alpaca_market, "S001", OPEN + 5 * MINUTE)),
    }
    alpaca_sandbox.advance_to(OPEN + 6 * MINUTE)
    partial = trading_client.close_position("S000", ClosePositionRequest(qty="4"))
    assert partial.side == OrderSide.SELL and partial.qty == "4"
    responses = trading_client.close_all_positions(cancel_orders=True)
    assert {(r.symbol, r.status) for r in responses} == {("S000", 200), ("S001", 200)}
    assert {r.symbol: r.body.side for r in responses} == {"S000": "sell", "S001": "buy"}
    assert alpaca_sandbox.positions() == {}
    assert trading_client.get_all_positions() == []
    with pytest.raises(APIError) as missing:
        trading_client.close_position("S000")
    assert (missing.value.status_code, missing.value.code) == (404, 40410000)
    expected_cash = (
        Decimal(100_000)
        + 10
        * (
            close_at(alpaca_market, "S000", OPEN + 6 * MINUTE)
            - close_at(alpaca_market, "S000", OPEN + 5 * MINUTE)
        )
        - 4
        * (
            close_at(alpaca_market, "S001", OPEN + 6 * MINUTE)
            - close_at(alpaca_market, "S001", OPEN + 5 * MINUTE)
        )
    )
    assert Decimal(trading_client.get_account().cash) == expected_cash


def test_orders_listing_filters(alpaca_sandbox, trading_client):
    ids = []
    for k, symbol in enumerate(["S000", "S001", "S000"]):
        alpaca_sandbox.advance_to(OPEN + (k + 1) * MINUTE)
        ids.append(trading_client.submit_order(market(symbol, 1)).id)
    everything = trading_client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert [o.id for o in everything] == ids[::-1]  # newest first by default
    ascending = trading_client.get_orders(
        GetOrdersRequest(status=QueryOrderStatus.ALL, direction="asc", limit=2)
    )
    assert [o.id for o in ascending] == ids[:2]
    s000 = trading_client.get_orders(GetOrdersRequest(status="all", symbols=["S000"]))
    assert {o.id for o in s000} == {ids[0], ids[2]}
    after = trading_client.get_orders(
        GetOrdersRequest(status="all", after=(OPEN + 2 * MINUTE).to_pydatetime())
    )
    assert [o.id for o in after] == [ids[2]]


def test_unauthorized_requests(alpaca_sandbox):
    wrong = TradingClient("test-key", "wrong", paper=True, url_override=alpaca_sandbox.base_url)
    with pytest.raises(APIError) as denied:
        wrong.get_account()
    assert denied.value.status_code == 403 and denied.value.code == 40110000
    request = urllib.request.Request(alpaca_sandbox.base_url + "/v2/account")
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(request, timeout=10)
    assert missing.value.code == 401
    assert json.loads(missing.value.read())["message"] == "request is not authorized"
