"""EventHub: what happens on the node (or in the journal) pushed to every open page.

Publishers run on any thread (the node's loop, a poller); subscribers are SSE responses on
the panel's own loop. Each topic is coalesced: a burst of updates to one topic within
``min_interval_secs`` reaches the page as its latest payload, at most that interval later, so
50 symbols trading cannot flood a browser while the newest state still arrives within a second.
Every payload is stamped with ``_ts`` (epoch ms, this machine's clock) as it is published: the
bench measures live-update latency from it.
"""

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator

from aiohttp import web

MIN_INTERVAL_SECS = 0.1  # at most ~10 messages per second per topic
_KEEPALIVE_SECS = 15.0


class EventHub:
    def __init__(self, min_interval_secs: float = MIN_INTERVAL_SECS) -> None:
        self.min_interval_secs = min_interval_secs
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: set[asyncio.Queue[bytes | None]] = set()
        self._latest: dict[str, dict] = {}  # topic -> newest payload (a new page starts from it)
        self._pending: dict[str, dict] = {}  # topic -> payload waiting for its interval
        self._last_sent: dict[str, float] = {}
        self._scheduled: set[str] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the SSE responses run on (the panel server's)."""
        self._loop = loop

    def latest(self, topic: str) -> dict | None:
        with self._lock:
            return self._latest.get(topic)

    def publish(self, topic: str, payload: dict) -> None:
        """From any thread; never blocks on a slow page. ``payload["_ts"]`` (epoch ms) is when
        the event happened; stamped now when the publisher gives none."""
        stamped = {"_ts": time.time() * 1000.0, **payload}
        with self._lock:
            self._latest[topic] = stamped
            self._pending[topic] = stamped
            loop = self._loop
            if loop is None or topic in self._scheduled:
                return
            self._scheduled.add(topic)
        loop.call_soon_threadsafe(self._schedule, topic)

    def _schedule(self, topic: str) -> None:
        wait = self._last_sent.get(topic, 0.0) + self.min_interval_secs - time.monotonic()
        if wait > 0:
            asyncio.get_running_loop().call_later(wait, self._flush, topic)
        else:
            self._flush(topic)

    def _flush(self, topic: str) -> None:
        with self._lock:
            payload = self._pending.pop(topic, None)
            self._scheduled.discard(topic)
        if payload is None:
            return
        self._last_sent[topic] = time.monotonic()
        message = _message(topic, payload)
        for queue in self._subscribers:
            queue.put_nowait(message)

    def close_streams(self) -> None:
        """End every page's stream (panel loop only): a stopping server does not wait for
        open pages."""
        for queue in self._subscribers:
            queue.put_nowait(None)

    async def stream(self) -> AsyncIterator[bytes]:
        """One page's messages, from the newest state of every topic on (panel loop only)."""
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        with self._lock:  # "_replay": the state as it was, not a new event (no latency to measure)
            for topic, payload in self._latest.items():
                queue.put_nowait(_message(topic, {**payload, "_replay": True}))
        self._subscribers.add(queue)
        try:
            while True:
                try:  # not wait_for: Python 3.11's can swallow the cancel of a closing page
                    async with asyncio.timeout(_KEEPALIVE_SECS):
                        message = await queue.get()
                except TimeoutError:
                    message = b": keep-alive\n\n"
                if message is None:  # the server is stopping
                    return
                yield message
        finally:
            self._subscribers.discard(queue)


def _message(topic: str, payload: dict) -> bytes:
    return f"event: {topic}\ndata: {json.dumps(payload, default=str)}\n\n".encode()


async def sse_handler(request: web.Request) -> web.StreamResponse:
    """GET /api/events: the hub's messages as server-sent events until the page goes."""
    hub: EventHub = request.app[HUB]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    try:
        await response.prepare(request)
        async for message in hub.stream():
            await response.write(message)
    except ConnectionResetError:  # the page went away (also while its stream was starting)
        pass
    return response


HUB = web.AppKey("panel_hub", EventHub)
