"""Polygon's stocks WebSocket over a catalog: the protocol, subscriptions and the publisher.

Every 1-minute catalog bar becomes, at its close, an ``AM`` message (``s``/``e`` = window
start/end in ms). ``T`` and ``Q`` are SYNTHETIC, derived from the same bar because the catalog
holds no trades or quotes: one trade at the close price for the bar's volume (``t`` = e - 1,
``i`` a per-symbol counter, ``x`` = 4, ``z`` = 1) and one quote one cent either side of the
close (size 1). In ``AM``, ``z`` (average trade size) is ``v`` because each 1m bar counts as
one trade, and ``vw``/``a`` are typical-price VWAPs (see aggregation.py). ``A`` (second
aggregates) subscriptions are acknowledged but carry no data: the catalog has no second bars.

All messages of one close instant go to a connection in ONE JSON-array frame, symbols sorted.
Each message is encoded once per close and shared by every connection that wants it, and
connections with the same subscriptions share the whole frame.
"""

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import repeat

import msgspec
import numpy as np
from aiohttp import WSMsgType, web

from adapters.polygon.sandbox.aggregation import AggSeries, session_running
from adapters.polygon.sandbox.bars import CatalogBars
from adapters.polygon.sandbox.faults import FaultSchedule
from catalog.instruments import PRICE_PRECISION

STREAM_PATH = "/stocks"
EVENTS = frozenset({"AM", "A", "T", "Q"})
DATA_EVENTS = ("AM", "T", "Q")  # message order within one symbol of a frame
_NANOS_PER_MILLI = 1_000_000
_encoder = msgspec.json.Encoder()


class AggregateMessage(msgspec.Struct, tag_field="ev", tag="AM"):
    sym: str
    v: float
    av: float
    op: float
    vw: float
    o: float
    c: float
    h: float
    l: float  # Polygon's field name (low)
    a: float
    z: float
    s: int
    e: int


class TradeMessage(msgspec.Struct, tag_field="ev", tag="T"):
    sym: str
    x: int
    i: str
    z: int
    p: float
    s: float
    t: int


class QuoteMessage(msgspec.Struct, tag_field="ev", tag="Q"):
    sym: str
    bx: int
    bp: float
    bs: int
    ax: int
    ap: float
    as_: int = msgspec.field(name="as")
    t: int = 0
    z: int = 1


class ClientAction(msgspec.Struct):
    action: str
    params: str = ""


@dataclass(frozen=True)
class FrameRecord:
    """One data frame written to one connection (``sent_ns`` = time.time_ns() just before)."""

    close_ns: int
    sent_ns: int
    n_messages: int
    connection: int


@dataclass(frozen=True)
class ConnectionRecord:
    """One WebSocket handshake: accepted (``refused`` False) or answered with HTTP 503."""

    connection: int
    opened_ns: int
    refused: bool


def _status(status: str, message: str) -> bytes:
    return _encoder.encode([{"ev": "status", "status": status, "message": message}])


CONNECTED = _status("connected", "Connected Successfully")
AUTH_SUCCESS = _status("auth_success", "authenticated")
AUTH_FAILED = _status("auth_failed", "authentication failed")
NOT_AUTHORIZED = _status("error", "not authorized")
INVALID_MESSAGE = _status("error", "invalid message")


class SymbolFeed:
    """One symbol's 1m bars with the session running totals an AM message needs."""

    def __init__(self, symbol: str, minutes: AggSeries) -> None:
        self.symbol = symbol
        self.bars = minutes
        self.close_ns = minutes.end_ns
        self.end_ms = minutes.end_ns // _NANOS_PER_MILLI
        accumulated, self.session_open, self.session_vwap = session_running(minutes)
        whole = minutes.integral_volume
        self.volume = minutes.volume.astype(np.int64) if whole else minutes.volume
        self.accumulated = accumulated.astype(np.int64) if whole else accumulated
        self._trade_id = 0

    def index_range(self, after_ns: int, upto_ns: int) -> tuple[int, int]:
        """Rows whose close is in (after_ns, upto_ns]."""
        return (
            int(np.searchsorted(self.close_ns, after_ns, side="right")),
            int(np.searchsorted(self.close_ns, upto_ns, side="right")),
        )

    def next_close_after(self, ts_ns: int) -> int | None:
        i = int(np.searchsorted(self.close_ns, ts_ns, side="right"))
        return int(self.close_ns[i]) if i < len(self.close_ns) else None

    def encode(self, event: str, first: int, last: int) -> list[bytes]:
        """The ``event`` messages of rows [first, last), one encoded JSON object each.

        Built column-wise from array slices: per-row numpy scalar access would cost more
        than the encoding itself."""
        b = self.bars
        n = last - first
        sym = repeat(self.symbol, n)
        volume = self.volume[first:last].tolist()
        close = b.close[first:last].tolist()
        if event == "AM":
            messages = map(
                AggregateMessage,
                sym,
                volume,
                self.accumulated[first:last].tolist(),
                self.session_open[first:last].tolist(),
                b.vwap[first:last].tolist(),
                b.open[first:last].tolist(),
                close,
                b.high[first:last].tolist(),
                b.low[first:last].tolist(),
                self.session_vwap[first:last].tolist(),
                volume,
                b.start_ms[first:last].tolist(),
                self.end_ms[first:last].tolist(),
            )
        else:
            stamps = (self.end_ms[first:last] - 1).tolist()
            if event == "T":
                ids = map(str, range(self._trade_id + 1, self._trade_id + n + 1))
                self._trade_id += n
                messages = map(TradeMessage, sym, repeat(4), ids, repeat(1), close, volume, stamps)
            else:
                bids = np.round(b.close[first:last] - 0.01, PRICE_PRECISION).tolist()
                asks = np.round(b.close[first:last] + 0.01, PRICE_PRECISION).tolist()
                one, four = repeat(1), repeat(4)
                messages = map(QuoteMessage, sym, four, bids, one, four, asks, one, stamps, one)
        return [_encoder.encode(m) for m in messages]


@dataclass(eq=False)
class Connection:
    id: int
    ws: web.WebSocketResponse
    transport: asyncio.BaseTransport | None
    authenticated: bool = False
    subscriptions: set[str] = field(default_factory=set)
    drop_budget: int | None = None  # data messages still to send before a scripted drop
    drop_clean: bool = False
    stalled_until: float = 0.0  # time.monotonic() until which data is discarded
    closed: bool = False

    @property
    def subscribed(self) -> bool:
        return self.authenticated and bool(self.subscriptions) and not self.closed


# one symbol's bar in a publish: (symbol, row offset in the encoded lists, event -> messages)
_Row = tuple[str, int, dict[str, list[bytes]]]


def _wants(subscriptions: frozenset[str], event: str, symbol: str) -> bool:
    return f"{event}.{symbol}" in subscriptions or f"{event}.*" in subscriptions


class StreamHub:
    """The WebSocket endpoint and the publisher; lives on the sandbox's event loop."""

    def __init__(
        self,
        bars: CatalogBars,
        faults: FaultSchedule,
        api_key: str,
        published_ns: int | None,
        on_change: Callable[[int], None],
        withheld_bars: frozenset[tuple[str, int]] = frozenset(),
    ) -> None:
        self.bars = bars
        self.withheld_bars = withheld_bars
        self.faults = faults
        self.api_key = api_key
        self.frames_sent: list[FrameRecord] = []
        self.connections: list[ConnectionRecord] = []
        self._published_ns = published_ns
        self._on_change = on_change
        self._live: dict[int, Connection] = {}
        self._feeds: dict[str, SymbolFeed] = {}
        self._publish_lock = asyncio.Lock()
        self._load_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self.close_listeners: list[Callable[[int], None]] = []

    # -- protocol -------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        number = len(self.connections) + 1
        if self.faults.take_ws(frozenset({"refuse"})) is not None:
            self.connections.append(ConnectionRecord(number, time.time_ns(), refused=True))
            body = _encoder.encode(
                {"status": "ERROR", "message": "service unavailable (sandbox fault)"}
            )
            return web.Response(status=503, body=body, content_type="application/json")
        self.connections.append(ConnectionRecord(number, time.time_ns(), refused=False))
        ws = web.WebSocketResponse(compress=False, timeout=2.0)
        await ws.prepare(request)
        conn = Connection(number, ws, request.transport)
        self._live[number] = conn
        try:
            await ws.send_frame(CONNECTED, WSMsgType.TEXT)
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self._on_message(conn, msg.data)
        except ConnectionError:
            pass  # the peer went away while we answered; the finally block forgets it
        finally:
            conn.closed = True
            self._live.pop(number, None)
            self._notify()
        return ws

    async def _on_message(self, conn: Connection, data: str | bytes) -> None:
        try:
            action = msgspec.json.decode(data, type=ClientAction)
        except msgspec.DecodeError:
            await conn.ws.send_frame(INVALID_MESSAGE, WSMsgType.TEXT)
            return
        if action.action == "auth":
            if action.params != self.api_key:
                await conn.ws.send_frame(AUTH_FAILED, WSMsgType.TEXT)
                await conn.ws.close(code=1008, message=b"authentication failed")
                return
            conn.authenticated = True
            await conn.ws.send_frame(AUTH_SUCCESS, WSMsgType.TEXT)
        elif action.action in ("subscribe", "unsubscribe"):
            if not conn.authenticated:
                await conn.ws.send_frame(NOT_AUTHORIZED, WSMsgType.TEXT)
                return
            await conn.ws.send_frame(self._change_subscriptions(conn, action), WSMsgType.TEXT)
            if action.action == "subscribe":  # read the bars now, not at the first publish
                await self._load_feeds(sorted(self._wanted_events()))
            self._notify()  # after the load: a counted subscriber is ready to be published to
        else:
            await conn.ws.send_frame(
                _status("error", f"unknown action: {action.action}"), WSMsgType.TEXT
            )

    def _change_subscriptions(self, conn: Connection, action: ClientAction) -> bytes:
        replies = []
        for topic in (t.strip() for t in action.params.split(",")):
            if not topic:
                continue
            event, _, symbol = topic.partition(".")
            if event not in EVENTS or not symbol:
                replies.append(
                    {"ev": "status", "status": "error", "message": f"invalid subscription: {topic}"}
                )
            elif action.action == "subscribe":
                conn.subscriptions.add(topic)
                replies.append(
                    {"ev": "status", "status": "success", "message": f"subscribed to: {topic}"}
                )
            else:
                conn.subscriptions.discard(topic)
                replies.append(
                    {"ev": "status", "status": "success", "message": f"unsubscribed to: {topic}"}
                )
        return _encoder.encode(replies)

    def _notify(self) -> None:
        self._changed.set()
        self._on_change(sum(1 for c in self._live.values() if c.subscribed))

    # -- publishing -----------------------------------------------------------------------------

    async def publish_until(self, upto_ns: int) -> int:
        """Send every bar closing in (last published, upto_ns], close instant by close
        instant; returns the number of data messages written."""
        async with self._publish_lock:
            after = self._published_ns
            self._published_ns = upto_ns if after is None else max(after, upto_ns)
            if after is None or upto_ns <= after:
                return 0
            wanted = self._wanted_events()
            await self._load_feeds(sorted(wanted))
            instants: dict[int, list[_Row]] = defaultdict(list)
            for symbol in sorted(wanted):
                feed = self._feeds[symbol]
                first, last = feed.index_range(after, upto_ns)
                if first == last:
                    continue
                events = [e for e in DATA_EVENTS if e in wanted[symbol]]
                encoded = {e: feed.encode(e, first, last) for e in events}
                for k, close in enumerate(feed.close_ns[first:last].tolist()):
                    if (symbol, close) not in self.withheld_bars:
                        instants[close].append((symbol, k, encoded))
            selections: dict[tuple[frozenset[str], str], tuple[str, ...]] = {}
            sent = 0
            for close in sorted(instants):
                self._market_reached(close)
                sent += await self._publish_close(close, instants[close], selections)
            if not instants or max(instants) < upto_ns:
                self._market_reached(upto_ns)
            return sent

    def _market_reached(self, ts_ns: int) -> None:
        """Tell the listeners (a paper broker) that simulated time reached ``ts_ns`` before
        the bars closing then go out: like an exchange, the broker settles its resting orders
        against a bar before a strategy can react to that bar."""
        for listener in self.close_listeners:
            listener(ts_ns)

    async def next_close_after(self, ts_ns: int) -> int | None:
        symbols = sorted(self._wanted_events())
        await self._load_feeds(symbols)
        closes = [
            c for c in (self._feeds[s].next_close_after(ts_ns) for s in symbols) if c is not None
        ]
        return min(closes, default=None)

    async def wait_for_change(self, timeout: float) -> None:
        """Sleep up to ``timeout`` real seconds, less if subscriptions change."""
        self._changed.clear()
        try:  # not wait_for: Python 3.11's swallows a cancel that lands as the event is set
            async with asyncio.timeout(timeout):
                await self._changed.wait()
        except TimeoutError:
            pass  # nothing changed: the caller re-reads the clock either way

    def _wanted_events(self) -> dict[str, set[str]]:
        """Catalog symbol -> the data events some subscribed connection wants of it."""
        wanted: dict[str, set[str]] = defaultdict(set)
        for conn in self._live.values():
            if not conn.subscribed:
                continue
            for topic in conn.subscriptions:
                event, _, symbol = topic.partition(".")
                if event not in DATA_EVENTS:
                    continue
                for name in self.bars.symbols if symbol == "*" else (symbol,):
                    if self.bars.has(name):
                        wanted[name].add(event)
        return wanted

    async def _load_feeds(self, symbols: list[str]) -> None:
        """Read the feeds a subscription needs (in a worker thread), once; the lock makes a
        publish wait for a load that a subscription already started."""
        async with self._load_lock:
            missing = [s for s in symbols if s not in self._feeds]
            if missing:
                loaded = await asyncio.to_thread(
                    lambda: {s: SymbolFeed(s, self.bars.series(s)) for s in missing}
                )
                self._feeds.update(loaded)

    async def _publish_close(
        self,
        close_ns: int,
        rows: list["_Row"],
        selections: dict[tuple[frozenset[str], str], tuple[str, ...]],
    ) -> int:
        """One frame per connection for this close; connections with the same subscriptions
        share the frame. ``selections`` memoises which events a subscription set takes of a
        symbol across the closes of one publish."""
        groups: dict[frozenset[str], list[Connection]] = defaultdict(list)
        for conn in list(self._live.values()):
            if conn.subscribed:
                groups[frozenset(conn.subscriptions)].append(conn)
        sent = 0
        for subscriptions, conns in groups.items():
            fragments = []
            for symbol, k, encoded in rows:
                chosen = selections.get((subscriptions, symbol))
                if chosen is None:
                    chosen = tuple(e for e in encoded if _wants(subscriptions, e, symbol))
                    selections[(subscriptions, symbol)] = chosen
                fragments.extend(encoded[e][k] for e in chosen)
            if not fragments:
                continue
            frame = b"[" + b",".join(fragments) + b"]"
            for conn in conns:
                sent += await self._send(conn, close_ns, fragments, frame)
        return sent

    async def _send(
        self, conn: Connection, close_ns: int, fragments: list[bytes], frame: bytes
    ) -> int:
        """Write one frame to one connection, applying the stall and drop faults."""
        if conn.closed or conn.stalled_until > time.monotonic():
            return 0
        kinds = (
            frozenset({"stall"}) if conn.drop_budget is not None else frozenset({"stall", "drop"})
        )
        fault = self.faults.take_ws(kinds)
        if fault is not None and fault.kind == "stall":
            conn.stalled_until = time.monotonic() + fault.stall_secs
            return 0
        if fault is not None:
            conn.drop_budget, conn.drop_clean = fault.after_messages, fault.clean
        if conn.drop_budget is not None and conn.drop_budget < len(fragments):
            fragments = fragments[: conn.drop_budget]
            frame = b"[" + b",".join(fragments) + b"]"
        if fragments:
            self.frames_sent.append(FrameRecord(close_ns, time.time_ns(), len(fragments), conn.id))
            try:
                await conn.ws.send_frame(frame, WSMsgType.TEXT)
            except ConnectionError:
                conn.closed = True
                return 0
        if conn.drop_budget is not None:
            conn.drop_budget -= len(fragments)
            if conn.drop_budget == 0:
                await self.close(conn, clean=conn.drop_clean)
        return len(fragments)

    # -- closing --------------------------------------------------------------------------------

    async def close(self, conn: Connection, clean: bool, code: int = 1000) -> None:
        """Close cleanly (close frame with ``code``) or abnormally (the TCP connection is
        aborted without a close frame, as when a network path dies)."""
        conn.closed = True
        self._notify()  # count it gone now, not when its handler notices
        if clean:
            await conn.ws.close(code=code)
        elif conn.transport is not None:
            conn.transport.abort()

    async def drop_all(self, clean: bool, code: int = 1000) -> int:
        conns = list(self._live.values())
        await asyncio.gather(*(self.close(conn, clean, code) for conn in conns))
        return len(conns)
