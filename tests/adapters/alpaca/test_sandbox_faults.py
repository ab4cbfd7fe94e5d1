"""Scripted faults as the SDK meets them: 429 retried, 5xx raised, stalls, lost fill events."""

import json
import time
import urllib.error
import urllib.request

import pandas as pd
import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from adapters.alpaca.sandbox import AlpacaFault, parse_alpaca_fault

OPEN = pd.Timestamp("2024-12-27 14:30", tz="UTC")
MINUTE = pd.Timedelta(minutes=1)
HEADERS = {"APCA-API-KEY-ID": "test-key", "APCA-API-SECRET-KEY": "test-secret"}


def market(client_order_id: str) -> MarketOrderRequest:
    return MarketOrderRequest(
        symbol="S000",
        qty=1,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.DAY,
        client_order_id=client_order_id,
    )


def get(url: str, timeout: float) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=HEADERS)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_rate_limit_once_is_retried_by_alpaca_py(alpaca_sandbox, trading_client):
    alpaca_sandbox.add_fault(AlpacaFault(kind="rate_limit", times=1, path="/v2/orders"))
    status, _ = get(alpaca_sandbox.base_url + "/v2/account", 5)  # other paths are spared
    assert status == 200
    started = time.monotonic()
    order = trading_client.submit_order(market("retry-1"))  # alpaca-py sleeps 3 s, then retries
    assert time.monotonic() - started >= 3.0
    assert order.client_order_id == "retry-1"
    assert [(r.client_order_id, r.status_code) for r in alpaca_sandbox.order_requests] == [
        ("retry-1", 429),
        ("retry-1", 200),
    ]
    assert len(alpaca_sandbox.orders()) == 1


def test_rate_limit_answer_carries_retry_after(alpaca_sandbox):
    alpaca_sandbox.add_fault(AlpacaFault(kind="rate_limit", retry_after_secs=2.5))
    request = urllib.request.Request(alpaca_sandbox.base_url + "/v2/clock", headers=HEADERS)
    with pytest.raises(urllib.error.HTTPError) as limited:
        urllib.request.urlopen(request, timeout=5)
    assert limited.value.code == 429 and limited.value.headers["Retry-After"] == "3"
    assert json.loads(limited.value.read())["code"] == 42910000


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_reach_the_caller(alpaca_sandbox, trading_client, status):
    alpaca_sandbox.add_fault(AlpacaFault(kind="server_error", status=status))
    with pytest.raises(APIError) as failed:
        trading_client.get_account()
    assert failed.value.status_code == status
    assert trading_client.get_account().status == "ACTIVE"  # used up: the next call succeeds


def test_stall_holds_the_answer_for_stall_secs(alpaca_sandbox):
    url = alpaca_sandbox.base_url + "/v2/clock"
    alpaca_sandbox.add_fault(AlpacaFault(kind="stall", stall_secs=30))
    with pytest.raises(TimeoutError):
        get(url, timeout=0.5)  # alpaca-py has no timeout: it would hang here
    alpaca_sandbox.add_fault(AlpacaFault(kind="stall", stall_secs=1.0))
    started = time.monotonic()
    status, clock = get(url, timeout=5)
    assert status == 200 and clock["is_open"] is True
    assert time.monotonic() - started >= 1.0
    assert alpaca_sandbox.pending_faults == []


def test_drop_before_fill_loses_the_event_but_not_the_fill(
    alpaca_sandbox, trading_client, trade_stream
):
    alpaca_sandbox.advance_to(OPEN + 5 * MINUTE)
    alpaca_sandbox.add_fault(AlpacaFault(kind="drop_before_fill"))
    order = trading_client.submit_order(market("lost-fill"))
    oid = str(order.id)
    trade_stream.wait_for_event("new", oid)
    alpaca_sandbox.wait_for_listeners(1, timeout=10)  # alpaca-py reconnects by itself
    reconciled = trading_client.get_order_by_id(order.id)
    assert reconciled.status == OrderStatus.FILLED and reconciled.filled_qty == "1"
    assert "fill" not in trade_stream.events(oid)
    assert [e.event for e in alpaca_sandbox.events_sent] == ["new"]
    fills = trading_client.get("/account/activities/FILL")
    assert [(a["order_id"], a["type"]) for a in fills] == [(oid, "fill")]


def test_drop_stream_closes_after_the_next_event(alpaca_sandbox, trading_client, trade_stream):
    alpaca_sandbox.add_fault(AlpacaFault(kind="drop_stream", clean=True))
    first = trading_client.submit_order(market("before-drop"))
    trade_stream.wait_for_event("new", str(first.id))  # sent, then the connection closed
    alpaca_sandbox.wait_for_listeners(1, timeout=10)
    second = trading_client.submit_order(market("after-drop"))
    trade_stream.wait_for_event("new", str(second.id))
    connections = [e.connection for e in alpaca_sandbox.events_sent]
    assert connections[0] < connections[1]  # delivered over a new connection


def test_drop_stream_now(alpaca_sandbox, trade_stream):
    assert alpaca_sandbox.drop_stream() == 1
    alpaca_sandbox.wait_for_listeners(1, timeout=10)


def test_parse_alpaca_fault():
    assert parse_alpaca_fault("rest:rate_limit:times=2") == AlpacaFault(kind="rate_limit", times=2)
    assert parse_alpaca_fault("server_error:status=504,path=/v2/orders") == AlpacaFault(
        kind="server_error", status=504, path="/v2/orders"
    )
    assert parse_alpaca_fault("stream:drop_before_fill:clean=true") == AlpacaFault(
        kind="drop_before_fill", clean=True
    )
    assert parse_alpaca_fault("order:reject_next").target == "order"
    assert parse_alpaca_fault("rest:stall:stall_secs=2.5").stall_secs == 2.5
    for bad, part in [
        ("rest:explode", "explode"),
        ("stream:rate_limit", "rate_limit"),
        ("rest:rate_limit:times=two", "times"),
        ("rest:rate_limit:color=red", "color"),
        ("rest:server_error:status=404", "5xx"),
        ("stream:drop_stream:path=/v2/orders", "path"),
        ("", "kind"),
    ]:
        with pytest.raises(ValueError, match=part):
            parse_alpaca_fault(bad)
