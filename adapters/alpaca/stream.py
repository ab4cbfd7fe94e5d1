"""A supervised trade_updates session on the ``websockets`` library, speaking Alpaca's
protocol (authenticate, listen, trade_updates; see reference/wire-protocols.md).

Why not alpaca-py's ``TradingStream``: it reconnects by itself but offers no public way to
learn that a (re)connection was established, which the execution client needs to reconcile
over REST after every reconnect (events sent while disconnected are lost); a rejected key
is caught inside its run loop, logged and retried forever without telling the caller; and it
polls its socket with a 5 s timeout from its own ``run()`` event loop. This client does the
same protocol in about a hundred lines and reports what the execution client needs:
``on_reconnected()`` once a new session is authenticated and listening, ``on_lost(reason)``
when a listening session ends, and ``StreamAuthError`` when the key pair is rejected on the
first connection (fatal: the node must not start). A key rejected on a reconnect (revoked or
rotated while the node runs) is logged as an error and retried like everything else
(refused or dropped connections, a handshake that hangs, a malformed frame): with
exponential backoff and jitter, for as long as the node runs, since open positions and
their orders still need the stream.
"""

import asyncio
import json
import random
import time
from collections.abc import Callable
from typing import Any

from nautilus_trader.common.component import Logger
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from adapters.alpaca.common import AlpacaCredentials
from adapters.alpaca.http import backoff_delay

PING_INTERVAL_SECS = 10.0
PING_TIMEOUT_SECS = 20.0


class StreamAuthError(RuntimeError):
    """Alpaca rejected the key pair on the stream."""


class StreamProtocolError(RuntimeError):
    """A frame that is not Alpaca's protocol; ends the session (a reconnect reconciles)."""


class AlpacaTradeStream:
    """Keeps one authenticated trade_updates session alive.

    ``on_update(data)`` gets the ``data`` object of every trade_updates message, on the event
    loop, in arrival order. ``on_reconnected()`` runs when a session after the first one is
    listening, before any of its updates are handed over; ``on_lost(reason)`` when a session
    that was listening ends (updates go unseen until ``on_reconnected``). ``on_update_failed()`` runs after
    ``on_update`` raised (logged with its traceback): that update is lost to the caller,
    which must recover it over REST; the stream goes on."""

    def __init__(
        self,
        url: str,
        credentials: AlpacaCredentials,
        on_update: Callable[[dict[str, Any]], None],
        on_reconnected: Callable[[], None],
        on_update_failed: Callable[[], None],
        on_lost: Callable[[str], None],
        connect_timeout_secs: float = 10.0,
        reconnect_initial_delay_secs: float = 0.5,
        reconnect_max_delay_secs: float = 30.0,
        logger: Logger | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self._credentials = credentials
        self._on_update = on_update
        self._on_reconnected = on_reconnected
        self._on_update_failed = on_update_failed
        self._on_lost = on_lost
        self._connect_timeout = connect_timeout_secs
        self._delays = (reconnect_initial_delay_secs, reconnect_max_delay_secs)
        self._log = logger or Logger(type(self).__name__)
        self._rng = rng or random.Random()
        self._supervisor: asyncio.Task | None = None
        self._listening = asyncio.Event()
        self._ws: ClientConnection | None = None
        self.error: str | None = None  # why the stream failed for good (a rejected key)
        self.attempts = 0  # connections dialled
        self.connections = 0  # sessions that got to listening
        self.updates = 0

    @property
    def is_connected(self) -> bool:
        return self._ws is not None and self._listening.is_set()

    @property
    def is_supervised(self) -> bool:
        """False once the supervisor has given up for good (a key rejected on the first
        connection) or was stopped: nothing will reconnect."""
        return self._supervisor is not None and not self._supervisor.done()

    def start(self) -> None:
        """Start supervising on the running event loop (idempotent)."""
        if self._supervisor is None or self._supervisor.done():
            self._supervisor = asyncio.get_running_loop().create_task(
                self._supervise(), name="alpaca-trade-updates"
            )

    async def wait_connected(self, timeout: float) -> bool:
        """Wait for the first listening session: True once it is, False after ``timeout``
        (retries go on); ``StreamAuthError`` if the key pair was rejected."""
        if self._supervisor is None:
            raise RuntimeError("start() the stream first")
        listening = asyncio.ensure_future(self._listening.wait())
        try:
            await asyncio.wait(
                {listening, self._supervisor}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            listening.cancel()
        if self.error is not None:
            raise StreamAuthError(self.error)
        return self._listening.is_set()

    async def stop(self) -> None:
        if self._supervisor is not None and not self._supervisor.done():
            self._supervisor.cancel()
            await asyncio.wait({self._supervisor})
        self._supervisor = None

    # -- supervision ---------------------------------------------------------------------------

    async def _supervise(self) -> None:
        """Reconnect for as long as the stream runs, except after a key rejected on the first
        connection. The backoff resets once a session has stayed up longer than the longest
        delay."""
        failures = 0
        while True:
            started = time.monotonic()
            try:
                reason = await self._run_session()
            except StreamAuthError as exc:
                if self.connections == 0:
                    self.error = str(exc)
                    self._log.error(self.error)
                    return
                reason = f"{exc} on a reconnect (key revoked or rotated?)"
            except (OSError, TimeoutError, WebSocketException, StreamProtocolError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                listened = self._listening.is_set()
                self._ws = None
                self._listening.clear()
            if listened:
                self._on_lost(reason)
            if time.monotonic() - started >= self._delays[1]:
                failures = 0
            delay = backoff_delay(failures, *self._delays, self._rng)
            failures += 1
            log = self._log.error if self.connections else self._log.warning
            log(f"Alpaca trade_updates stream: {reason}; reconnecting in {delay:.2f}s")
            await asyncio.sleep(delay)

    async def _run_session(self) -> str:
        self.attempts += 1
        try:
            ws = await connect(
                self.url,
                open_timeout=self._connect_timeout,
                ping_interval=PING_INTERVAL_SECS,
                ping_timeout=PING_TIMEOUT_SECS,
                close_timeout=2.0,
            )
        except InvalidStatus as exc:
            if exc.response.status_code in (401, 403):
                raise StreamAuthError(
                    f"Alpaca stream refused the key pair (HTTP {exc.response.status_code})"
                ) from None
            raise
        async with ws:
            await asyncio.wait_for(self._handshake(ws), self._connect_timeout)
            self._ws = ws
            self._listening.set()
            self.connections += 1
            if self.connections == 1:
                self._log.info(f"Alpaca trade_updates stream listening on {self.url}")
            else:
                self._log.info(
                    f"Alpaca trade_updates stream reconnected (session {self.connections})"
                )
                self._on_reconnected()
            async for raw in ws:
                self._dispatch(_decode(raw))
        reason = f" {ws.close_reason}" if ws.close_reason else ""
        return f"connection closed (code {ws.close_code}{reason})"

    async def _handshake(self, ws: ClientConnection) -> None:
        await ws.send(
            json.dumps(
                {
                    "action": "authenticate",
                    "data": {
                        "key_id": self._credentials.key_id,
                        "secret_key": self._credentials.secret_key,
                    },
                }
            )
        )
        reply = _decode(await ws.recv())
        data = reply.get("data") or {}
        if reply.get("stream") != "authorization":
            raise StreamProtocolError(f"expected an authorization reply, got {str(reply)[:200]}")
        if data.get("status") != "authorized":
            raise StreamAuthError(
                f"Alpaca stream rejected the key pair: {data.get('status')} {data.get('message') or ''}".strip()
            )
        await ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        while True:
            reply = _decode(await ws.recv())
            if reply.get("stream") == "listening":
                streams = (reply.get("data") or {}).get("streams") or []
                if "trade_updates" not in streams:
                    raise StreamProtocolError(f"listening to {streams}, not trade_updates")
                return

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("stream") != "trade_updates":
            return
        data = message.get("data")
        if not isinstance(data, dict):
            raise StreamProtocolError(f"trade_updates message without data: {str(message)[:200]}")
        self.updates += 1
        try:
            self._on_update(data)
        except Exception as exc:  # noqa: BLE001 - supervisor: a handler bug must not end the stream
            self._log.exception(f"trade update handler failed on {str(data)[:200]}", exc)
            self._on_update_failed()


def _decode(raw: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(raw)
    except ValueError as exc:
        raise StreamProtocolError(f"malformed frame ({exc}): {raw[:200]!r}") from None
    if not isinstance(message, dict):
        raise StreamProtocolError(f"frame is not a JSON object: {raw[:200]!r}")
    return message
