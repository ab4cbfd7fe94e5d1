"""LiveView: journal rows in, what the Control and Trading pages show out; and the hub's
coalescing (at most ~10 messages a second per topic, the newest state always delivered)."""

import asyncio
import json
import math
from datetime import date

from live.journal.rows import (
    AccountRow,
    BarRow,
    FillRow,
    ModelVersion,
    OrderEventRow,
    OrderRow,
    PositionRow,
    Row,
    RunEvent,
    SignalRow,
)
from live.panel.events import EventHub
from live.panel.live_view import TOP_SIGNALS, LiveView, PanelSink
from strategies.risk import RiskRules

T0 = 1_735_300_000_000_000_000
MINUTE = 60_000_000_000
_seq = iter(range(1, 10_000))


def row(row_type, **fields):
    return row_type(run_id="run1", seq=next(_seq), **fields)


def order(cid: str, type_: str, side: str, price=None, trigger=None, tags="") -> OrderRow:
    return row(OrderRow, ts_init=T0, client_order_id=cid, strategy_id="S-1", instrument_id="S000.ALPACA",
               side=side, quantity="10", type=type_, price=price, trigger_price=trigger, time_in_force="GTC", tags=tags)


def event(cid: str, kind: str) -> OrderEventRow:
    return row(OrderEventRow, ts_event=T0, ts_init=T0, event_id=f"{cid}-{kind}", kind=kind, client_order_id=cid,
               venue_order_id=None, strategy_id="S-1", instrument_id="S000.ALPACA", details="{}")


def signal(symbol: str, confidence: float, expected_return: float = 0.001) -> SignalRow:
    return row(SignalRow, ts_event=T0, instrument_id=f"{symbol}.ALPACA", models="lightgbm", probabilities=[0.6],
               decision="BUY", confidence=confidence, expected_return=expected_return, risk_score=3,
               volatility=0.01, horizon=5, horizons="5", horizon_returns=[0.001])


def bar(close: str, ts: int) -> BarRow:
    return row(BarRow, ts_event=ts, ts_init=ts, instrument_id="S000.ALPACA", open=close, high=close, low=close,
               close=close, volume="100")


def traded_rows() -> list[Row]:
    """A run that bought 10 S000 at 100 with a bracket (stop 98, target 104), marked at 101."""
    return [
        row(RunEvent, ts=T0, kind="started", trading_day=date(2024, 12, 27), trader_id="T", name="paper", mode="paper"),
        row(ModelVersion, name="lightgbm", version=3, path="/m/lightgbm/v0003"),
        row(AccountRow, ts_event=T0, account_id="A", currency="USD", total="100000", free="100000", locked="0"),
        order("E1", "MARKET", "BUY", tags="ENTRY"), event("E1", "OrderSubmitted"),
        order("SL1", "STOP_MARKET", "SELL", trigger="98.00", tags="STOP_LOSS"), event("SL1", "OrderAccepted"),
        order("TP1", "LIMIT", "SELL", price="104.00", tags="TAKE_PROFIT"), event("TP1", "OrderAccepted"),
        event("E1", "OrderFilled"),
        row(FillRow, ts_event=T0, client_order_id="E1", venue_order_id="V1", trade_id="X1", position_id="P1",
            instrument_id="S000.ALPACA", side="BUY", last_qty="10", last_px="100.00", commission="0", currency="USD",
            liquidity_side="TAKER"),
        row(PositionRow, ts_event=T0, kind="opened", position_id="P1", instrument_id="S000.ALPACA", side="LONG",
            quantity="10", avg_px_open=100.0, realized_pnl="0", unrealized_pnl="0", currency="USD"),
        bar("101.00", T0 + MINUTE),
        row(AccountRow, ts_event=T0, account_id="A", currency="USD", total="99500", free="99000", locked="0"),
    ]


def traded_day(view: LiveView) -> None:
    for r in traded_rows():
        view.put(r)


def test_a_position_shows_its_bracket_and_its_unrealised_pnl_from_the_bars():
    view = LiveView(RiskRules())
    traded_day(view)
    [position] = view.snapshot("positions")["positions"]
    assert (position["symbol"], position["side"], position["quantity"], position["entry"]) == ("S000", "LONG", 10, 100)
    assert (position["stop"], position["target"], position["last"]) == ("98.00", "104.00", 101.0)
    assert math.isclose(position["unrealized_pnl"], 10.0)
    assert [o["status"] for o in view.snapshot("orders")["orders"]] == ["OrderAccepted", "OrderAccepted", "OrderFilled"]
    assert [(f["symbol"], f["price"]) for f in view.snapshot("fills")["fills"]] == [("S000", "100.00")]


def test_equity_day_pnl_and_the_daily_loss_used_of_its_limit():
    view = LiveView(RiskRules(daily_loss_limit=0.02, max_positions=10, max_position_pct=0.05))
    traded_day(view)
    status = view.snapshot("status")
    assert (status["equity"], status["start_equity"], status["day_pnl"]) == (99_500, 100_000, -500)
    assert status["models"] == {"lightgbm": 3} and status["open_positions"] == 1 and status["bars"] == 1
    limits = status["limits"]
    assert (limits["daily_loss_used"], limits["daily_loss_limit"]) == (500, 2_000)
    assert (limits["open_positions"], limits["max_positions"], limits["max_position_value"]) == (1, 10, 4_975)


def test_a_closed_position_leaves_and_a_new_run_starts_clean():
    view = LiveView()
    traded_day(view)
    view.put(row(PositionRow, ts_event=T0, kind="closed", position_id="P1", instrument_id="S000.ALPACA", side="FLAT",
                 quantity="0", avg_px_open=100.0, realized_pnl="10", unrealized_pnl="0", currency="USD"))
    assert view.snapshot("positions")["positions"] == []
    view.put(row(RunEvent, ts=T0, kind="started", trading_day=date(2024, 12, 30), trader_id="T", name="paper",
                 mode="paper"))
    assert view.snapshot("orders")["orders"] == [] and view.snapshot("fills")["fills"] == []
    assert view.trading_day() == date(2024, 12, 30)


def test_top_signals_are_the_newest_per_stock_ranked_by_confidence_without_nan():
    view = LiveView()
    for i in range(TOP_SIGNALS + 5):
        view.put(signal(f"S{i:03d}", confidence=i / 100))
    view.put(signal("S000", confidence=0.99, expected_return=float("nan")))  # S000's newest
    ranked = view.snapshot("signals")["signals"]
    assert len(ranked) == TOP_SIGNALS
    assert ranked[0]["symbol"] == "S000" and ranked[0]["expected_return"] is None
    assert [s["confidence"] for s in ranked[1:]] == sorted((s["confidence"] for s in ranked[1:]), reverse=True)
    json.dumps(ranked, allow_nan=False)  # what the page parses


def test_publish_due_sends_each_changed_topic_once_stamped_with_its_oldest_change():
    now = [1000.0]
    view = LiveView(clock=lambda: now[0])
    sent: list[tuple[str, dict]] = []
    view.put(signal("S000", 0.7))
    now[0] = 1001.0
    view.put(signal("S001", 0.8))
    view.publish_due(lambda topic, payload: sent.append((topic, payload)))
    assert [(t, p["_ts"], len(p["signals"])) for t, p in sent] == [("signals", 1_000_000.0, 2)]
    view.publish_due(lambda topic, payload: sent.append((topic, payload)))
    assert len(sent) == 1  # nothing changed since


def test_the_panel_sink_hands_every_row_to_every_listener_in_order():
    first, second = LiveView(), LiveView()
    sink = PanelSink([first, second])
    traded_day(first)
    traded_day(second)  # the same rows through the sink's listeners directly ...
    third = LiveView()
    sink.listeners = [third]
    traded_day(third)  # ... and through the sink
    assert third.snapshot("positions") == first.snapshot("positions") == second.snapshot("positions")


def test_the_hub_coalesces_a_burst_to_the_newest_payload_and_spaces_the_next():
    async def run() -> list[tuple[float, dict]]:
        hub = EventHub(min_interval_secs=0.2)
        loop = asyncio.get_running_loop()
        hub.bind(loop)
        received: list[tuple[float, dict]] = []

        async def read() -> None:
            async for message in hub.stream():
                received.append((loop.time(), json.loads(message.decode().split("data: ", 1)[1])))

        reader = asyncio.create_task(read())
        await asyncio.sleep(0)
        for burst in range(2):  # two bursts of 100 updates, each without yielding to the loop
            for i in range(100):
                hub.publish("positions", {"i": burst * 100 + i})
            while len(received) <= burst:
                await asyncio.sleep(0.01)
        reader.cancel()
        return received

    (first_at, first), (second_at, second) = asyncio.run(run())
    assert (first["i"], second["i"]) == (99, 199)  # one message per burst: its newest state
    assert second_at - first_at > 0.15  # the next one waits out (most of) the 0.2 s interval
