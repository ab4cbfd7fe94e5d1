"""The trade_updates WebSocket (``/stream``): authentication, listening, and ordered delivery.

Frames go out as binary JSON, as Alpaca's paper stream sends them (alpaca-py accepts text and
binary alike). Every update is sent to every authenticated connection that listens to
``trade_updates``, in the order the book produced them; a lock keeps the updates of
concurrent requests from interleaving. The stream faults act here: ``drop_before_fill`` closes
the connections instead of sending a fill, ``drop_stream`` closes them after an event,
``reject_auth`` refuses an authentication however right the key is.

The updates of one publish (an order's ``new`` and ``fill``) leave in one TCP segment where
the platform allows (``TCP_CORK`` around the writes): the same frames, but the loop pays the
loopback's transmit and the listener's wake-up once per order, not once per frame.
"""

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from aiohttp import WSMsgType, web

from adapters.alpaca.sandbox.book import TradeUpdate
from adapters.alpaca.sandbox.faults import FaultSchedule

STREAM_PATH = "/stream"
FILL_EVENTS = frozenset({"fill", "partial_fill"})


class EventRecord(NamedTuple):
    """One trade update written to one connection."""

    connection: int
    event: str
    order_id: str
    sent_ns: int  # time.time_ns()


@dataclass(eq=False)
class Connection:
    id: int
    ws: web.WebSocketResponse
    transport: Any
    authenticated: bool = False
    listening: bool = False
    closed: bool = False


@contextmanager
def _corked(conns: list[Connection]) -> Iterator[None]:
    """Hold the writes to ``conns`` in the kernel until the block ends (Linux ``TCP_CORK``)."""
    cork = getattr(socket, "TCP_CORK", None)
    socks = [c.transport.get_extra_info("socket") for c in conns if c.transport is not None] if cork else []
    socks = [s for s in socks if s is not None and s.fileno() >= 0]
    for sock in socks:
        sock.setsockopt(socket.IPPROTO_TCP, cork, 1)
    try:
        yield
    finally:
        for sock in socks:
            if sock.fileno() >= 0:
                sock.setsockopt(socket.IPPROTO_TCP, cork, 0)


def _frame(stream: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"stream": stream, "data": data}, separators=(",", ":")).encode()


class TradeStream:
    """The WebSocket endpoint and the publisher; lives on the sandbox's event loop."""

    def __init__(
        self,
        faults: FaultSchedule,
        key_id: str,
        secret_key: str,
        on_change: Callable[[int], None],
    ) -> None:
        self.faults = faults
        self._on_change = on_change
        self.key_id = key_id
        self.secret_key = secret_key
        self.events_sent: list[EventRecord] = []
        self.connections_opened = 0
        self._live: dict[int, Connection] = {}
        self._lock = asyncio.Lock()

    @property
    def listeners(self) -> int:
        return sum(1 for c in self._live.values() if c.listening and not c.closed)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.connections_opened += 1
        ws = web.WebSocketResponse(compress=False, timeout=2.0)
        await ws.prepare(request)
        conn = Connection(self.connections_opened, ws, request.transport)
        self._live[conn.id] = conn
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self._on_message(conn, msg.data)
        except ConnectionError:
            pass  # the peer went away while we answered; the finally block forgets it
        finally:
            conn.closed = True
            self._live.pop(conn.id, None)
            self._on_change(self.listeners)
        return ws

    async def _on_message(self, conn: Connection, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            await self._send(conn, _frame("error", {"error_message": "invalid JSON message"}))
            return
        action = message.get("action") if isinstance(message, dict) else None
        data = message.get("data") if isinstance(message, dict) else None
        data = data if isinstance(data, dict) else {}
        if action in ("authenticate", "auth"):
            key = data.get("key_id", message.get("key"))
            secret = data.get("secret_key", message.get("secret"))
            refused = self.faults.take("reject_auth") is not None
            if refused or key != self.key_id or secret != self.secret_key:
                reply = {"action": "authenticate", "status": "unauthorized"}
                await self._send(conn, _frame("authorization", reply))
                await conn.ws.close(code=1008, message=b"unauthorized")
                return
            conn.authenticated = True
            reply = {"action": "authenticate", "status": "authorized"}
            await self._send(conn, _frame("authorization", reply))
        elif action == "listen":
            if not conn.authenticated:
                reply = {"action": "listen", "status": "unauthorized"}
                await self._send(conn, _frame("authorization", reply))
                return
            streams = data.get("streams")
            streams = (
                [s for s in streams if s == "trade_updates"] if isinstance(streams, list) else []
            )
            conn.listening = bool(streams)
            await self._send(conn, _frame("listening", {"streams": streams}))
            self._on_change(self.listeners)
        else:
            await self._send(conn, _frame("error", {"error_message": f"unknown action {action!r}"}))

    async def publish(self, updates: list[TradeUpdate]) -> None:
        """Send ``updates`` in order to every listening connection, applying stream faults."""
        if not updates:
            return
        async with self._lock:
            with _corked([c for c in self._live.values() if c.listening and not c.closed]):
                await self._publish(updates)

    async def _publish(self, updates: list[TradeUpdate]) -> None:
        for update in updates:
            listeners = [c for c in self._live.values() if c.listening and not c.closed]
            if not listeners:
                continue  # nobody hears it, like a real disconnected client
            if update.event in FILL_EVENTS:
                fault = self.faults.take("drop_before_fill")
                if fault is not None:
                    await self._drop(listeners, fault.clean)
                    continue
            frame = _frame("trade_updates", update.data)
            for conn in listeners:
                if await self._send(conn, frame):
                    self.events_sent.append(
                        EventRecord(conn.id, update.event, update.order_id, time.time_ns())
                    )
            fault = self.faults.take("drop_stream")
            if fault is not None:
                await self._drop(listeners, fault.clean)

    async def drop_all(self, clean: bool, code: int = 1000) -> int:
        conns = [c for c in self._live.values() if not c.closed]
        await self._drop(conns, clean, code)
        return len(conns)

    async def _drop(self, conns: list[Connection], clean: bool, code: int = 1000) -> None:
        """Close cleanly (close frame) or abnormally (TCP aborted, as when a network dies)."""
        for conn in conns:
            conn.closed = True
            self._on_change(self.listeners)
            if clean:
                await conn.ws.close(code=code)
            elif conn.transport is not None:
                conn.transport.abort()

    @staticmethod
    async def _send(conn: Connection, frame: bytes) -> bool:
        if conn.closed:
            return False
        try:
            await conn.ws.send_bytes(frame)
        except ConnectionError:
            conn.closed = True
            return False
        return True
