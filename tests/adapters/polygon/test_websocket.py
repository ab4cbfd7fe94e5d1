"""PolygonStream against the loopback sandbox: auth, subscriptions, and every fault it must
survive (abnormal and clean closes, refused handshakes, nothing listening, a stalled feed)
or give up on (a rejected key).

Each test runs its scenario in ``asyncio.run``; sandbox calls block, so they go through
``asyncio.to_thread``. Waits are explicit conditions with timeouts."""

import asyncio
import random
import socket
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from nautilus_trader.model.data import Bar, TradeTick

from adapters.polygon.config import PolygonDataClientConfig
from adapters.polygon.parsing.stream import StreamParser
from adapters.polygon.sandbox import Fault, PolygonSandbox, SimClock
from adapters.polygon.websocket import (
    PolygonStream,
    StreamAuthError,
    StreamStatus,
    backoff_delay,
)

OPEN = pd.Timestamp("2024-12-30 14:30", tz="UTC")  # a regular session of the small catalog
MINUTE = pd.Timedelta(minutes=1)
IN_SESSION_NS = (OPEN + 30 * MINUTE).value
SATURDAY_NS = pd.Timestamp("2024-12-28 15:00", tz="UTC").value
WAIT = 10.0


@pytest.fixture
def live_sandbox(small_catalog: Path) -> Iterator[PolygonSandbox]:
    """The small catalog served live: a manual clock standing at the 2024-12-30 open."""
    with PolygonSandbox(small_catalog, api_key="test-key", clock=SimClock.manual(OPEN)) as sb:
        yield sb


def config(feed: str, **overrides: Any) -> PolygonDataClientConfig:
    settings: dict[str, Any] = {
        "ws_feed": feed,
        "secure": False,
        "reconnect_initial_delay_secs": 0.05,
        "reconnect_max_delay_secs": 0.2,
        "connect_timeout_secs": 2.0,
        "stale_after_secs": 3600.0,
    }
    return PolygonDataClientConfig(**(settings | overrides))


class Recorder:
    """The stream's callbacks: parses frames into bars and records statuses."""

    def __init__(self) -> None:
        self.parser = StreamParser()
        self.data: list[Bar | TradeTick] = []
        self.received_ns: list[int] = []
        self.reconnected = 0
        self.acknowledged: set[str] = set()  # topics the server confirmed on this session
        self.statuses: list[tuple[StreamStatus, str | None]] = []

    def on_frame(self, raw: str | bytes, received_ns: int) -> None:
        self.received_ns.append(received_ns)
        parsed = self.parser.parse(raw, received_ns)
        self.data += [obj for _, obj in parsed.data]
        for status in parsed.statuses:
            verb, _, topic = status.message.partition(" to: ")
            if verb == "subscribed":
                self.acknowledged.add(topic)
            elif verb == "unsubscribed":
                self.acknowledged.discard(topic)

    @property
    def bars(self) -> list[Bar]:
        return [obj for obj in self.data if isinstance(obj, Bar)]

    def on_reconnected(self) -> None:
        self.reconnected += 1
        self.acknowledged.clear()

    def on_status(self, status: StreamStatus, reason: str | None) -> None:
        self.statuses.append((status, reason))

    def closes(self, symbol: str) -> list[pd.Timestamp]:
        return [pd.Timestamp(b.ts_event, tz="UTC") for b in self.bars
                if b.bar_type.instrument_id.symbol.value == symbol]


def make_stream(feed: str, recorder: Recorder, api_key: str = "test-key",
                now_ns: Callable[[], int] = time.time_ns, **overrides: Any) -> PolygonStream:
    return PolygonStream(api_key, config(feed, **overrides), recorder.on_frame,
                         recorder.on_reconnected, now_ns=now_ns, on_status=recorder.on_status,
                         rng=random.Random(1))


async def eventually(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.005)


def run(scenario: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(scenario, 60.0))


async def advance(sb: PolygonSandbox, minutes: int) -> None:
    await asyncio.to_thread(sb.advance_to, pd.Timestamp(sb.now_ns(), tz="UTC") + minutes * MINUTE)


async def acknowledged(rec: Recorder, *topics: str) -> None:
    """Until the server confirmed ``topics`` on the current session (then it publishes them)."""
    await eventually(lambda: rec.acknowledged >= set(topics))


def test_session_authenticates_subscribes_and_stamps_frames_on_receipt(live_sandbox: PolygonSandbox) -> None:
    async def scenario() -> None:
        rec = Recorder()
        stream = make_stream(live_sandbox.ws_feed, rec)
        stream.subscribe("AM.S000", "AM.S001")
        stream.start()
        try:
            assert await stream.wait_connected(WAIT)
            await acknowledged(rec, "AM.S000", "AM.S001")
            before = time.time_ns()
            await advance(live_sandbox, 3)
            await eventually(lambda: len(rec.bars) == 6)
        finally:
            await stream.stop()
        assert rec.closes("S000") == rec.closes("S001") == [OPEN + k * MINUTE for k in (1, 2, 3)]
        assert all(before <= bar.ts_init <= time.time_ns() for bar in rec.bars)
        assert stream.counters.connections == 1 and stream.counters.reconnects == 0
        assert stream.counters.frames == len(rec.received_ns) >= 4  # 3 data + the subscribe ack
        assert rec.statuses == [(StreamStatus.CONNECTING, None), (StreamStatus.CONNECTED, None),
                                (StreamStatus.STOPPED, None)]
        assert rec.reconnected == 0

    run(scenario())


@pytest.mark.parametrize("clean", [False, True], ids=["abnormal-close", "clean-close"])
def test_dropped_connection_reconnects_and_resubscribes(live_sandbox: PolygonSandbox, clean: bool) -> None:
    async def scenario() -> None:
        rec = Recorder()
        stream = make_stream(live_sandbox.ws_feed, rec)
        stream.subscribe("AM.S002")
        stream.start()
        try:
            await stream.wait_connected(WAIT)
            await acknowledged(rec, "AM.S002")
            await advance(live_sandbox, 1)
            await eventually(lambda: len(rec.bars) == 1)
            await asyncio.to_thread(live_sandbox.drop_connections, clean)
            await eventually(lambda: rec.reconnected == 1)
            await acknowledged(rec, "AM.S002")  # the new connection subscribed by itself
            await advance(live_sandbox, 1)
            await eventually(lambda: len(rec.bars) == 2)
        finally:
            await stream.stop()
        assert rec.closes("S002") == [OPEN + MINUTE, OPEN + 2 * MINUTE]
        assert (stream.counters.connections, stream.counters.reconnects) == (2, 1)
        assert stream.status is StreamStatus.STOPPED
        expected = "closed the connection cleanly" if clean else "closed abnormally"
        assert expected in (stream.last_error or "")
        assert [s for s, _ in rec.statuses][1:4] == [
            StreamStatus.CONNECTED, StreamStatus.RECONNECTING, StreamStatus.CONNECTED]

    run(scenario())


def test_refused_handshakes_are_abandoned_and_retried(live_sandbox: PolygonSandbox) -> None:
    """The SDK alone would retry a 503 forever (its own backoff, silently); the supervisor
    abandons each attempt after connect_timeout_secs and retries with its own backoff."""
    live_sandbox.add_fault(Fault(kind="refuse", target="ws", times=2))

    async def scenario() -> None:
        rec = Recorder()
        stream = make_stream(live_sandbox.ws_feed, rec, connect_timeout_secs=0.3)
        stream.subscribe("AM.S000")
        stream.start()
        try:
            assert await stream.wait_connected(WAIT)
            await acknowledged(rec, "AM.S000")
            await advance(live_sandbox, 1)
            await eventually(lambda: len(rec.bars) == 1)
        finally:
            await stream.stop()
        assert [c.refused for c in live_sandbox.connections] == [True, True, False]
        assert [s for s, _ in rec.statuses] == [StreamStatus.CONNECTING, StreamStatus.RECONNECTING,
                                                StreamStatus.CONNECTED, StreamStatus.STOPPED]
        assert stream.last_error == "no authenticated session within 0.3s (connection refused or hanging)"
        # the SDK's own retry (after a random 0-5 s) may land inside one attempt's window
        assert stream.counters.attempts >= 2 and stream.counters.connections == 1

    run(scenario())


def test_nothing_listening_keeps_retrying_without_a_session() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario() -> None:
        rec = Recorder()
        stream = make_stream(f"127.0.0.1:{port}", rec, connect_timeout_secs=0.2)
        stream.subscribe("AM.S000")
        stream.start()
        try:
            assert not await stream.wait_connected(0.5)
            await eventually(lambda: stream.counters.attempts >= 3)
            assert stream.is_running
        finally:
            await stream.stop()
        assert stream.counters.connections == 0 and rec.bars == []
        assert stream.last_error == "no authenticated session within 0.2s (connection refused or hanging)"

    run(scenario())


def test_stalled_feed_trips_the_watchdog_and_reconnects(live_sandbox: PolygonSandbox) -> None:
    async def scenario() -> None:
        rec = Recorder()
        stream = make_stream(live_sandbox.ws_feed, rec, stale_after_secs=1.0,
                             stale_check_outside_session=True)
        stream.subscribe("AM.S001")
        stream.start()
        try:
            await stream.wait_connected(WAIT)
            await acknowledged(rec, "AM.S001")
            await advance(live_sandbox, 1)
            await eventually(lambda: len(rec.bars) == 1)
            live_sandbox.add_fault(Fault(kind="stall", target="ws", stall_secs=60.0))
            await advance(live_sandbox, 1)  # swallowed by the stall: silence from here on
            await eventually(lambda: rec.reconnected == 1)
            await acknowledged(rec, "AM.S001")
            await advance(live_sandbox, 1)  # the new connection is not stalled
            await eventually(lambda: len(rec.bars) == 2)
        finally:
            await stream.stop()
        assert rec.closes("S001") == [OPEN + MINUTE, OPEN + 3 * MINUTE]  # 2nd lost in the stall
        assert stream.counters.stale_events >= 1
        stale = [reason for status, reason in rec.statuses if status is StreamStatus.STALE]
        assert stale and stale[0].startswith("Polygon feed stale: no message for ")
        statuses = [s for s, _ in rec.statuses]
        assert statuses[1:4] == [StreamStatus.CONNECTED, StreamStatus.STALE, StreamStatus.CONNECTED]

    run(scenario())


def test_watchdog_sleeps_outside_the_regular_session_unless_told_otherwise(live_sandbox: PolygonSandbox) -> None:
    """Silence on a Saturday is normal; the same silence during a session is a stale feed."""

    async def silent_for(now_ns: int, seconds: float) -> PolygonStream:
        stream = make_stream(live_sandbox.ws_feed, Recorder(), now_ns=lambda: now_ns,
                             stale_after_secs=0.2)
        stream.subscribe("AM.S000")
        stream.start()
        try:
            await stream.wait_connected(WAIT)
            await asyncio.sleep(seconds)  # the silence under test
        finally:
            await stream.stop()
        return stream

    async def scenario() -> None:
        weekend = await silent_for(SATURDAY_NS, 1.0)
        assert weekend.counters.stale_events == 0 and weekend.counters.connections == 1
        session = await silent_for(IN_SESSION_NS, 1.0)
        assert session.counters.stale_events >= 1 and session.counters.reconnects >= 1

    run(scenario())


def test_rejected_key_is_fatal_after_one_attempt(live_sandbox: PolygonSandbox) -> None:
    async def scenario() -> None:
        rec = Recorder()
        stream = make_stream(live_sandbox.ws_feed, rec, api_key="wrong-key")
        stream.subscribe("AM.S000")
        stream.start()
        with pytest.raises(StreamAuthError, match="Polygon authentication failed: authentication failed"):
            await stream.wait_connected(WAIT)
        assert stream.status is StreamStatus.FAILED and not stream.is_running
        await stream.stop()
        assert stream.status is StreamStatus.FAILED
        assert rec.statuses[-1] == (StreamStatus.FAILED, "Polygon authentication failed: authentication failed")
        assert len(live_sandbox.connections) == 1

    run(scenario())


def test_topics_change_on_a_live_session(live_sandbox: PolygonSandbox) -> None:
    async def scenario() -> None:
        rec = Recorder()
        stream = make_stream(live_sandbox.ws_feed, rec)
        stream.subscribe("AM.S000")
        stream.start()
        try:
            await stream.wait_connected(WAIT)
            await acknowledged(rec, "AM.S000")
            stream.subscribe("AM.S001", "T.S001")  # sent on the SDK's next one-second tick
            await acknowledged(rec, "AM.S000", "AM.S001", "T.S001")
            await advance(live_sandbox, 1)
            await eventually(lambda: len(rec.data) == 3)  # AM.S000, AM.S001, T.S001
            stream.unsubscribe("AM.S000")
            await eventually(lambda: rec.acknowledged == {"AM.S001", "T.S001"})
            await advance(live_sandbox, 1)
            await eventually(lambda: len(rec.data) == 5)
        finally:
            await stream.stop()
        assert stream.topics == {"AM.S001", "T.S001"}
        assert rec.closes("S000") == [OPEN + MINUTE]
        assert rec.closes("S001") == [OPEN + MINUTE, OPEN + 2 * MINUTE]
        assert stream.counters.connections == 1

    run(scenario())


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(3)
    for attempt, step in enumerate([0.25, 0.5, 1.0, 2.0, 4.0]):
        delays = [backoff_delay(attempt, 0.25, 4.0, rng) for _ in range(200)]
        assert step / 2 <= min(delays) and max(delays) <= step
        assert max(delays) - min(delays) > step / 4  # jittered, not lock-step
    assert backoff_delay(1000, 0.25, 4.0, rng) <= 4.0


def test_a_handler_bug_on_every_frame_gives_up_after_the_crash_cap(live_sandbox: PolygonSandbox) -> None:
    """A bug that raises on every message would crash every new session: after
    ``max_consecutive_crashes`` in a row the stream fails loudly instead of reconnecting
    forever."""

    class BuggyRecorder(Recorder):
        def on_frame(self, raw: str | bytes, received_ns: int) -> None:
            raise KeyError("a bug in frame handling")

    async def scenario() -> None:
        rec = BuggyRecorder()
        stream = make_stream(live_sandbox.ws_feed, rec, max_consecutive_crashes=3)
        stream.subscribe("AM.S000")  # the server's "subscribed" status frame reaches on_frame
        stream.start()
        try:
            await eventually(lambda: not stream.is_running)
        finally:
            await stream.stop()
        assert stream.status is StreamStatus.FAILED
        assert stream.counters.connections == 3 and stream.counters.attempts == 3
        status, reason = rec.statuses[-1]
        assert status is StreamStatus.FAILED and "3 sessions in a row crashed" in reason

    run(scenario())
