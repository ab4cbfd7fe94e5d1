"""The order connections speak plain HTTP/1.1 to a scripted server over real sockets: what
goes on the wire, how each kind of response body ends, when a connection is reused, and
that a request given up midway cannot hand its late answer to the next one."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Self

import pytest

from adapters.alpaca.order_http import HttpConnectionError, KeepAliveClient

CLOSE = b""


class ScriptedServer:
    """Answers the k-th request (over all connections) with ``answers[k]``, written in the
    given pieces (then closes after ``Connection: close`` or a last piece ``CLOSE``); records
    each request's raw bytes and the connection it came on."""

    def __init__(self, answers: list[list[bytes]], pause: float = 0.0) -> None:
        self.answers = answers
        self.pause = pause
        self.requests: list[tuple[int, bytes]] = []
        self.connections = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                body = await reader.readexactly(length)
                k = len(self.requests)
                self.requests.append((conn, head + body))
                for piece in self.answers[k]:
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(self.pause)
                if self.answers[k][-1] == CLOSE or b"connection: close" in b"".join(self.answers[k]).lower():
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def ok(body: bytes = b'{"ok":true}', extra: bytes = b"") -> list[bytes]:
    return [b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), extra) + body]


def run(main: Callable[[], Awaitable[object]]) -> object:
    return asyncio.run(main())


def test_the_request_on_the_wire_and_a_reused_connection():
    async def main() -> tuple[ScriptedServer, list]:
        async with ScriptedServer([ok(), ok(b'{"n":2}')]) as server:
            client = KeepAliveClient(server.url + "/prefix/", {"APCA-API-KEY-ID": "k"}, 4)
            answers = [await client.request("POST", "/v2/orders", b'{"a":1}') for _ in range(2)]
            await client.close()
            return server, answers

    server, answers = run(main)
    assert [(a.status, a.body) for a in answers] == [(200, b'{"ok":true}'), (200, b'{"n":2}')]
    assert server.connections == 1 and [c for c, _ in server.requests] == [1, 1]
    raw = server.requests[0][1]
    head, body = raw.split(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /prefix/v2/orders HTTP/1.1"
    assert {"Host: " + server.url.removeprefix("http://"), "APCA-API-KEY-ID: k",
            "Content-Type: application/json", "Content-Length: 7"} <= set(lines[1:])
    assert body == b'{"a":1}'


def test_chunked_bodies_split_anywhere_with_extensions_and_trailers():
    chunked = (b"HTTP/1.1 422 Unprocessable Entity\r\nTransfer-Encoding: chunked\r\n"
               b"Retry-After: 1\r\n\r\n5;ext=1\r\n{\"cod\r\n4\r\ne\":1\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n")
    pieces = [chunked[i: i + 7] for i in range(0, len(chunked), 7)]

    async def main() -> list:
        async with ScriptedServer([pieces, ok()]) as server:
            client = KeepAliveClient(server.url, {}, 1)
            first = await client.request("POST", "/v2/orders", b"{}")
            second = await client.request("POST", "/v2/orders", b"{}")
            return [first, second, server.connections]

    first, second, connections = run(main)
    assert (first.status, first.body, first.headers["retry-after"]) == (422, b'{"code":1}', "1")
    assert second.status == 200 and connections == 1  # the chunked answer ended cleanly


def test_connection_close_and_a_body_to_the_close_are_not_reused():
    to_eof = [b"HTTP/1.1 200 OK\r\n\r\n", b'{"until":', b'"eof"}', CLOSE]

    async def main() -> list:
        async with ScriptedServer([ok(extra=b"Connection: close\r\n"), to_eof, ok()]) as server:
            client = KeepAliveClient(server.url, {}, 4)
            answers = [await client.request("POST", "/v2/orders", b"{}") for _ in range(3)]
            return [answers, server.connections]

    answers, connections = run(main)
    assert [a.body for a in answers] == [b'{"ok":true}', b'{"until":"eof"}', b'{"ok":true}']
    assert connections == 3


def test_an_interim_100_answer_is_skipped():
    async def main() -> object:
        async with ScriptedServer([[b"HTTP/1.1 100 Continue\r\n\r\n", *ok()]]) as server:
            return await KeepAliveClient(server.url, {}, 1).request("POST", "/v2/orders", b"{}")

    answer = run(main)
    assert answer.status == 200 and answer.body == b'{"ok":true}'


def test_a_connection_closed_mid_answer_is_an_error():
    cut = [b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"par"]

    async def closing_server() -> None:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(cut[0])
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        with pytest.raises(HttpConnectionError, match="closed before the answer"):
            await KeepAliveClient(url, {}, 1).request("POST", "/v2/orders", b"{}")
        server.close()

    run(closing_server)


def test_a_request_given_up_midway_never_hands_its_answer_to_the_next():
    async def main() -> list:
        slow = [b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", b'{"old":1}']
        async with ScriptedServer([slow, ok(b'{"new":2}')], pause=0.2) as server:
            client = KeepAliveClient(server.url, {}, 1)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.request("POST", "/v2/orders", b"{}"), 0.1)
            answer = await client.request("POST", "/v2/orders", b"{}")
            return [answer.body, server.connections]

    body, connections = run(main)
    assert body == b'{"new":2}' and connections == 2


def test_at_most_max_connections_at_once_and_connections_opened_ahead():
    async def main() -> list:
        async with ScriptedServer([ok() for _ in range(6)], pause=0.02) as server:
            client = KeepAliveClient(server.url, {}, 2)
            await client.open_connections(5)  # capped at 2
            opened = server.connections
            await asyncio.gather(*(client.request("POST", "/v2/orders", b"{}") for _ in range(6)))
            return [opened, server.connections]

    opened, total = run(main)
    assert opened == 2 and total == 2


def test_an_unreachable_host_is_a_connection_error():
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(HttpConnectionError, match="cannot connect"):
            await KeepAliveClient(f"http://127.0.0.1:{port}", {}, 1).request("POST", "/v2/orders", b"{}")

    run(main)
