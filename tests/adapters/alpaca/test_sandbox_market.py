"""Account, clock, calendar, assets and fill activities; simulated time driven from other
threads: ``on_market_time`` (a rehearsal with the Polygon sandbox) and a paced clock."""

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import AssetClass, AssetStatus, OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetAssetsRequest,
    GetCalendarRequest,
    LimitOrderRequest,
    MarketOrderRequest,
)
from websockets.sync.client import connect

from adapters.alpaca.sandbox import AlpacaSandbox, CatalogMarket, first_session_open
from adapters.polygon.sandbox import PolygonSandbox, SimClock
from catalog.store import EmptyCatalogError

OPEN = pd.Timestamp("2024-12-27 14:30", tz="UTC")
CLOSE = pd.Timestamp("2024-12-27 21:00", tz="UTC")
MINUTE = pd.Timedelta(minutes=1)


def market(symbol: str = "S000", qty: int = 10, side: OrderSide = OrderSide.BUY):
    return MarketOrderRequest(symbol=symbol, qty=qty, side=side, time_in_force=TimeInForce.DAY)


def test_account_values_positions_at_the_last_close(alpaca_sandbox, trading_client, alpaca_market):
    account = trading_client.get_account()
    assert (account.status, account.currency, account.multiplier) == ("ACTIVE", "USD", "2")
    assert account.cash == account.equity == "100000.00"
    assert account.buying_power == "200000.00"
    assert account.shorting_enabled and not account.pattern_day_trader
    alpaca_sandbox.advance_to(OPEN + 5 * MINUTE)
    trading_client.submit_order(market("S000", 10))
    trading_client.submit_order(market("S001", 5, OrderSide.SELL))
    alpaca_sandbox.advance_to(OPEN + 9 * MINUTE)
    s000, s001 = alpaca_market.bars("S000"), alpaca_market.bars("S001")
    entry = {s: b.bar(4).close for s, b in (("S000", s000), ("S001", s001))}
    mark = {s: b.bar(8).close for s, b in (("S000", s000), ("S001", s001))}
    cash = Decimal(100_000) - 10 * entry["S000"] + 5 * entry["S001"]
    equity = cash + 10 * mark["S000"] - 5 * mark["S001"]
    account = trading_client.get_account()
    assert Decimal(account.cash) == cash
    assert Decimal(account.equity) == equity
    assert Decimal(account.long_market_value) == 10 * mark["S000"]
    assert Decimal(account.short_market_value) == -5 * mark["S001"]
    gross = 10 * mark["S000"] + 5 * mark["S001"]
    assert Decimal(account.buying_power) == 2 * equity - gross
    short = trading_client.get_open_position("S001")
    assert (short.side, short.qty, short.market_value) == ("short", "-5", str(-5 * mark["S001"]))


def test_last_equity_is_the_equity_at_the_previous_close(alpaca_sandbox, trading_client):
    alpaca_sandbox.advance_to(OPEN + 5 * MINUTE)
    trading_client.submit_order(market("S000", 10))
    alpaca_sandbox.advance_to(CLOSE)
    at_close = trading_client.get_account().equity
    alpaca_sandbox.advance_to(pd.Timestamp("2024-12-30 15:00", tz="UTC"))
    account = trading_client.get_account()
    assert account.last_equity == at_close != account.equity


def test_clock_follows_simulated_time(alpaca_sandbox, trading_client):
    clock = trading_client.get_clock()
    assert clock.is_open and clock.timestamp == OPEN.to_pydatetime()
    assert clock.next_close == CLOSE.to_pydatetime()
    assert clock.next_open == pd.Timestamp("2024-12-30 14:30", tz="UTC").to_pydatetime()
    alpaca_sandbox.advance_to(CLOSE)
    shut = trading_client.get_clock()
    assert not shut.is_open
    assert shut.next_close == pd.Timestamp("2024-12-30 21:00", tz="UTC").to_pydatetime()
    alpaca_sandbox.advance_to(pd.Timestamp("2024-12-28 12:00", tz="UTC"))  # a Saturday
    weekend = trading_client.get_clock()
    assert not weekend.is_open and weekend.next_open.date() == date(2024, 12, 30)


def test_calendar_has_half_days_and_holidays(trading_client):
    days = trading_client.get_calendar(
        GetCalendarRequest(start=date(2024, 12, 23), end=date(2024, 12, 27))
    )
    assert [d.date for d in days] == [date(2024, 12, d) for d in (23, 24, 26, 27)]  # 25th shut
    christmas_eve = days[1]
    assert (christmas_eve.open.hour, christmas_eve.close.hour) == (9, 13)
    assert (days[0].open.strftime("%H:%M"), days[0].close.strftime("%H:%M")) == ("09:30", "16:00")


def test_assets_are_the_catalog_symbols(trading_client):
    assets = trading_client.get_all_assets(
        GetAssetsRequest(status=AssetStatus.ACTIVE, asset_class=AssetClass.US_EQUITY)
    )
    assert [a.symbol for a in assets] == ["S000", "S001", "S002"]
    one = trading_client.get_asset("S001")
    assert (one.exchange, one.tradable, one.shortable, one.fractionable) == (
        "NYSE",
        True,
        True,
        False,
    )
    assert trading_client.get_asset(one.id).symbol == "S001"
    with pytest.raises(APIError) as missing:
        trading_client.get_asset("NOPE")
    assert missing.value.status_code == 404


def test_fill_activities_page_newest_first(alpaca_sandbox, trading_client):
    alpaca_sandbox.advance_to(OPEN + 5 * MINUTE)
    orders = [trading_client.submit_order(market("S000", q)) for q in (1, 2, 3)]
    everything = trading_client.get("/account/activities/FILL")
    assert [a["qty"] for a in everything] == ["3", "2", "1"]
    assert set(everything[0]) == {
        "id", "activity_type", "transaction_time", "type", "price", "qty", "side", "symbol",
        "leaves_qty", "order_id", "cum_qty", "order_status",
    }  # fmt: skip
    assert everything[0]["order_id"] == str(orders[2].id)
    first_page = trading_client.get("/account/activities/FILL", {"page_size": 2})
    rest = trading_client.get(
        "/account/activities", {"activity_types": "FILL", "page_token": first_page[-1]["id"]}
    )
    assert [a["qty"] for a in first_page + rest] == ["3", "2", "1"]
    ascending = trading_client.get("/account/activities/FILL", {"direction": "asc"})
    assert [a["qty"] for a in ascending] == ["1", "2", "3"]
    assert trading_client.get("/account/activities/DIV") == []


def test_on_market_time_from_another_thread(alpaca_sandbox, trading_client, alpaca_market):
    order = trading_client.submit_order(market())
    ts = int((OPEN + 3 * MINUTE).value)
    worker = threading.Thread(target=alpaca_sandbox.on_market_time, args=(ts,))
    worker.start()
    worker.join(10)
    assert alpaca_sandbox.now_ns() == ts and alpaca_sandbox.clock.now_ns() == ts
    filled = trading_client.get_order_by_id(order.id)
    assert Decimal(filled.filled_avg_price) == alpaca_market.bars("S000").bar(0).close
    alpaca_sandbox.on_market_time(ts - 1)  # an earlier instant changes nothing
    assert alpaca_sandbox.now_ns() == ts


def test_rehearsal_fills_at_the_prices_the_feed_showed(alpaca_catalog: Path, alpaca_market):
    """The Polygon sandbox replays 2024-12-30; the broker settles each close before the
    strategy sees that bar, so a market order fills at the close of the bar just seen."""
    start = pd.Timestamp("2024-12-30 14:30", tz="UTC")
    polygon = PolygonSandbox(alpaca_catalog, clock=SimClock.manual(start))
    broker = AlpacaSandbox(alpaca_market, clock=SimClock.manual(start))
    polygon.add_close_listener(broker.on_market_time)
    with polygon, broker:
        client = TradingClient("test-key", "test-secret", url_override=broker.base_url)
        with connect(f"ws://{polygon.ws_feed}/stocks") as feed:
            feed.recv(5)
            feed.send(json.dumps({"action": "auth", "params": "test-key"}))
            feed.recv(5)
            feed.send(json.dumps({"action": "subscribe", "params": "AM.S000"}))
            feed.recv(5)
            polygon.wait_for_subscribers(1)
            polygon.advance_to(start + 2 * MINUTE)
            seen = [json.loads(feed.recv(5))[0] for _ in range(2)]
        assert broker.now_ns() == int((start + 2 * MINUTE).value)
        order = client.submit_order(market())
        filled = client.get_order_by_id(order.id)
        assert filled.status == OrderStatus.FILLED
        assert Decimal(filled.filled_avg_price) == Decimal(str(seen[-1]["c"])).quantize(
            Decimal("0.01")
        )
        bars = alpaca_market.bars("S000")
        now = bars.last_index_at(broker.now_ns())
        limit = min(bars.bar(k).low for k in range(now + 1, now + 30))
        resting = client.submit_order(
            LimitOrderRequest(
                symbol="S000",
                qty=1,
                side=OrderSide.BUY,
                time_in_force=TimeInForce.DAY,
                limit_price=float(limit),
            )
        )
        polygon.advance_to(start + 40 * MINUTE)
        done = client.get_order_by_id(resting.id)
        assert done.status == OrderStatus.FILLED and Decimal(done.filled_avg_price) == limit
        fill_at = next(k for k in range(now + 1, len(bars)) if bars.bar(k).low <= limit)
        assert done.filled_at == pd.Timestamp(int(bars.close_ns[fill_at]), tz="UTC").to_pydatetime()


def test_paced_clock_settles_by_itself(alpaca_market: CatalogMarket):
    with AlpacaSandbox(alpaca_market, clock=SimClock.paced(OPEN, speed=60)) as sandbox:
        client = TradingClient("test-key", "test-secret", url_override=sandbox.base_url)
        order = client.submit_order(market())
        assert order.status == OrderStatus.NEW  # no bar of the session yet
        deadline = time.monotonic() + 5
        while client.get_order_by_id(order.id).status != OrderStatus.FILLED:
            assert time.monotonic() < deadline, "the paced broker never filled the order"
            time.sleep(0.05)
        filled = client.get_order_by_id(order.id)
        assert Decimal(filled.filled_avg_price) == alpaca_market.bars("S000").bar(0).close
        with pytest.raises(RuntimeError, match="manual clock"):
            sandbox.advance_to(OPEN + MINUTE)


def test_default_clock_starts_at_the_first_session_open(alpaca_market: CatalogMarket):
    assert first_session_open(alpaca_market) == OPEN


def test_an_empty_catalog_is_refused(tmp_path: Path):
    with pytest.raises(EmptyCatalogError):
        CatalogMarket(tmp_path)


def test_serve_forever_serves_until_sigint(alpaca_market: CatalogMarket):
    sandbox = AlpacaSandbox(alpaca_market).start()  # the CLI starts first to print the URL
    url = sandbox.base_url + "/v2/clock"
    request = urllib.request.Request(
        url, headers={"APCA-API-KEY-ID": "test-key", "APCA-API-SECRET-KEY": "test-secret"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
    interrupt = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    interrupt.start()
    sandbox.serve_forever()  # returns once SIGINT arrived, the server stopped
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(request, timeout=2)
