"""A burst of order requests at once, as a bar close for many symbols sends them: each is
stamped when it reached the broker, not when the single loop got round to it, and the book
decides them one at a time in arrival order (quantities, buying power and client order ids
stay consistent).

The burst is made deterministic by holding the sandbox's loop while every request is
written on a connection of its own (the kernel completes the connections and buffers the
bytes), then letting it go: all of them have arrived before the broker decides the first.
Each connection is opened ahead with a request of its own (as the execution client opens its
order connections ahead), so the broker has accepted it before the burst."""

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from adapters.alpaca.sandbox import AlpacaSandbox

HEADERS = {"APCA-API-KEY-ID": "test-key", "APCA-API-SECRET-KEY": "test-secret"}
# $100,000 cash on a 2x margin account: $200,000 of buying power, reserved by open orders.
BUYING_POWER = Decimal(200_000)


def limit_buy(qty: int, client_order_id: str | None = None) -> dict:
    """A buy far below the market (S000 trades near $100): it rests, reserving qty x $1.00."""
    body = {"symbol": "S000", "qty": str(qty), "side": "buy", "type": "limit",
            "time_in_force": "day", "limit_price": "1.00"}
    if client_order_id is not None:
        body["client_order_id"] = client_order_id
    return body


def request_bytes(sandbox: AlpacaSandbox, method: str, path: str, body: dict | None, close: bool) -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
    return (f"{method} {path} HTTP/1.1\r\nHost: {sandbox.host}:{sandbox.port}\r\n{head}"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n").encode() + payload


def read_response(sock: socket.socket) -> tuple[int, dict]:
    """One response with a Content-Length body: (status, parsed body). Bytes of the responses
    after it (pipelined answers can arrive in one read) wait for the next call."""
    data = _unread.pop(sock, b"")
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, payload = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(v) for k, _, v in (line.partition(": ") for line in lines[1:]) if k.lower() == "content-length")
    while len(payload) < length:
        payload += sock.recv(65536)
    if payload[length:]:
        _unread[sock] = payload[length:]
    return int(lines[0].split(" ", 2)[1]), json.loads(payload[:length])


_unread: dict[socket.socket, bytes] = {}


@contextmanager
def loop_held(sandbox: AlpacaSandbox) -> Iterator[None]:
    """The sandbox's loop does nothing inside the block (a stand-in for a busy broker)."""
    release, held = threading.Event(), threading.Event()

    def hold() -> None:
        held.set()
        release.wait(10.0)

    sandbox._loop.call_soon_threadsafe(hold)  # no public hook: the test stands in for load
    assert held.wait(5.0)
    try:
        yield
    finally:
        release.set()


def burst(sandbox: AlpacaSandbox, bodies: list[dict]) -> tuple[list[int], list[dict], int, int]:
    """Every body POSTed at once on its own connection; (statuses, answers, ns before the
    first write, ns after the last write), in sending order."""
    sockets = [socket.create_connection((sandbox.host, sandbox.port), timeout=10.0) for _ in bodies]
    try:
        for sock in sockets:
            sock.sendall(request_bytes(sandbox, "GET", "/v2/clock", None, close=False))
            assert read_response(sock)[0] == 200
        with loop_held(sandbox):
            first_write = time.time_ns()
            for sock, body in zip(sockets, bodies, strict=True):
                sock.sendall(request_bytes(sandbox, "POST", "/v2/orders", body, close=True))
            last_write = time.time_ns()
        statuses, answers = [], []
        for sock in sockets:
            status, answer = read_response(sock)
            statuses.append(status)
            answers.append(answer)
    finally:
        for sock in sockets:
            sock.close()
    return statuses, answers, first_write, last_write


def test_a_burst_is_stamped_on_arrival_before_the_broker_decides_the_first(alpaca_sandbox):
    statuses, _, first_write, last_write = burst(alpaca_sandbox, [limit_buy(1) for _ in range(12)])
    assert statuses == [200] * 12
    records = alpaca_sandbox.order_requests
    assert len(records) == 12
    first_decided = min(r.answered_ns for r in records)
    # all had arrived while the loop was held: each stamped before any was decided (a stamp
    # taken when the handler runs would follow the answer of the request before it)
    assert all(first_write <= r.received_ns < first_decided for r in records)
    assert all(r.received_ns >= last_write for r in records)  # read when the loop was let go
    assert all(r.received_ns <= r.answered_ns for r in records)


def test_a_burst_is_decided_in_arrival_order_one_at_a_time(alpaca_sandbox):
    bodies = [limit_buy(1, client_order_id=f"order-{k}") for k in range(10)]
    statuses, answers, _, _ = burst(alpaca_sandbox, bodies)
    assert statuses == [200] * 10
    records = alpaca_sandbox.order_requests
    answered = [r.answered_ns for r in records]
    assert answered == sorted(answered)
    decided = [r.client_order_id for r in sorted(records, key=lambda r: r.answered_ns)]
    assert decided == [r.client_order_id for r in sorted(records, key=lambda r: r.received_ns)]
    assert sorted(a["client_order_id"] for a in answers) == sorted(b["client_order_id"] for b in bodies)


def test_a_burst_over_the_buying_power_accepts_what_fits_and_refuses_the_rest(alpaca_sandbox):
    statuses, answers, _, _ = burst(alpaca_sandbox, [limit_buy(30_000) for _ in range(10)])
    assert sorted(statuses) == [200] * 6 + [403] * 4  # 6 x $30,000 of $200,000
    assert all(a["code"] == 40310000 for s, a in zip(statuses, answers, strict=True) if s == 403)
    orders = alpaca_sandbox.orders()
    assert len(orders) == 6 and all(o["status"] == "new" and o["qty"] == "30000" for o in orders)
    assert {o["id"] for o in orders} == {a["id"] for s, a in zip(statuses, answers, strict=True) if s == 200}
    assert alpaca_sandbox.cash() == Decimal(100_000)
    request = urllib.request.Request(alpaca_sandbox.base_url + "/v2/account", headers=HEADERS)
    with urllib.request.urlopen(request, timeout=10) as response:
        account = json.loads(response.read())
    assert Decimal(account["buying_power"]) == BUYING_POWER - 6 * 30_000


def test_a_burst_of_one_client_order_id_makes_one_order(alpaca_sandbox):
    statuses, answers, _, _ = burst(alpaca_sandbox, [limit_buy(5, client_order_id="once") for _ in range(8)])
    assert sorted(statuses) == [200] + [422] * 7
    assert all("client_order_id must be unique" in a["message"] for s, a in zip(statuses, answers, strict=True)
               if s == 422)
    orders = alpaca_sandbox.orders()
    assert [(o["client_order_id"], o["qty"]) for o in orders] == [("once", "5")]


def test_requests_on_one_connection_carry_the_stamp_of_the_read_that_brought_them(alpaca_sandbox):
    with socket.create_connection((alpaca_sandbox.host, alpaca_sandbox.port), timeout=10.0) as sock:
        sock.sendall(request_bytes(alpaca_sandbox, "POST", "/v2/orders", limit_buy(1, "first"), close=False))
        assert read_response(sock)[0] == 200
        between = time.time_ns()
        with loop_held(alpaca_sandbox):  # two pipelined requests, read together
            pair = [request_bytes(alpaca_sandbox, "POST", "/v2/orders", limit_buy(1, name), close=False)
                    for name in ("second", "third")]
            sock.sendall(b"".join(pair))
        assert [read_response(sock)[0] for _ in pair] == [200, 200]
    first, second, third = alpaca_sandbox.order_requests
    assert [r.client_order_id for r in (first, second, third)] == ["first", "second", "third"]
    assert first.received_ns < between <= second.received_ns
    assert second.received_ns == third.received_ns < second.answered_ns < third.answered_ns
