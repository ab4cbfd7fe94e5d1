"""Measurements of the live Polygon path for ``sextant bench`` (numbers only, no printing).

Both run the real thing: a NautilusTrader TradingNode with ``PolygonDataClient`` connected to
a loopback ``PolygonSandbox`` and an actor subscribed to the bars.

* ``feed_throughput``: frames of ``frame_size`` AM messages handed to the client exactly as
  the socket hands them (``PolygonDataClient.handle_frame``), parsed, sequenced, pushed through
  the live data engine's queue to ``on_bar``; all on the node's single event-loop thread.
* ``measure_ingest_throughput``: a whole ingest (SDK pages -> validation -> catalog) from a
  sandbox in its own process, so server and client do not share a GIL.
* ``feed_latency``: the sandbox publishes minute by minute over the WebSocket; each bar's
  ``ts_init`` is stamped when its frame is received, so ``on_bar`` time minus ``ts_init`` is
  receive-to-strategy latency; send-to-strategy adds the socket hop (the sandbox's send time).

``BackgroundNode`` and ``BarRecorder`` are also what the data client's tests drive.
"""

import asyncio
import multiprocessing
import multiprocessing.synchronize
import os
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, Self, TypeVar

import msgspec
import numpy as np
import pandas as pd
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.component import LiveClock
from nautilus_trader.config import ActorConfig, LoggingConfig, TradingNodeConfig
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import Bar, BarType

from adapters.polygon.common import API_KEY_ENV_VARS, POLYGON
from adapters.polygon.config import PolygonDataClientConfig, PolygonHistoricalConfig
from adapters.polygon.data import PolygonDataClient
from adapters.polygon.factories import PolygonLiveDataClientFactory
from adapters.polygon.http import PolygonHttpClient
from adapters.polygon.loader import PolygonBarSource
from adapters.polygon.parsing.stream import StreamParser
from adapters.polygon.sandbox import PolygonSandbox, SimClock
from catalog.ingest import ingest_bars
from catalog.instruments import VENUE, bar_type
from catalog.jobs import generate_catalog
from catalog.sessions import session_bounds, sessions_ending
from catalog.store import MarketCatalog

T = TypeVar("T")
_CALL_TIMEOUT_SECS = 60.0
_BENCH_SEED = 11
_SANDBOX_KEY = "sandbox-bench-key"


class RecordedBar(NamedTuple):
    bar_type: str
    ts_event: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    ts_init: int
    received_ns: int  # clock.timestamp_ns() in on_bar


class BarRecorderConfig(ActorConfig, frozen=True, kw_only=True):
    bar_types: list[str]
    keep_bars: bool = True  # False: count only (throughput runs)


class BarRecorder(Actor):
    """Subscribes the configured bar types and records every bar it is handed.

    Thread-safe to read from another thread: ``wait_for`` blocks on a condition that each
    ``on_bar`` notifies, so a test waits for an explicit state with a timeout, never sleeps."""

    def __init__(self, config: BarRecorderConfig) -> None:
        super().__init__(config)
        self.bars: list[RecordedBar] = []
        self.count = 0
        self.target: int | None = None
        self.on_target: Callable[[], None] | None = None
        self._changed = threading.Condition()

    def on_start(self) -> None:
        for name in self.config.bar_types:
            self.subscribe_bars(BarType.from_str(name))

    def on_bar(self, bar: Bar) -> None:
        now = self.clock.timestamp_ns()
        self.count += 1
        if self.config.keep_bars:
            self.bars.append(
                RecordedBar(
                    str(bar.bar_type),
                    bar.ts_event,
                    bar.open.as_double(),
                    bar.high.as_double(),
                    bar.low.as_double(),
                    bar.close.as_double(),
                    bar.volume.as_double(),
                    bar.ts_init,
                    now,
                )
            )
            with self._changed:
                self._changed.notify_all()
        if self.count == self.target and self.on_target is not None:
            self.on_target()

    def on_stop(self) -> None:
        """Nothing to release: the node unsubscribes its actors' data itself."""

    def wait_for(self, predicate: Callable[[list[RecordedBar]], bool], timeout: float) -> list[RecordedBar]:
        """Block until ``predicate(bars)`` holds; TimeoutError (with the count) otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(list(self.bars)), timeout):
                raise TimeoutError(f"condition not met after {timeout}s with {len(self.bars)} bars")
        return list(self.bars)


class BackgroundNode:
    """A TradingNode with the Polygon data client, running on an event loop in a background
    thread so the calling thread can drive the sandbox. Use as a context manager; leaving it
    stops the node, stops the loop and disposes the node."""

    def __init__(
        self,
        data_config: PolygonDataClientConfig,
        actors: Sequence[Actor],
        log_level: str = "ERROR",
        timeout_connection: float = 15.0,
    ) -> None:
        self._config = TradingNodeConfig(
            logging=LoggingConfig(log_level=log_level),
            data_clients={POLYGON: data_config},
            timeout_connection=timeout_connection,
            timeout_disconnection=5.0,
            timeout_post_stop=0.0,
        )
        self._actors = list(actors)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="node-loop", daemon=True)
        self.node: TradingNode | None = None
        self._running: Any = None

    def __enter__(self) -> Self:
        self._thread.start()
        try:
            node = TradingNode(config=self._config, loop=self.loop)
            for actor in self._actors:
                node.trader.add_actor(actor)
            node.add_data_client_factory(POLYGON, PolygonLiveDataClientFactory)
            node.build()
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)  # no node to stop: just the loop
            self._thread.join(_CALL_TIMEOUT_SECS)
            raise
        self.node = node
        self._running = asyncio.run_coroutine_threadsafe(node.run_async(), self.loop)
        return self

    def __exit__(self, *exc: object) -> None:
        node = self.node
        assert node is not None
        try:
            self.run(node.stop_async())
            self._running.result(_CALL_TIMEOUT_SECS)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(_CALL_TIMEOUT_SECS)
            node.dispose()

    @property
    def client(self) -> PolygonDataClient:
        assert self.node is not None
        client = self.node.kernel.data_engine.routing_map[VENUE]
        assert isinstance(client, PolygonDataClient)
        return client

    @property
    def clock(self) -> LiveClock:
        assert self.node is not None
        return self.node.kernel.clock

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = _CALL_TIMEOUT_SECS) -> T:
        """Run ``coro`` on the node's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = _CALL_TIMEOUT_SECS) -> T:
        """Call ``fn`` on the node's loop thread (to read loop-owned state consistently)."""

        async def invoke() -> T:
            return fn()

        return self.run(invoke(), timeout)


@contextmanager
def _sandbox_key() -> Iterator[str]:
    """The factory reads the key from the environment; for the loopback sandbox a throwaway
    key is put there for the benchmark's duration (a real key is never sent to it)."""
    previous = os.environ.get(API_KEY_ENV_VARS[0])
    os.environ[API_KEY_ENV_VARS[0]] = _SANDBOX_KEY
    try:
        yield _SANDBOX_KEY
    finally:
        if previous is None:
            del os.environ[API_KEY_ENV_VARS[0]]
        else:
            os.environ[API_KEY_ENV_VARS[0]] = previous


@contextmanager
def _bench_catalog(catalog_path: str | Path | None, n_symbols: int) -> Iterator[Path]:
    if catalog_path is not None:
        yield Path(catalog_path)
        return
    with tempfile.TemporaryDirectory(prefix="sextant-bench-") as tmp:
        generate_catalog(tmp, n_symbols=n_symbols, n_days=1, seed=_BENCH_SEED)
        yield Path(tmp)


def _client_config(sandbox: PolygonSandbox) -> PolygonDataClientConfig:
    return PolygonDataClientConfig(
        base_url=sandbox.base_url,
        ws_feed=sandbox.ws_feed,
        secure=False,
        stale_after_secs=3600.0,
        connect_timeout_secs=5.0,
    )


def _am_frames(symbols: Sequence[str], n_frames: int, first_close_ms: int) -> list[bytes]:
    """One frame per minute close, one AM message per symbol (the shape Polygon sends)."""
    frames = []
    for k in range(n_frames):
        end = first_close_ms + k * 60_000
        price = 100.0 + (k % 100) / 100
        frames.append(
            msgspec.json.encode(
                [
                    {"ev": "AM", "sym": s, "v": 1200, "av": 50_000, "op": 100.0, "vw": price,
                     "o": price, "c": price, "h": price + 0.05, "l": price - 0.05, "a": price,
                     "z": 10, "s": end - 60_000, "e": end}
                    for s in symbols
                ]
            )
        )
    return frames


def feed_throughput(
    n_messages: int = 200_000, frame_size: int = 50, catalog_path: str | Path | None = None
) -> dict[str, float]:
    """Messages/s from raw frame to ``on_bar`` on one core (the node's event-loop thread)."""
    symbols = [f"B{i:03d}" for i in range(frame_size)]
    n_frames = max(1, n_messages // frame_size)
    frames = _am_frames(symbols, n_frames, first_close_ms=1_735_569_060_000)
    recorder = BarRecorder(
        BarRecorderConfig(bar_types=[str(bar_type(s)) for s in symbols], keep_bars=False)
    )
    with (
        _sandbox_key() as key,
        _bench_catalog(catalog_path, n_symbols=1) as catalog,
        PolygonSandbox(catalog, api_key=key) as sandbox,
        BackgroundNode(_client_config(sandbox), [recorder]) as running,
    ):
        sandbox.wait_for_subscribers(1, timeout=15.0)
        client = running.client
        clock = running.clock

        async def drive() -> float:
            done = asyncio.get_running_loop().create_future()
            recorder.target = recorder.count + n_frames * frame_size
            recorder.on_target = lambda: done.set_result(time.perf_counter())
            start = time.perf_counter()
            for raw in frames:
                client.handle_frame(raw, clock.timestamp_ns())
                await asyncio.sleep(0)  # a socket read yields to the loop between frames
            return await done - start

        elapsed = running.run(drive())
    total = n_frames * frame_size
    parser = StreamParser()
    start = time.perf_counter()
    for raw in frames:
        parser.parse(raw, 0)
    parse_only = time.perf_counter() - start
    return {
        "messages": float(total),
        "frame_size": float(frame_size),
        "seconds": elapsed,
        "messages_per_sec": total / elapsed,
        "parse_only_messages_per_sec": total / parse_only,
    }


def feed_latency(minutes: int = 390, n_symbols: int = 3, catalog_path: str | Path | None = None) -> dict[str, float]:
    """Receive-to-``on_bar`` and send-to-``on_bar`` latency (ms) over the sandbox WebSocket,
    one frame per minute close, each frame waited for before the next is published."""
    with _bench_catalog(catalog_path, n_symbols=n_symbols) as catalog:
        store = MarketCatalog(catalog)
        symbols = sorted(store.symbols())[:n_symbols]
        last_session = session_bounds(store.read_bars(symbols[0]).index[-1])
        if last_session is None:
            raise ValueError(f"the last bar of {symbols[0]} is past the NYSE calendar")
        open_, close = last_session
        minutes = min(minutes, int((close - open_) / pd.Timedelta(minutes=1)))
        clock = SimClock.manual(open_)
        recorder = BarRecorder(BarRecorderConfig(bar_types=[str(bar_type(s)) for s in symbols]))
        with _sandbox_key() as key, PolygonSandbox(catalog, api_key=key, clock=clock) as sandbox:
            with BackgroundNode(_client_config(sandbox), [recorder]):
                sandbox.wait_for_subscribers(1, timeout=15.0)
                for k in range(1, minutes + 1):
                    sandbox.advance_to(open_ + pd.Timedelta(minutes=k))
                    expected = k * len(symbols)
                    recorder.wait_for(lambda bars, n=expected: len(bars) >= n, timeout=10.0)
            sent = {(f.close_ns, f.connection): f.sent_ns for f in sandbox.frames_sent}
    bars = recorder.bars
    receive = np.array([b.received_ns - b.ts_init for b in bars], dtype=np.float64) / 1e6
    connection = max(c for _, c in sent)
    wire = np.array(
        [b.received_ns - sent[(b.ts_event, connection)] for b in bars], dtype=np.float64
    ) / 1e6
    return {
        "bars": float(len(bars)),
        "receive_to_on_bar_median_ms": float(np.median(receive)),
        "receive_to_on_bar_p99_ms": float(np.percentile(receive, 99)),
        "send_to_on_bar_median_ms": float(np.median(wire)),
        "send_to_on_bar_p99_ms": float(np.percentile(wire, 99)),
    }


def measure_ingest_throughput(
    n_symbols: int = 10,
    n_days: int = 130,
    timeframe: str = "1m",
    max_workers: int = 4,
    workdir: str | Path | None = None,
) -> dict:
    """Bars/s of a full ingest from a sandbox serving a synthetic catalog, with the sandbox in
    its own (spawned) process so server and client do not share a GIL. For ``sextant bench``
    and the issue's throughput target; prints nothing, returns the numbers."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        source_path, dest_path = Path(tmp) / "source", Path(tmp) / "dest"
        symbols = generate_catalog(source_path, n_symbols=n_symbols, n_days=n_days, seed=7).symbols()
        sessions = sessions_ending("2024-12-31", n_days).index
        context = multiprocessing.get_context("spawn")
        ready = context.Queue()
        stop = context.Event()
        server = context.Process(target=_serve_sandbox, args=(str(source_path), ready, stop), daemon=True)
        server.start()
        try:
            base_url = ready.get(timeout=120)
            client = PolygonHttpClient("bench-key", PolygonHistoricalConfig(base_url=base_url, max_workers=max_workers))
            source = PolygonBarSource(client)
            started = time.perf_counter()
            report = ingest_bars(dest_path, symbols, sessions[0].date(), sessions[-1].date(), timeframe, source,
                                 max_workers=max_workers)
            elapsed = time.perf_counter() - started
        finally:
            stop.set()
            server.join(timeout=30)
        bars = sum(report.bars_written.values())
        return {"bars": bars, "seconds": elapsed, "bars_per_second": bars / elapsed,
                "failures": [str(f) for f in report.failures]}


def _serve_sandbox(catalog_path: str, ready: "multiprocessing.Queue", stop: "multiprocessing.synchronize.Event") -> None:
    """The spawned server process."""
    with PolygonSandbox(catalog_path, api_key="bench-key", port=0) as sandbox:
        ready.put(sandbox.base_url)
        stop.wait()
