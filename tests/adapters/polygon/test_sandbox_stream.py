"""The sandbox's stocks WebSocket, driven only through massive.WebSocketClient(raw=True)."""

import asyncio
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import massive
import pandas as pd
import pytest
from massive.exceptions import AuthError

from adapters.polygon.sandbox import Fault, PolygonSandbox, SimClock
from adapters.polygon.sandbox.bars import CatalogBars
from adapters.polygon.sandbox.faults import FaultSchedule
from adapters.polygon.sandbox.stream import StreamHub
from catalog.store import MarketCatalog

OPEN = pd.Timestamp("2024-12-30 14:30", tz="UTC")  # 09:30 ET, a session of the small catalog
FAST_RECONNECT = {"reconnect_delays": lambda: itertools.repeat(0.05)}


class Feed:
    """A massive WebSocketClient running in the test's event loop, collecting raw frames."""

    def __init__(self, client: massive.WebSocketClient) -> None:
        self.client = client
        self.frames: list[list[dict]] = []
        self.task: asyncio.Task | None = None

    async def _collect(self, raw: str | bytes) -> None:
        self.frames.append(json.loads(raw))

    @property
    def data(self) -> list[dict]:
        return [m for frame in self.frames for m in frame if m["ev"] != "status"]

    @property
    def data_frames(self) -> list[list[dict]]:
        return [f for f in self.frames if any(m["ev"] != "status" for m in f)]

    @property
    def statuses(self) -> list[str]:
        return [m["message"] for frame in self.frames for m in frame if m["ev"] == "status"]

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met in time")
            await asyncio.sleep(0.01)


@asynccontextmanager
async def feed(
    sandbox: PolygonSandbox, *topics: str, api_key: str = "test-key", wait: bool = True
) -> AsyncIterator[Feed]:
    client = massive.WebSocketClient(
        api_key=api_key, feed=sandbox.ws_feed, secure=False, market="stocks", raw=True
    )
    client.subscribe(*topics)
    running = Feed(client)
    running.task = asyncio.create_task(client.connect(running._collect, **FAST_RECONNECT))
    try:
        if wait:
            await asyncio.to_thread(sandbox.wait_for_subscribers, 1, 5.0)
        yield running
    finally:
        running.task.cancel()
        await asyncio.gather(running.task, return_exceptions=True)


async def advance(sandbox: PolygonSandbox, ts: str) -> int:
    return await asyncio.to_thread(sandbox.advance_to, pd.Timestamp(ts, tz="UTC"))


@pytest.fixture
def live(live_sandbox: PolygonSandbox) -> PolygonSandbox:
    assert live_sandbox.now_ns() == OPEN.value
    return live_sandbox


def test_advance_publishes_am_frames_equal_to_catalog_bars(
    live: PolygonSandbox, small_catalog: Path
) -> None:
    catalog = MarketCatalog(small_catalog)

    async def scenario() -> Feed:
        async with feed(live, "AM.S001", "AM.S000") as f:
            assert await advance(live, "2024-12-30 14:40") == 20
            await f.wait_until(lambda: len(f.data) == 20)
            return f

    f = asyncio.run(scenario())
    assert set(f.statuses) == {"subscribed to: AM.S001", "subscribed to: AM.S000"}
    frames = f.data_frames
    assert len(frames) == 10  # one frame per close instant, both symbols in it, sorted
    assert all([m["sym"] for m in frame] == ["S000", "S001"] for frame in frames)
    for symbol in ("S000", "S001"):
        bars = catalog.read_bars(
            symbol, start=OPEN + pd.Timedelta(minutes=1), end=OPEN + pd.Timedelta(minutes=10)
        )
        messages = [m for m in f.data if m["sym"] == symbol]
        assert [m["e"] for m in messages] == [ts.value // 1_000_000 for ts in bars.index]
        assert all(m["ev"] == "AM" and m["s"] == m["e"] - 60_000 for m in messages)
        assert [(m["o"], m["h"], m["l"], m["c"], m["v"]) for m in messages] == list(
            bars[["open", "high", "low", "close", "volume"]].itertuples(index=False, name=None)
        )
        session = catalog.read_bars(symbol, start=OPEN, end=OPEN + pd.Timedelta(minutes=10))
        assert [m["av"] for m in messages] == session["volume"].cumsum().tolist()
        assert {m["op"] for m in messages} == {session["open"].iloc[0]}
    records = live.frames_sent
    assert [r.n_messages for r in records] == [2] * 10
    assert [r.close_ns for r in records] == sorted(r.close_ns for r in records)


def test_wildcard_trades_and_quotes(live: PolygonSandbox) -> None:
    async def scenario() -> Feed:
        async with feed(live, "AM.*", "T.S002", "Q.S002", "A.S002") as f:
            assert await advance(live, "2024-12-30 14:32") == 2 * 5
            await f.wait_until(lambda: len(f.data) == 10)
            return f

    f = asyncio.run(scenario())
    first = f.data_frames[0]
    assert [(m["ev"], m["sym"]) for m in first] == [
        ("AM", "S000"),
        ("AM", "S001"),
        ("AM", "S002"),
        ("T", "S002"),
        ("Q", "S002"),
    ]
    am, trade, quote = first[2], first[3], first[4]
    assert trade == {
        "ev": "T",
        "sym": "S002",
        "x": 4,
        "i": "1",
        "z": 1,
        "p": am["c"],
        "s": am["v"],
        "t": am["e"] - 1,
    }
    assert quote["bp"] == round(am["c"] - 0.01, 2) and quote["ap"] == round(am["c"] + 0.01, 2)
    assert (quote["bs"], quote["as"], quote["t"]) == (1, 1, am["e"] - 1)
    assert f.data_frames[1][3]["i"] == "2"


def test_bad_key_raises_auth_error(live: PolygonSandbox) -> None:
    async def scenario() -> None:
        client = massive.WebSocketClient(
            api_key="wrong", feed=live.ws_feed, secure=False, market="stocks", raw=True
        )
        client.subscribe("AM.S000")

        async def ignore(_: str) -> None:
            return None

        await asyncio.wait_for(client.connect(ignore), 5.0)

    with pytest.raises(AuthError, match="authentication failed"):
        asyncio.run(scenario())


def test_abnormal_drop_fault_makes_massive_reconnect(live: PolygonSandbox) -> None:
    async def scenario() -> Feed:
        async with feed(live, "AM.S000", "AM.S001") as f:
            live.add_fault(Fault(kind="drop", target="ws", after_messages=3))
            assert (
                await advance(live, "2024-12-30 14:35") == 3
            )  # 14:31 frame (2) + one of 14:32, then cut
            await f.wait_until(lambda: len(live.connections) == 2)
            await asyncio.to_thread(live.wait_for_subscribers, 1, 5.0)
            assert await advance(live, "2024-12-30 14:36") == 2
            await f.wait_until(lambda: len(f.data) == 5)
            return f

    f = asyncio.run(scenario())
    assert [r.connection for r in live.frames_sent] == [1, 1, 2]
    assert [m["e"] for m in f.data][-2:] == [
        pd.Timestamp("2024-12-30 14:36", tz="UTC").value // 1_000_000
    ] * 2
    assert not live.pending_faults


def test_drop_connections_abnormal_reconnects_clean_ends_the_client(live: PolygonSandbox) -> None:
    async def scenario() -> Feed:
        async with feed(live, "AM.S000") as f:
            assert live.drop_connections(clean=False) == 1
            await f.wait_until(lambda: len(live.connections) == 2)
            await asyncio.to_thread(live.wait_for_subscribers, 1, 5.0)
            assert await advance(live, "2024-12-30 14:31") == 1
            assert live.drop_connections(clean=True) == 1
            await asyncio.wait_for(f.task, 5.0)  # massive returns quietly after a clean close
            assert f.task.exception() is None
            return f

    f = asyncio.run(scenario())
    assert len(f.data) == 1
    assert len(live.connections) == 2


def test_refused_handshakes_are_retried(live: PolygonSandbox) -> None:
    live.add_fault(Fault(kind="refuse", target="ws", times=2))

    async def scenario() -> Feed:
        async with feed(live, "AM.S000") as f:
            assert await advance(live, "2024-12-30 14:31") == 1
            await f.wait_until(lambda: len(f.data) == 1)
            return f

    asyncio.run(scenario())
    assert [c.refused for c in live.connections] == [True, True, False]


def test_unsubscribe_stops_data(live: PolygonSandbox) -> None:
    async def scenario() -> Feed:
        async with feed(live, "AM.S000", "AM.S001") as f:
            assert await advance(live, "2024-12-30 14:31") == 2
            f.client.unsubscribe("AM.S001")
            await f.wait_until(lambda: "unsubscribed to: AM.S001" in f.statuses)
            assert await advance(live, "2024-12-30 14:33") == 2
            await f.wait_until(lambda: len(f.data) == 4)
            return f

    f = asyncio.run(scenario())
    assert [m["sym"] for m in f.data] == ["S000", "S001", "S000", "S000"]


def test_ws_stall_discards_data_for_its_duration(live: PolygonSandbox) -> None:
    async def scenario() -> Feed:
        async with feed(live, "AM.S000") as f:
            live.add_fault(Fault(kind="stall", target="ws", stall_secs=0.3))
            assert await advance(live, "2024-12-30 14:33") == 0
            await asyncio.sleep(0.35)
            assert await advance(live, "2024-12-30 14:34") == 1
            await f.wait_until(lambda: len(f.data) == 1)
            return f

    f = asyncio.run(scenario())
    assert [m["e"] for m in f.data] == [
        pd.Timestamp("2024-12-30 14:34", tz="UTC").value // 1_000_000
    ]
    assert len(live.connections) == 1


def test_manual_clock_rules(live: PolygonSandbox) -> None:
    assert live.now_ns() == OPEN.value
    assert live.advance_to(OPEN + pd.Timedelta(minutes=5)) == 0  # nobody subscribed
    with pytest.raises(ValueError, match="cannot go back"):
        live.advance_to(OPEN)
    with pytest.raises(TimeoutError):
        live.wait_for_subscribers(1, timeout=0.1)


def test_paced_clock_publishes_each_close_in_order(small_catalog: Path) -> None:
    clock = SimClock.paced(start=OPEN, speed=1200.0)  # one simulated minute every 50 ms

    with PolygonSandbox(small_catalog, clock=clock) as sandbox:

        async def scenario() -> Feed:
            async with feed(sandbox, "AM.S000") as f:
                await f.wait_until(lambda: len(f.data) >= 8, timeout=10.0)
                return f

        f = asyncio.run(scenario())
    ends = [m["e"] for m in f.data]
    assert all(b - a == 60_000 for a, b in itertools.pairwise(ends))
    assert all(r.n_messages == 1 for r in sandbox.frames_sent)
    assert ends[-1] * 1_000_000 <= clock.now_ns()


def test_the_paced_publisher_stops_when_a_subscription_changes_as_the_sandbox_stops(
    small_catalog: Path,
) -> None:
    """A client leaving wakes the publisher in the same instant the sandbox cancels it;
    Python 3.11's asyncio.wait_for swallowed that cancel and the sandbox never stopped."""
    hub = StreamHub(CatalogBars(small_catalog), FaultSchedule(), "test-key", OPEN.value, lambda n: None)

    async def scenario() -> bool:
        waiting = asyncio.create_task(hub.wait_for_change(30.0))
        await asyncio.sleep(0.01)
        hub._notify()  # what a closing connection's handler does
        waiting.cancel()
        try:
            await waiting
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(scenario()), "the cancel was swallowed"


def test_close_listeners_hear_every_close_before_its_frame(small_catalog) -> None:
    """A paper broker listening to the clock settles a bar before a subscriber can see it."""
    heard: list[tuple[int, int]] = []  # (ts, frames sent so far)
    sandbox = PolygonSandbox(small_catalog, api_key="test-key",
                             clock=SimClock.manual(pd.Timestamp("2024-12-30 14:30", tz="UTC")))
    sandbox.add_close_listener(lambda ts: heard.append((ts, len(sandbox.frames_sent))))
    with sandbox:
        frames: list = []

        async def listen() -> None:
            client = massive.WebSocketClient(api_key="test-key", feed=sandbox.ws_feed, secure=False,
                                             market="stocks", raw=True, subscriptions=["AM.S000"])

            async def on_frame(raw) -> None:
                frames.append(raw)
                if len(frames) == 3:
                    await client.close()

            await client.connect(on_frame)

        thread = threading.Thread(target=lambda: asyncio.run(listen()))
        thread.start()
        sandbox.wait_for_subscribers(1)
        sandbox.advance_to(pd.Timestamp("2024-12-30 14:33:30", tz="UTC"))
        thread.join(10)
        with pytest.raises(RuntimeError, match="before the sandbox starts"):
            sandbox.add_close_listener(lambda ts: None)
    closes = [pd.Timestamp(f"2024-12-30 14:3{m}", tz="UTC").value for m in (1, 2, 3)]
    assert [ts for ts, _ in heard] == [*closes, pd.Timestamp("2024-12-30 14:33:30", tz="UTC").value]
    assert [sent for _, sent in heard[:3]] == [0, 1, 2]  # each close heard before its frame went out


def test_withheld_bars_are_never_sent_and_the_rest_are(small_catalog: Path) -> None:
    """A feed that loses bars (what the live drift report must explain): the withheld
    (symbol, close) pairs never reach a subscriber, every other bar does, in order."""
    lost = {("S001", (OPEN + pd.Timedelta(minutes=m)).value) for m in (2, 3)}
    with PolygonSandbox(small_catalog, api_key="test-key", clock=SimClock.manual(OPEN),
                        withheld_bars=lost) as sandbox:

        async def scenario() -> Feed:
            async with feed(sandbox, "AM.S000", "AM.S001") as f:
                assert await advance(sandbox, "2024-12-30 14:35") == 8
                await f.wait_until(lambda: len(f.data) == 8)
                return f

        f = asyncio.run(scenario())
    received = {(m["sym"], m["e"] * 1_000_000) for m in f.data}
    assert not received & lost
    assert len(received) == 8 and {s for s, _ in received} == {"S000", "S001"}
