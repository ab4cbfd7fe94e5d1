"""trade_updates as alpaca-py's TradingStream receives them, one test per event type."""

import json
from decimal import Decimal

import pandas as pd
import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest, ReplaceOrderRequest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from adapters.alpaca.sandbox import AlpacaFault, AlpacaSandbox
from tests.adapters.alpaca.conftest import StreamCollector

OPEN = pd.Timestamp("2024-12-27 14:30", tz="UTC")
CLOSE = pd.Timestamp("2024-12-27 21:00", tz="UTC")
MINUTE = pd.Timedelta(minutes=1)


def market(qty: int = 10, **kw) -> MarketOrderRequest:
    return MarketOrderRequest(
        symbol="S000", qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, **kw
    )


def resting(time_in_force: TimeInForce = TimeInForce.DAY) -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol="S000", qty=1, side=OrderSide.BUY, time_in_force=time_in_force, limit_price=1.0
    )


def test_new_then_fill(alpaca_sandbox, trading_client, trade_stream, alpaca_market):
    order = trading_client.submit_order(market(client_order_id="s-1"))
    oid = str(order.id)
    trade_stream.wait_for_event("new", oid)
    alpaca_sandbox.advance_to(OPEN + 2 * MINUTE)
    fill = trade_stream.wait_for_event("fill", oid)
    close = alpaca_market.bars("S000").bar(0).close
    assert (fill["price"], fill["qty"], fill["position_qty"]) == (str(close), "10", "10")
    assert fill["order"]["status"] == "filled" and fill["order"]["filled_qty"] == "10"
    assert fill["order"]["filled_avg_price"] == str(close)
    assert fill["timestamp"] == "2024-12-27T14:31:00.000000Z"
    parsed = TradeUpdate(**fill)  # what TradingStream builds without raw_data
    assert parsed.event == "fill" and Decimal(str(parsed.price)) == close
    assert trade_stream.events(oid) == ["new", "fill"]
    sent = [(e.event, e.order_id) for e in alpaca_sandbox.events_sent]
    assert sent == [("new", oid), ("fill", oid)]
    ids = {u["execution_id"] for u in trade_stream.updates}
    assert len(ids) == 2


def test_partial_fills_with_participation(alpaca_market):
    bars = alpaca_market.bars("S000")
    caps = [max(1, int(0.001 * bars.bar(i).volume)) for i in range(2)]
    with AlpacaSandbox(alpaca_market, participation=0.001) as sandbox:
        stream = StreamCollector(sandbox.stream_url)
        stream.start(sandbox)
        try:
            client = TradingClient("test-key", "test-secret", url_override=sandbox.base_url)
            order = client.submit_order(market(qty=caps[0] + caps[1]))
            sandbox.advance_to(OPEN + 3 * MINUTE)
            stream.wait_for_event("fill", str(order.id))
        finally:
            stream.stop(sandbox)
    updates = [u for u in stream.updates if u["event"] != "new"]
    assert [u["event"] for u in updates] == ["partial_fill", "fill"]
    assert [u["qty"] for u in updates] == [str(c) for c in caps]
    assert updates[0]["order"]["status"] == "partially_filled"
    assert updates[0]["order"]["filled_qty"] == str(caps[0])


def test_canceled_replaced_and_expired(alpaca_sandbox, trading_client, trade_stream):
    to_cancel = trading_client.submit_order(resting())
    trading_client.cancel_order_by_id(to_cancel.id)
    canceled = trade_stream.wait_for_event("canceled", str(to_cancel.id))
    assert canceled["order"]["canceled_at"] == "2024-12-27T14:30:00.000000Z"

    old = trading_client.submit_order(resting())
    new = trading_client.replace_order_by_id(old.id, ReplaceOrderRequest(limit_price=1.25))
    replaced = trade_stream.wait_for_event("replaced", str(old.id))
    assert replaced["order"]["replaced_by"] == str(new.id)
    assert trade_stream.wait_for_event("new", str(new.id))["order"]["replaces"] == str(old.id)

    alpaca_sandbox.advance_to(CLOSE + MINUTE)
    expired = trade_stream.wait_for_event("expired", str(new.id))
    assert expired["order"]["expired_at"] == "2024-12-27T21:00:00.000000Z"
    assert trade_stream.events() == ["new", "canceled", "new", "replaced", "new", "expired"]


def test_rejected(alpaca_sandbox, trading_client, trade_stream):
    alpaca_sandbox.add_fault(AlpacaFault(kind="reject_next"))
    order = trading_client.submit_order(market())
    assert order.status == "accepted"
    rejected = trade_stream.wait_for_event("rejected", str(order.id))
    assert rejected["order"]["status"] == "rejected" and rejected["order"]["failed_at"]
    accepted_next = trading_client.submit_order(market())
    trade_stream.wait_for_event("new", str(accepted_next.id))
    assert trade_stream.events(str(order.id)) == ["rejected"]


def test_stream_protocol_and_bad_credentials(alpaca_sandbox):
    with connect(alpaca_sandbox.stream_url) as ws:
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        assert json.loads(ws.recv(5))["data"]["status"] == "unauthorized"
        auth = {
            "action": "authenticate",
            "data": {"key_id": "test-key", "secret_key": "test-secret"},
        }
        ws.send(json.dumps(auth))
        reply = ws.recv(5)
        assert isinstance(reply, bytes)  # binary frames, as Alpaca's paper stream sends
        assert json.loads(reply) == {
            "stream": "authorization",
            "data": {"action": "authenticate", "status": "authorized"},
        }
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates", "x"]}}))
        assert json.loads(ws.recv(5)) == {
            "stream": "listening",
            "data": {"streams": ["trade_updates"]},
        }
        alpaca_sandbox.wait_for_listeners(1)
    with connect(alpaca_sandbox.stream_url) as ws:
        bad = {"action": "authenticate", "data": {"key_id": "test-key", "secret_key": "nope"}}
        ws.send(json.dumps(bad))
        assert json.loads(ws.recv(5)) == {
            "stream": "authorization",
            "data": {"action": "authenticate", "status": "unauthorized"},
        }
        with pytest.raises(ConnectionClosed, match="1008"):
            ws.recv(5)
