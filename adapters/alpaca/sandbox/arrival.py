"""Arrival stamps for the sandbox's requests: the instant the server read a request's bytes
off its socket, before any request queued ahead of it was processed.

A broker stamps an order when it reaches the broker, not when a single-threaded loopback
server gets round to it: the real Alpaca takes a burst's requests on many servers at once,
this sandbox takes them one after another on one Python loop. aiohttp builds a request only
when its connection's task runs, after the handlers woken before it; the stamp is therefore
taken in the connection protocol's ``data_received`` (the loop's read of the socket) and
carried to the request by the request factory. Hooks into aiohttp's ``RequestHandler`` and
``Server`` (stable across aiohttp 3.x); the runner is otherwise the ordinary ``AppRunner``.
"""

import time
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

ARRIVED_NS = web.RequestKey("sandbox.arrived_ns", int)  # time.time_ns() of the socket read


class ArrivalStampingHandler(RequestHandler):
    """One connection: stamps every request message parsed from a read with that read's time."""

    __slots__ = ("_arrivals", "_handed", "_last_read_ns")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._arrivals: dict[int, int] = {}  # message number on the connection -> its read's ns
        self._handed = 0  # messages made into requests so far
        self._last_read_ns = time.time_ns()

    def data_received(self, data: bytes) -> None:
        self._last_read_ns = stamp = time.time_ns()
        before = self._request_count
        super().data_received(data)
        for number in range(before + 1, self._request_count + 1):
            self._arrivals[number] = stamp

    def next_arrival_ns(self) -> int:
        """The stamp of the next message to become a request (messages are handled in order).
        One parsed outside a read (aiohttp reparses bytes held behind a declined upgrade) had
        its bytes read by the last read at the latest."""
        self._handed += 1
        return self._arrivals.pop(self._handed, self._last_read_ns)


class ArrivalStampingServer(web.Server):
    """The app's server, with connections that stamp arrivals and requests that carry them."""

    def __init__(self, server: web.Server) -> None:
        super().__init__(
            server.request_handler,
            request_factory=self._stamped(server.request_factory),
            handler_cancellation=server.handler_cancellation,
            loop=server._loop,
            **server._kwargs,
        )

    def __call__(self) -> ArrivalStampingHandler:
        return ArrivalStampingHandler(self, loop=self._loop, **self._kwargs)

    @staticmethod
    def _stamped(make_request):
        def make(message, payload, protocol: ArrivalStampingHandler, writer, task) -> web.BaseRequest:
            request = make_request(message, payload, protocol, writer, task)
            request[ARRIVED_NS] = protocol.next_arrival_ns()
            return request

        return make


class ArrivalStampingRunner(web.AppRunner):
    """An ``AppRunner`` whose requests carry ``ARRIVED_NS``."""

    async def _make_server(self) -> web.Server:
        return ArrivalStampingServer(await super()._make_server())
