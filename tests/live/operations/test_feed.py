"""The feed monitor (live.operations.feed): gaps per symbol from the bars received, messages/s
from the stream's counter, and the counters read from a real node's Polygon data client across
a dropped connection and its backfill."""

import asyncio
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from nautilus_trader.config import InstrumentProviderConfig

from adapters.polygon.benchmarks import BackgroundNode, BarRecorder, BarRecorderConfig
from adapters.polygon.config import PolygonDataClientConfig
from adapters.polygon.sandbox import Fault, PolygonSandbox, SimClock
from catalog.instruments import bar_type
from live.journal.rows import BarRow
from live.operations.feed import TOPIC, FeedMonitor, read_feed
from tests.live.conftest import SYMBOLS

OPEN = pd.Timestamp("2024-12-30 14:30", tz="UTC")
MINUTE = pd.Timedelta(minutes=1)
WAIT = 15.0


def bar(seq: int, symbol: str, close: pd.Timestamp, arrived_ns: int | None = None) -> BarRow:
    return BarRow(run_id="r", seq=seq, ts_event=close.value, ts_init=arrived_ns or close.value,
                  instrument_id=f"{symbol}.ALPACA", open="1", high="1", low="1", close="1", volume="1")


class Counters:
    """What read_feed returns, with a messages count the test moves."""

    def __init__(self) -> None:
        self.messages = 0

    def __call__(self) -> dict:
        return {"polygon": {"messages": self.messages, "status": "connected"}, "alpaca": None}


def test_gaps_are_the_session_minutes_up_to_the_newest_bar_without_a_bar_of_the_symbol():
    monitor = FeedMonitor(lambda: None, symbols=["S000", "S001", "S002"])
    seq = 0
    for k in range(1, 11):  # 09:31..09:40
        monitor.put(bar(seq := seq + 1, "S000", OPEN + k * MINUTE))
        if k not in (4, 5):
            monitor.put(bar(seq := seq + 1, "S001", OPEN + k * MINUTE))
    sample = monitor.sample()
    assert sample["gaps"]["S000"] == {"bars": 10, "missing": 0, "newest_missing": []}
    assert sample["gaps"]["S001"] == {"bars": 8, "missing": 2, "newest_missing": ["09:34", "09:35"]}
    assert sample["gaps"]["S002"]["missing"] == 10  # in the universe, never a bar
    assert sample["missing_minutes"] == 12 and sample["session"] == "2024-12-30" and not sample["node"]
    monitor.put(bar(seq + 1, "S000", OPEN + pd.Timedelta(days=1) + 390 * MINUTE))  # the next session starts afresh
    assert monitor.sample()["session"] == "2024-12-31"


def test_messages_per_second_is_the_counter_s_rise_over_the_time_between_samples():
    counters, clock = Counters(), [100.0]
    monitor = FeedMonitor(counters, monotonic=lambda: clock[0])
    assert monitor.sample()["messages_per_sec"] is None  # nothing to compare with yet
    counters.messages, clock[0] = 250, 102.0
    assert monitor.sample()["messages_per_sec"] == 125.0
    counters.messages, clock[0] = 10, 103.0  # a new node's counter starts again from 0
    assert monitor.sample()["messages_per_sec"] is None
    counters.messages, clock[0] = 40, 104.0
    assert monitor.sample()["messages_per_sec"] == 30.0


def test_the_last_bar_age_is_measured_from_its_arrival():
    monitor = FeedMonitor(lambda: None, wall_ns=lambda: OPEN.value + 5 * MINUTE.value)
    assert monitor.sample()["last_bar_age_secs"] is None
    monitor.put(bar(1, "S000", OPEN + MINUTE, arrived_ns=OPEN.value + 2 * MINUTE.value))
    assert monitor.sample()["last_bar_age_secs"] == 180.0
    published = []
    monitor.publish_sample(lambda topic, payload: published.append(topic))
    assert published == [TOPIC]


def wait_until(running: BackgroundNode, predicate: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    running.run(asyncio.wait_for(poll(), WAIT), WAIT + 1)


@pytest.mark.timeout(120)
def test_a_real_node_s_counters_show_the_dropped_connection_and_its_backfill(market, monkeypatch):
    source, _ = market
    monkeypatch.setenv("POLYGON_API_KEY", "test-key")
    topics = {f"AM.{s}" for s in SYMBOLS}
    recorder = BarRecorder(BarRecorderConfig(bar_types=[str(bar_type(s)) for s in SYMBOLS]))
    with PolygonSandbox(Path(source), api_key="test-key", clock=SimClock.manual(OPEN)) as sb:
        config = PolygonDataClientConfig(
            base_url=sb.base_url, ws_feed=sb.ws_feed, secure=False,
            instrument_provider=InstrumentProviderConfig(load_ids=frozenset(f"{s}.ALPACA" for s in SYMBOLS)),
            reconnect_initial_delay_secs=0.25, reconnect_max_delay_secs=1.0, connect_timeout_secs=1.0,
            stale_after_secs=3600.0)
        with BackgroundNode(config, [recorder]) as running:
            client = running.client
            wait_until(running, lambda: client.acknowledged_topics >= topics)
            sb.advance_to(OPEN + 10 * MINUTE)
            recorder.wait_for(lambda bars: len(bars) >= 2 * 10, WAIT)
            before = running.call(lambda: read_feed(running.node))
            sb.add_fault(Fault(kind="drop", target="ws", after_messages=0, clean=False))
            sb.advance_to(OPEN + 15 * MINUTE)
            wait_until(running, lambda: client.stream.counters.reconnects == 1 and not client.backfill_pending)
            wait_until(running, lambda: client.acknowledged_topics >= topics)
            sb.advance_to(OPEN + 20 * MINUTE)
            recorder.wait_for(lambda bars: len(bars) >= 2 * 20, WAIT)
            after = running.call(lambda: read_feed(running.node))
    assert before["polygon"]["status"] == "connected" and before["polygon"]["reconnects"] == 0
    assert before["polygon"]["messages"] >= 2 * 10 and before["alpaca"] is None  # no execution client here
    polygon = after["polygon"]
    assert polygon["status"] == "connected" and polygon["reconnects"] == 1 and not polygon["backfill_pending"]
    assert polygon["backfilled_bars"] >= 2 * 4 and polygon["messages"] > before["polygon"]["messages"]
