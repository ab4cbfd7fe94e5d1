"""HTTP/1.1 keep-alive connections on the event loop for the latency-critical order requests.

Why not aiohttp (used before): on Python 3.11 aiohttp writes a request's bytes (headers are
held back to go out with the body) from a task of its own, queued behind every task already
ready. A bar close for 50 symbols makes 50 NautilusTrader submit tasks, so no order reached
the wire before all 50 had been prepared, and each cost ~0.3 ms of aiohttp's interpreter
time on the node's loop. Here a request is written during the step of the task that sends
it: the first order is at the broker while the next ones are still being prepared.

Scope, what Alpaca's order endpoint needs: one request in flight per connection (no
pipelining); a request carries a body; a response has a Content-Length or a chunked body, or
runs to the connection's close (1xx interim answers are skipped, no compression is asked
for); a connection is kept alive unless the server says ``Connection: close`` or closes it,
and dropped after ``IDLE_SECS`` unused; TLS for ``https``. Connections can be opened ahead
(``open_connections``) so a burst does not pay for connecting (TCP, TLS) on its way. No proxy is used (neither did the aiohttp
session: it did not trust the environment). Timeouts are the caller's (``asyncio.timeout``):
a request cancelled midway closes its connection, whose answer could otherwise be read by the
next request.
"""

import asyncio
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

# Bars close every minute: a connection must outlive a minute unused to be warm at the next
# bar (aiohttp's 15 s default reconnected every order of every burst). One the server closed
# meanwhile is seen closed and not used; one it closes under a request is retried by the caller.
IDLE_SECS = 75.0
_HEAD_END = b"\r\n\r\n"
_MAX_HEAD_BYTES = 64 * 1024


class HttpConnectionError(Exception):
    """The request got no complete answer: connect failed, the connection was reset or closed
    before the response ended, or the server's answer was not HTTP/1.x."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]  # names in lower case; a repeated header's values joined by ", "
    body: bytes


class _ResponseParser:
    """An HTTP/1.x response read incrementally; ``feed`` returns it once complete."""

    def __init__(self, method: str) -> None:
        self._method = method
        self._buffer = bytearray()
        self._head: tuple[int, dict[str, str]] | None = None
        self._length: int | None = None  # Content-Length of the body, None: chunked or to EOF
        self._chunked = False
        self._body = bytearray()
        self.keep_alive = True

    def feed(self, data: bytes) -> HttpResponse | None:
        self._buffer += data
        if self._head is None and not self._read_head():
            return None
        assert self._head is not None
        if self._chunked:
            return self._read_chunks()
        if self._length is not None and len(self._buffer) >= self._length:
            if len(self._buffer) > self._length:
                raise HttpConnectionError("the server sent more than the response's Content-Length")
            return self._response(bytes(self._buffer))
        return None

    def eof(self) -> HttpResponse | None:
        """The server closed the connection: the response if it ran to the close."""
        if self._head is not None and self._length is None and not self._chunked:
            return self._response(bytes(self._buffer))
        return None

    def _read_head(self) -> bool:
        while True:
            end = self._buffer.find(_HEAD_END)
            if end < 0:
                if len(self._buffer) > _MAX_HEAD_BYTES:
                    raise HttpConnectionError("response headers too long")
                return False
            lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
            del self._buffer[: end + len(_HEAD_END)]
            version, _, rest = lines[0].partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/1.") or not code.isdigit():
                raise HttpConnectionError(f"not an HTTP/1.x response: {lines[0][:80]!r}")
            status = int(code)
            if 100 <= status < 200:
                continue  # an interim answer; the real one follows
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if not sep:
                    raise HttpConnectionError(f"malformed response header {line[:80]!r}")
                key, value = name.strip().lower(), value.strip()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            self._head = (status, headers)
            tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
            self.keep_alive = "close" not in tokens and version != "HTTP/1.0"
            if status in (204, 304) or self._method == "HEAD":
                self._length = 0
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                self._chunked = True
            elif "content-length" in headers:
                try:
                    self._length = int(headers["content-length"])
                except ValueError:
                    raise HttpConnectionError(f"bad Content-Length {headers['content-length']!r}") from None
            else:
                self.keep_alive = False  # the body runs to the close
            return True

    def _read_chunks(self) -> HttpResponse | None:
        buffer = self._buffer
        while True:
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                return None
            size_text = bytes(buffer[:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise HttpConnectionError(f"bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                trailer_end = buffer.find(_HEAD_END, line_end)
                if buffer[line_end: line_end + 4] == _HEAD_END:
                    trailer_end = line_end
                if trailer_end < 0:
                    return None
                del buffer[: trailer_end + len(_HEAD_END)]
                if buffer:
                    raise HttpConnectionError("the server sent more after the response's last chunk")
                return self._response(bytes(self._body))
            start, stop = line_end + 2, line_end + 2 + size
            if len(buffer) < stop + 2:
                return None
            self._body += buffer[start:stop]
            del buffer[: stop + 2]

    def _response(self, body: bytes) -> HttpResponse:
        assert self._head is not None
        status, headers = self._head
        return HttpResponse(status, headers, body)


class _Connection(asyncio.Protocol):
    """One connection; ``send`` writes a request at once and returns its answer's future."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = time.monotonic()
        self._parser: _ResponseParser | None = None
        self._answer: asyncio.Future[HttpResponse] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass

    def send(self, method: str, request: bytes) -> "asyncio.Future[HttpResponse]":
        assert self.transport is not None and self._answer is None
        self._parser = _ResponseParser(method)
        self._answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._answer

    def data_received(self, data: bytes) -> None:
        if self._parser is None or self._answer is None:
            self.close()  # nothing was asked: an unsolicited answer desynchronises the connection
            return
        try:
            response = self._parser.feed(data)
        except HttpConnectionError as exc:
            self._fail(exc)
            return
        if response is not None:
            self._finish(response)

    def eof_received(self) -> bool:
        response = self._parser.eof() if self._parser is not None else None
        if response is not None:
            self._parser.keep_alive = False
            self._finish(response)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HttpConnectionError(f"connection closed before the answer: {exc or 'by the server'}"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _finish(self, response: HttpResponse) -> None:
        answer, parser = self._answer, self._parser
        self._answer = self._parser = None
        assert answer is not None and parser is not None
        if not parser.keep_alive:
            self.close()
        self.idle_since = time.monotonic()
        if not answer.done():
            answer.set_result(response)

    def _fail(self, exc: HttpConnectionError) -> None:
        answer, self._answer, self._parser = self._answer, None, None
        self.close()
        if answer is not None and not answer.done():
            answer.set_exception(exc)


class KeepAliveClient:
    """Requests to one origin (``base_url``: scheme, host, port, optional path prefix) with
    ``headers`` on each, over at most ``max_connections`` connections at once (a request
    beyond them waits for one to come free). Bound to the event loop it is first used on."""

    def __init__(self, base_url: str, headers: dict[str, str], max_connections: int) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"need an http(s) URL with a host, got {base_url!r}")
        self._host = parts.hostname
        self._tls = parts.scheme == "https"
        self._port = parts.port or (443 if self._tls else 80)
        self._prefix = parts.path.rstrip("/")
        default_port = self._port == (443 if self._tls else 80)
        host_header = self._host if default_port else f"{self._host}:{self._port}"
        fixed = {"Host": host_header, "Accept": "application/json", "Accept-Encoding": "identity",
                 "User-Agent": "sextant", **headers}
        self._fixed_head = "".join(f"{name}: {value}\r\n" for name, value in fixed.items()).encode("latin-1")
        self._max_connections = max_connections
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self._ssl = ssl.create_default_context() if self._tls else None

    async def request(self, method: str, path: str, body: bytes, content_type: str = "application/json") -> HttpResponse:
        """``method`` ``path`` (below the base URL's prefix) with ``body``; any answer the
        server completes is returned, whatever its status."""
        head = (f"{method} {self._prefix}{path} HTTP/1.1\r\n".encode("latin-1") + self._fixed_head
                + f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode("latin-1"))
        async with self._slots:
            connection = self._idle_connection() or await self._connect()
            try:
                response = await connection.send(method, head + body)
            except BaseException:
                connection.close()  # cancelled or failed midway: its answer must not reach the next request
                raise
            if not connection.closed:
                self._idle.append(connection)
            return response

    async def open_connections(self, n: int) -> None:
        """Open connections up to ``n`` idle ones (at most ``max_connections``) now; those
        that opened are kept when others fail (the first failure is raised)."""
        live = [c for c in self._idle if not c.closed]
        wanted = min(n, self._max_connections) - len(live)
        results = await asyncio.gather(*(self._connect() for _ in range(max(0, wanted))), return_exceptions=True)
        self._idle = live + [r for r in results if isinstance(r, _Connection)]
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _idle_connection(self) -> _Connection | None:
        """The most recently used live connection; older idle ones past ``IDLE_SECS`` closed."""
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < IDLE_SECS:
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                _Connection, self._host, self._port, ssl=self._ssl,
                server_hostname=self._host if self._tls else None,
            )
        except OSError as exc:
            raise HttpConnectionError(f"cannot connect to {self._host}:{self._port}: {exc}") from None
        return connection
