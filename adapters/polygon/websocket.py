"""A supervised Polygon WebSocket session: the massive SDK for the wire, our loop for faults.

Why not just ``WebSocketClient.connect``: the SDK reconnects after an abnormal close but
returns quietly after a clean one, retries forever (silently) when nothing listens, and a
malformed frame raises out of it. A trading node needs one behaviour for all of them: log,
back off with jitter, reconnect, re-authenticate, re-subscribe, and tell the data client so it
can backfill what was missed. Only a rejected API key is final: retrying cannot fix it.

Each connection is a fresh SDK client built with the current topic set (the SDK subscribes to
them right after auth) and ``max_reconnects=0`` (any abnormal close ends the SDK call, so this
loop is the only one deciding when to retry).
"""

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import msgspec
import pandas as pd
from massive import WebSocketClient
from massive.exceptions import AuthError
from nautilus_trader.common.component import Logger
from websockets.exceptions import ConnectionClosedError

from adapters.polygon.config import PolygonDataClientConfig
from adapters.polygon.parsing.stream import MalformedFrameError
from catalog.sessions import in_regular_session

FrameHandler = Callable[[str | bytes, int], None]
StatusListener = Callable[["StreamStatus", "str | None"], None]


class StreamStatus(Enum):
    IDLE = "idle"  # not started
    CONNECTING = "connecting"  # first connection under way
    CONNECTED = "connected"  # authenticated; frames flow to on_frame
    RECONNECTING = "reconnecting"  # lost the session (close, refusal, bad frame), retrying
    STALE = "stale"  # the watchdog saw silence in session; reconnecting
    FAILED = "failed"  # authentication rejected, or a bug crashed every session; no retry
    STOPPED = "stopped"


class StreamAuthError(RuntimeError):
    """Polygon rejected the API key. Fatal: every retry would be rejected as well."""


@dataclass
class StreamCounters:
    attempts: int = 0  # connections dialled
    connections: int = 0  # sessions that got past authentication
    reconnects: int = 0  # of those, the ones after the first
    frames: int = 0  # frames handed to on_frame
    malformed: int = 0
    stale_events: int = 0


class _SessionEnded(Exception):
    """Internal: why a session was abandoned by the supervisor itself (timeout, stale)."""


class _HandshakeCodec:
    """Handed to the SDK as ``custom_json``. With ``raw=True`` the SDK decodes only the
    handshake frames (greeting and auth reply) with it, so this is where the auth result
    becomes visible before any data frame arrives: the moment to start the session."""

    def __init__(self, on_authenticated: Callable[[], None]) -> None:
        self._on_authenticated = on_authenticated

    def loads(self, raw: str | bytes) -> list[dict[str, Any]]:
        try:
            messages = msgspec.json.decode(raw, type=list[dict[str, Any]])
        except msgspec.DecodeError as exc:
            raise MalformedFrameError(str(exc), raw) from exc
        if not messages:
            raise MalformedFrameError("empty handshake frame", raw)
        if any(m.get("status") == "auth_success" for m in messages):
            self._on_authenticated()
        return messages

    @staticmethod
    def dumps(obj: object) -> str:
        return msgspec.json.encode(obj).decode()


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half the step is fixed, half random, so many
    clients dropped at once do not reconnect in lock-step, yet none retries immediately."""
    step = min(maximum, initial * (2 ** min(attempt, 32)))
    return step / 2 + rng.uniform(0, step / 2)


def _in_session(now_ns: int) -> bool:
    return bool(in_regular_session(pd.DatetimeIndex([pd.Timestamp(now_ns, tz="UTC")]))[0])


class PolygonStream:
    """Keeps one authenticated Polygon stocks session alive for the current topic set.

    ``on_frame(raw, received_ns)`` gets every frame after authentication (data and status,
    raw, stamped with ``now_ns()`` on receipt) and may raise MalformedFrameError, which ends
    the session like a disconnect. ``on_reconnected()`` runs synchronously when a new session
    authenticates (not the first one), before any of its frames reach ``on_frame``, so the
    caller can start holding live data while it backfills the gap.
    """

    def __init__(
        self,
        api_key: str,
        config: PolygonDataClientConfig,
        on_frame: FrameHandler,
        on_reconnected: Callable[[], None],
        now_ns: Callable[[], int] = time.time_ns,
        on_status: StatusListener | None = None,
        logger: Logger | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._api_key = api_key
        self._config = config
        self._on_frame = on_frame
        self._on_reconnected = on_reconnected
        self._now_ns = now_ns
        self._status_listeners: list[StatusListener] = [on_status] if on_status else []
        self._log = logger or Logger(type(self).__name__)
        self._rng = rng or random.Random()
        self._topics: set[str] = set()
        self._client: WebSocketClient | None = None
        self._supervisor: asyncio.Task | None = None
        self._established = asyncio.Event()
        self._session_authenticated = False
        self._authenticated_at = 0.0
        self._last_message = time.monotonic()
        self._status = StreamStatus.IDLE
        self._last_error: str | None = None
        self.counters = StreamCounters()

    # -- public state ------------------------------------------------------------------------

    @property
    def status(self) -> StreamStatus:
        return self._status

    @property
    def last_error(self) -> str | None:
        """The most recent fault in words (as logged); kept after recovery."""
        return self._last_error

    def _set_status(self, status: StreamStatus, reason: str | None = None) -> None:
        if reason is not None:
            self._last_error = reason
        if status is self._status:
            return
        self._status = status
        for listener in self._status_listeners:
            listener(status, reason)

    def add_status_listener(self, listener: StatusListener) -> None:
        """Also call ``listener(status, reason)`` on every status change (on the loop)."""
        self._status_listeners.append(listener)

    @property
    def is_running(self) -> bool:
        """True while the supervisor runs (connected or retrying); False once stopped or
        failed."""
        return self._supervisor is not None and not self._supervisor.done()

    @property
    def topics(self) -> frozenset[str]:
        return frozenset(self._topics)

    # -- subscriptions -----------------------------------------------------------------------

    def subscribe(self, *topics: str) -> None:
        """Add topics (e.g. ``AM.AAPL``). A live session applies them on the SDK's next
        one-second tick; every later session subscribes to them at once."""
        new = set(topics) - self._topics
        if not new:
            return
        if not self._topics:
            self._last_message = time.monotonic()  # silence before subscribing is not staleness
        self._topics |= new
        if self._client is not None:
            self._client.subscribe(*sorted(new))

    def unsubscribe(self, *topics: str) -> None:
        gone = set(topics) & self._topics
        if not gone:
            return
        self._topics -= gone
        if self._client is not None:
            self._client.unsubscribe(*sorted(gone))

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start supervising on the running event loop (idempotent)."""
        if self._supervisor is None or self._supervisor.done():
            self._set_status(StreamStatus.CONNECTING)
            self._supervisor = asyncio.get_running_loop().create_task(
                self._supervise(), name="polygon-stream"
            )

    async def wait_connected(self, timeout: float) -> bool:
        """Wait for the first authenticated session. Raises StreamAuthError if the key is
        rejected; False if nothing authenticated within ``timeout`` (retries go on)."""
        established = asyncio.ensure_future(self._established.wait())
        waiters: set[asyncio.Future] = {established}
        if self._supervisor is not None:
            waiters.add(self._supervisor)
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            established.cancel()
        if self._status is StreamStatus.FAILED:
            raise StreamAuthError(self._last_error)
        return self._established.is_set()

    async def stop(self) -> None:
        if self._supervisor is not None and not self._supervisor.done():
            self._supervisor.cancel()
            await asyncio.wait({self._supervisor})
        self._supervisor = None
        if self._status is not StreamStatus.FAILED:
            self._set_status(StreamStatus.STOPPED)

    # -- supervision -------------------------------------------------------------------------

    async def _supervise(self) -> None:
        """Reconnect forever except after a rejected key or ``max_consecutive_crashes``
        sessions in a row ending in an unexpected exception. The backoff resets only after a
        session that stayed up at least as long as the longest backoff, so a server that
        accepts and drops at once is not hammered at the shortest delay."""
        failures = crashes = 0
        while True:
            try:
                reason = await self._run_session()
                crashes = 0
            except StreamAuthError as exc:
                self._fail(str(exc))
                return
            except Exception as exc:  # noqa: BLE001 - supervisor: logged with traceback, reconnects
                crashes += 1
                reason = f"unexpected error {exc!r}"
                self._log.exception("Polygon stream session crashed", exc)
                if crashes >= self._config.max_consecutive_crashes:
                    self._fail(
                        f"Polygon stream: {crashes} sessions in a row crashed (last: {exc!r}); "
                        "a bug, not the network: giving up, no market data from here on"
                    )
                    return
            lasted = time.monotonic() - self._authenticated_at
            if self._session_authenticated and lasted >= self._config.reconnect_max_delay_secs:
                failures = 0
            delay = backoff_delay(
                failures,
                self._config.reconnect_initial_delay_secs,
                self._config.reconnect_max_delay_secs,
                self._rng,
            )
            failures += 1
            if self._status is StreamStatus.STALE:
                self._last_error = reason
            else:
                self._set_status(StreamStatus.RECONNECTING, reason)
            self._log.warning(f"Polygon stream: {reason}; reconnecting in {delay:.2f}s")
            await asyncio.sleep(delay)

    async def _run_session(self) -> str:
        """One connection from dial to end; returns why it ended (always a reason to retry)."""
        self._session_authenticated = False
        self.counters.attempts += 1
        client = WebSocketClient(
            api_key=self._api_key,
            feed=self._config.ws_feed,
            market="stocks",
            raw=True,
            secure=self._config.secure,
            max_reconnects=0,
            subscriptions=sorted(self._topics),
            custom_json=_HandshakeCodec(self._on_authenticated),
        )
        self._client = client
        task = asyncio.get_running_loop().create_task(client.connect(self._process))
        try:
            await self._watch(task)
            return self._outcome(task)
        except _SessionEnded as ended:
            return str(ended)
        finally:
            self._client = None
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
            if client.websocket is not None:
                await client.close()

    async def _watch(self, task: asyncio.Task) -> None:
        """Wait for the SDK task to end while enforcing the connect timeout and the stale-feed
        watchdog; raises _SessionEnded when the supervisor itself gives up on the session."""
        cfg = self._config
        tick = max(0.01, min(1.0, cfg.stale_after_secs / 4, cfg.connect_timeout_secs / 4))
        started = time.monotonic()
        while not task.done():
            await asyncio.wait({task}, timeout=tick)
            if task.done():
                return
            now = time.monotonic()
            if not self._session_authenticated:
                if now - started >= cfg.connect_timeout_secs:
                    raise _SessionEnded(
                        f"no authenticated session within {cfg.connect_timeout_secs:g}s "
                        "(connection refused or hanging)"
                    )
                continue
            silent = now - self._last_message
            if self._topics and silent >= cfg.stale_after_secs and self._stale_check_applies():
                message = f"Polygon feed stale: no message for {silent:.1f}s"
                self._log.error(message)
                self.counters.stale_events += 1
                self._set_status(StreamStatus.STALE, message)
                raise _SessionEnded(message)

    def _stale_check_applies(self) -> bool:
        return self._config.stale_check_outside_session or _in_session(self._now_ns())

    def _outcome(self, task: asyncio.Task) -> str:
        exc = task.exception()
        if exc is None:
            return "server closed the connection cleanly"
        if isinstance(exc, AuthError):
            raise StreamAuthError(f"Polygon authentication failed: {exc}") from exc
        if isinstance(exc, MalformedFrameError):
            self.counters.malformed += 1
            self._log.error(f"Polygon stream: {exc}")
            return f"malformed frame ({exc.reason})"
        if isinstance(exc, ConnectionClosedError):
            return f"connection closed abnormally ({exc})"
        if isinstance(exc, OSError):
            return f"connection error ({exc!r})"
        raise exc

    def _fail(self, message: str) -> None:
        self._log.error(message)
        self._set_status(StreamStatus.FAILED, message)

    # -- SDK callbacks (run on the event loop, inside the SDK's connect coroutine) ----------

    def _on_authenticated(self) -> None:
        self._session_authenticated = True
        self._authenticated_at = self._last_message = time.monotonic()
        self.counters.connections += 1
        self._set_status(StreamStatus.CONNECTED)
        first = not self._established.is_set()
        self._established.set()
        if first:
            self._log.info(f"Polygon stream connected to {self._config.ws_feed}")
            return
        self.counters.reconnects += 1
        self._log.info(f"Polygon stream reconnected (reconnect #{self.counters.reconnects})")
        self._on_reconnected()

    async def _process(self, raw: str | bytes) -> None:
        self._last_message = time.monotonic()
        self.counters.frames += 1
        self._on_frame(raw, self._now_ns())
