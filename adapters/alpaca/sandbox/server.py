"""AlpacaSandbox: a loopback Alpaca paper broker (trading REST + trade_updates stream).

The server runs on its own event loop in a background thread, so a synchronous test, the CLI
or a rehearsal can drive it (advance simulated time, add faults, drop the stream) from other
threads while alpaca-py talks to it over real sockets. All broker state lives on that loop;
the thread-safe entry points hand work to it and wait for the result.

Simulated time: the broker settles its orders up to ``now_ns()`` (the book's market time).
With its own manual clock, ``advance_to`` moves the clock and settles; in a rehearsal,
``PolygonSandbox.add_close_listener(broker.on_market_time)`` settles each bar close before
the Polygon sandbox sends that bar, so the strategy's orders fill at the prices it saw; with a
paced clock the broker settles by itself as the clock runs.

Bursts (a bar close for many symbols sends their orders at once). The real Alpaca takes them
on many servers concurrently; this sandbox decides them one after another on one loop, so the
instant its handler runs says how long the sandbox's queue was, not when the order reached
the broker. Decision: an order request is stamped (``received_ns``) when its bytes are read off
the socket (``arrival.py``), the book decides one request per loop step in arrival order (the
loop reads the other connections between two decisions, so their stamps are not held behind
the queue), and the answer still waits for the book's decision and carries the order's real
state (``answered_ns`` records it). Nothing is accepted that the book would refuse: buying
power, duplicate client order ids and validation are checked in order, one writer. More
workers (threads or processes) were not taken: threads share the interpreter lock, so they
would stamp no earlier, and processes would need the book's state shipped to them.
"""

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, TypeVar

import pandas as pd
from aiohttp import web

from adapters.alpaca.sandbox.arrival import ArrivalStampingRunner
from adapters.alpaca.sandbox.book import Book, TradeUpdate
from adapters.alpaca.sandbox.faults import AlpacaFault, FaultSchedule
from adapters.alpaca.sandbox.market import CatalogMarket
from adapters.alpaca.sandbox.rest import OrderRequestRecord, RestApi
from adapters.alpaca.sandbox.stream import STREAM_PATH, EventRecord, TradeStream
from adapters.alpaca.sandbox.wire import order_json
from adapters.loopback import LoopbackServer
from adapters.polygon.sandbox.clock import SimClock
from catalog.sessions import load_calendar, session_bounds

_PACED_POLL_SECS = 0.05

T = TypeVar("T")


class AlpacaSandbox(LoopbackServer):
    """A paper broker over ``market`` speaking Alpaca's wire protocol on ``host:port``."""

    name = "Alpaca"

    def __init__(
        self,
        market: CatalogMarket,
        *,
        key_id: str = "test-key",
        secret_key: str = "test-secret",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: SimClock | None = None,
        starting_cash: float = 100_000.0,
        participation: float | None = None,
        faults: Iterable[AlpacaFault] = (),
    ) -> None:
        super().__init__()
        load_calendar()  # every order looks its session up; build the calendar now
        self.market = market
        self.key_id = key_id
        self.secret_key = secret_key
        self.host = host
        self.clock = clock if clock is not None else SimClock.manual(first_session_open(market))
        self.account_id = str(uuid.uuid4())
        self._requested_port = port
        self._faults = FaultSchedule(list(faults))
        self._book = Book(
            market,
            start_ns=self.clock.now_ns(),
            starting_cash=Decimal(repr(float(starting_cash))),
            participation=participation,
        )
        self._records: list[OrderRequestRecord] = []
        self._stream = TradeStream(self._faults, key_id, secret_key, self._on_listeners)
        self._listening = threading.Condition()
        self._n_listening = 0
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._rest: RestApi | None = None
        self._paced: asyncio.Task | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def _startup(self) -> None:
        self.clock.start()
        self._rest = RestApi(
            self._book,
            self.market,
            self._faults,
            self.key_id,
            self.secret_key,
            publish=self._stream.publish,
            sync=self._sync_paced,
            records=self._records,
            account_id=self.account_id,
            passthrough_paths=frozenset({STREAM_PATH}),
        )
        app = web.Application(middlewares=[self._rest.middleware])
        app.add_routes(self._rest.routes())
        app.add_routes([web.get(STREAM_PATH, self._stream.handle)])
        self._runner = await self._listen(app, self.host, self._requested_port, ArrivalStampingRunner)
        self._port = int(self._runner.addresses[0][1])
        if not self.clock.is_manual:
            self._paced = asyncio.create_task(self._run_paced())

    async def _shutdown(self) -> None:
        assert self._rest is not None and self._runner is not None
        if self._paced is not None:
            self._paced.cancel()
            await asyncio.gather(self._paced, return_exceptions=True)
        self._rest.stopping.set()
        await self._stream.drop_all(clean=True, code=1001)
        await self._runner.cleanup()

    async def _run_paced(self) -> None:
        while True:
            await self._settle(self.clock.now_ns())
            await asyncio.sleep(_PACED_POLL_SECS)

    async def _sync_paced(self) -> None:
        """Before a REST answer, a paced clock's broker catches up with the clock."""
        if not self.clock.is_manual:
            await self._settle(self.clock.now_ns())

    async def _settle(self, upto_ns: int) -> int:
        updates: list[TradeUpdate] = self._book.advance(upto_ns)
        await self._stream.publish(updates)
        return len(updates)

    async def _market_time(self, ts_ns: int) -> int:
        if self.clock.is_manual and self.clock.now_ns() < ts_ns:
            self.clock.set_ns(ts_ns)
        return await self._settle(ts_ns)

    # -- addresses ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("sandbox not started")
        return self._port

    @property
    def base_url(self) -> str:
        """For ``TradingClient(url_override=...)``: requests go to ``{base_url}/v2/...``."""
        return f"http://{self.host}:{self.port}"

    @property
    def stream_url(self) -> str:
        """For ``TradingStream(url_override=...)``."""
        return f"ws://{self.host}:{self.port}{STREAM_PATH}"

    # -- observation ----------------------------------------------------------------------------

    @property
    def order_requests(self) -> list[OrderRequestRecord]:
        """Order-changing REST requests in arrival order, with the status answered (a copy)."""
        return list(self._records)

    @property
    def events_sent(self) -> list[EventRecord]:
        """(connection no, event, order id, sent_ns) per trade update written (a copy)."""
        return list(self._stream.events_sent)

    @property
    def pending_faults(self) -> list[tuple[AlpacaFault, int]]:
        return self._faults.pending()

    def now_ns(self) -> int:
        """The simulated instant the broker has settled to, which its answers are stamped
        with (with a shared clock in a rehearsal, the last bar close it was told about)."""
        return self._book.market_ns

    def orders(self) -> list[dict[str, Any]]:
        """Every order (legs included) as ``GET /v2/orders/{id}?nested=true`` returns it,
        in creation order."""
        return self._read(lambda: [order_json(o) for o in self._book.orders.values()])

    def positions(self) -> dict[str, tuple[Decimal, Decimal]]:
        """symbol -> (signed qty, average entry price) of the open positions."""
        return self._read(
            lambda: {
                s: (Decimal(p.qty), p.avg_entry_price)
                for s, p in self._book.positions.items()
                if p.qty != 0
            }
        )

    def cash(self) -> Decimal:
        return self._read(lambda: self._book.cash)

    def activities(self) -> list[dict[str, Any]]:
        """Fill activities in time order, as ``GET /v2/account/activities/FILL`` shows them."""
        return self._read(lambda: [a for _, a in self._book.activities])

    # -- control --------------------------------------------------------------------------------

    def add_fault(self, fault: AlpacaFault) -> None:
        self._faults.add(fault)

    def advance_to(self, ts: pd.Timestamp | str) -> int:
        """Move the manual clock to ``ts`` and settle resting orders against every bar closing
        until then, in time order; returns the number of trade updates produced."""
        if not self.clock.is_manual:
            raise RuntimeError("advance_to needs a manual clock (SimClock.manual)")
        stamp = pd.Timestamp(ts)
        if stamp.tzinfo is None:
            raise ValueError(f"advance_to needs a tz-aware timestamp, got {ts!r}")
        target = int(stamp.tz_convert("UTC").value)
        self.clock.set_ns(target)
        return self._call(self._settle(target))

    def on_market_time(self, ts_ns: int) -> None:
        """Thread-safe: settle to ``ts_ns`` (a bar close reached by a market-data sandbox) and
        wait until done; moves the broker's own manual clock forward if it is behind. Meant for
        ``PolygonSandbox.add_close_listener``."""
        self._call(self._market_time(int(ts_ns)))

    def drop_stream(self, clean: bool = False) -> int:
        """Close every stream connection now; abnormally (no close frame) unless ``clean``.
        Returns how many were open."""
        return self._call(self._stream.drop_all(clean))

    def wait_for_listeners(self, n_connections: int = 1, timeout: float = 5.0) -> None:
        """Block until ``n_connections`` authenticated connections listen to trade_updates."""
        with self._listening:
            if not self._listening.wait_for(lambda: self._n_listening >= n_connections, timeout):
                raise TimeoutError(
                    f"{self._n_listening} listening stream connection(s) after {timeout}s, "
                    f"{n_connections} expected"
                )

    @property
    def listeners(self) -> int:
        """Stream connections listening to trade_updates now."""
        with self._listening:
            return self._n_listening

    def _on_listeners(self, count: int) -> None:
        with self._listening:
            self._n_listening = count
            self._listening.notify_all()

    def _read(self, read: Callable[[], T]) -> T:
        """Run ``read`` on the loop (consistent with in-flight requests) or, stopped, here."""
        if self._loop is None or not self._loop.is_running():
            return read()

        async def on_loop() -> T:
            return read()

        return self._call(on_loop())

def first_session_open(market: CatalogMarket) -> pd.Timestamp:
    """Open of the session holding the catalog's first bar (the default clock's start)."""
    first = pd.Timestamp(market.first_close_ns(), tz="UTC")
    bounds = session_bounds(first)
    if bounds is None:
        raise ValueError(f"the catalog's first bar {first} is past the end of the calendar")
    return bounds[0]
