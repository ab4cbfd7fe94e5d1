"""PolygonSandbox: a loopback Polygon (REST + stocks WebSocket) serving a Sextant catalog.

The server runs on its own event loop in a background thread, so a synchronous test, a
benchmark or the CLI can drive it (advance the clock, add faults, drop connections) from the
calling thread while SDK clients talk to it over real sockets.
"""

import asyncio
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
from aiohttp import web

from adapters.loopback import LoopbackServer
from adapters.polygon.sandbox.bars import CatalogBars
from adapters.polygon.sandbox.clock import SimClock
from adapters.polygon.sandbox.faults import Fault, FaultSchedule
from adapters.polygon.sandbox.rest import RequestRecord, RestApi
from adapters.polygon.sandbox.stream import STREAM_PATH, ConnectionRecord, FrameRecord, StreamHub
from catalog.sessions import load_calendar
from catalog.store import EmptyCatalogError


class PolygonSandbox(LoopbackServer):
    """Serve ``catalog_path`` over Polygon's wire protocol on ``host:port`` (0 = a free port)."""

    name = "Polygon"

    def __init__(
        self,
        catalog_path: str | Path,
        *,
        api_key: str = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: SimClock | None = None,
        faults: Iterable[Fault] = (),
        withheld_bars: Iterable[tuple[str, int]] = (),
        max_page_size: int = 50_000,
        max_cached_rows: int = 20_000_000,
    ) -> None:
        super().__init__()
        load_calendar()  # daily aggregates need it; build it before the first request waits on it
        if max_page_size < 1:
            raise ValueError(f"max_page_size must be >= 1, got {max_page_size}")
        self.catalog_path = Path(catalog_path)
        self.api_key = api_key
        self.host = host
        self.clock = clock
        self.max_page_size = max_page_size
        self._requested_port = port
        self._faults = FaultSchedule(list(faults))
        # (symbol, bar close ns) the stream never sends, as a feed that lost them: the live
        # drift report must explain what the backtest (which has them) did differently
        self.withheld_bars = frozenset(withheld_bars)
        self._bars = CatalogBars(self.catalog_path, max_cached_rows=max_cached_rows)
        if not self._bars.symbols:  # a mistyped path would otherwise serve an empty market
            raise EmptyCatalogError(f"no symbols with bars in catalog {self.catalog_path}")
        self._requests: list[RequestRecord] = []
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._rest: RestApi | None = None
        self._hub: StreamHub | None = None
        self._paced: asyncio.Task | None = None
        self._close_listeners: list[Callable[[int], None]] = []
        self._subscribed = threading.Condition()
        self._n_subscribed = 0

    # -- lifecycle ------------------------------------------------------------------------------

    async def _startup(self) -> None:
        start_ns = None
        if self.clock is not None:
            self.clock.start()
            start_ns = self.clock.now_ns()
        self._hub = StreamHub(
            self._bars, self._faults, self.api_key, start_ns, self._on_subscribers, self.withheld_bars
        )
        self._hub.close_listeners.extend(self._close_listeners)
        self._rest = RestApi(
            self._bars,
            self._faults,
            self.clock,
            self.api_key,
            self.max_page_size,
            self._requests,
            passthrough_paths=frozenset({STREAM_PATH}),
        )
        app = web.Application(middlewares=[self._rest.middleware])
        app.add_routes(self._rest.routes())
        app.add_routes([web.get(STREAM_PATH, self._hub.handle)])
        self._runner = await self._listen(app, self.host, self._requested_port)
        self._port = int(self._runner.addresses[0][1])
        if self.clock is not None and not self.clock.is_manual:
            self._paced = asyncio.create_task(self._run_paced(self.clock, self._hub))

    async def _shutdown(self) -> None:
        assert self._rest is not None and self._hub is not None and self._runner is not None
        if self._paced is not None:
            self._paced.cancel()
            await asyncio.gather(self._paced, return_exceptions=True)
        self._rest.stopping.set()
        await self._hub.drop_all(clean=True, code=1001)
        await self._runner.cleanup()

    @staticmethod
    async def _run_paced(clock: SimClock, hub: StreamHub) -> None:
        """Publish each close when the paced clock reaches it; re-plan whenever
        subscriptions change so a new symbol's next bar is not missed."""
        while True:
            now = clock.now_ns()
            await hub.publish_until(now)
            upcoming = await hub.next_close_after(now)
            delay = 1.0 if upcoming is None else min(1.0, clock.real_seconds_until(upcoming))
            await hub.wait_for_change(delay)

    # -- addresses ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("sandbox not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_feed(self) -> str:
        return f"{self.host}:{self.port}"

    # -- observation ----------------------------------------------------------------------------

    @property
    def symbols(self) -> list[str]:
        """The tickers served (the catalog's symbols with bars), sorted."""
        return list(self._bars.symbols)

    @property
    def requests(self) -> list[RequestRecord]:
        """REST requests in arrival order (a copy)."""
        return list(self._requests)

    @property
    def frames_sent(self) -> list[FrameRecord]:
        return list(self._hub.frames_sent) if self._hub else []

    @property
    def connections(self) -> list[ConnectionRecord]:
        """WebSocket handshakes in arrival order, refused ones included."""
        return list(self._hub.connections) if self._hub else []

    @property
    def pending_faults(self) -> list[tuple[Fault, int]]:
        """Faults not yet used up, with how many times each will still fire."""
        return self._faults.pending()

    def now_ns(self) -> int | None:
        return self.clock.now_ns() if self.clock is not None else None

    # -- control --------------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        self._faults.add(fault)

    def add_close_listener(self, listener: Callable[[int], None]) -> None:
        """``listener(ts_ns)`` runs on the sandbox's loop thread whenever publishing reaches a
        bar close (before that close's frames are sent) and at the end of every advance. It
        must be quick and thread-safe; a paper broker uses it to fill against the same clock.
        Register before ``start``."""
        if self._hub is not None:
            raise RuntimeError("add close listeners before the sandbox starts")
        self._close_listeners.append(listener)

    def advance_to(self, ts: pd.Timestamp | str) -> int:
        """Move the manual clock to ``ts`` and publish every bar closing in (previous now, ts];
        returns the number of data messages written to the sockets."""
        if self.clock is None or not self.clock.is_manual:
            raise RuntimeError("advance_to needs a manual clock (SimClock.manual)")
        stamp = pd.Timestamp(ts)
        if stamp.tzinfo is None:
            raise ValueError(f"advance_to needs a tz-aware timestamp, got {ts!r}")
        target = int(stamp.tz_convert("UTC").value)
        hub = self._require_hub()
        self.clock.set_ns(target)
        return self._call(hub.publish_until(target))

    def drop_connections(self, clean: bool = False) -> int:
        """Close every WebSocket now; abnormally (no close frame) unless ``clean`` (code 1000).
        Returns how many were open."""
        return self._call(self._require_hub().drop_all(clean))

    def wait_for_subscribers(self, n_connections: int = 1, timeout: float = 5.0) -> None:
        """Block until ``n_connections`` authenticated connections hold >= 1 subscription."""
        with self._subscribed:
            if not self._subscribed.wait_for(lambda: self._n_subscribed >= n_connections, timeout):
                raise TimeoutError(
                    f"{self._n_subscribed} subscribed WebSocket connection(s) after {timeout}s, "
                    f"{n_connections} expected"
                )

    def _on_subscribers(self, count: int) -> None:
        with self._subscribed:
            self._n_subscribed = count
            self._subscribed.notify_all()

    def _require_hub(self) -> StreamHub:
        if self._hub is None or self._loop is None:
            raise RuntimeError("sandbox not started")
        return self._hub

