"""AlpacaHttpClient against the sandbox: the fault policy (timeouts, retries, backoff,
Retry-After, idempotent order submission) and the error mapping, through alpaca-py."""

import asyncio
import random
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pandas as pd
import pytest

from adapters.alpaca.common import AlpacaCredentials
from adapters.alpaca.config import AlpacaExecClientConfig
from adapters.alpaca.http import (
    AlpacaForbiddenError,
    AlpacaHttpClient,
    AlpacaNotFoundError,
    AlpacaRequestError,
    AlpacaTimeoutError,
    AlpacaUnprocessableError,
    backoff_delay,
)
from adapters.alpaca.parsing.wire import retry_after_secs
from adapters.alpaca.sandbox import AlpacaFault, AlpacaSandbox, CatalogMarket

T = TypeVar("T")
CREDENTIALS = AlpacaCredentials("test-key", "test-secret")
OPEN = pd.Timestamp("2024-12-27 14:30", tz="UTC")
NOW = OPEN + pd.Timedelta(minutes=5)


@pytest.fixture
def sandbox(alpaca_sandbox: AlpacaSandbox) -> AlpacaSandbox:
    alpaca_sandbox.advance_to(NOW)
    return alpaca_sandbox


class SleepRecorder:
    """Stands in for asyncio.sleep: records the delays, waits for none of them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


_CLIENTS: list[AlpacaHttpClient] = []


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


def http(
    sb: AlpacaSandbox,
    sleep: SleepRecorder | None = None,
    credentials: AlpacaCredentials = CREDENTIALS,
    **overrides: Any,
) -> AlpacaHttpClient:
    """A client on ``sb`` with quick retries; closed after the test."""
    settings: dict[str, Any] = {
        "base_url": sb.base_url,
        "request_timeout_secs": 2.0,
        "retry_initial_delay_secs": 0.1,
        "retry_max_delay_secs": 0.4,
    }
    config = AlpacaExecClientConfig(**(settings | overrides))
    if sleep is None:
        client = AlpacaHttpClient(credentials, config, rng=random.Random(1))
    else:
        client = AlpacaHttpClient(credentials, config, sleep=sleep, rng=random.Random(1))
    _CLIENTS.append(client)
    return client


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def market(client_order_id: str, qty: int = 2, symbol: str = "S000") -> dict:
    return {
        "symbol": symbol,
        "qty": str(qty),
        "side": "buy",
        "type": "market",
        "time_in_force": "day",
        "client_order_id": client_order_id,
    }


# -- retries -------------------------------------------------------------------------------------


def test_the_sdks_own_429_retry_is_off(sandbox: AlpacaSandbox):
    """alpaca-py would sleep 3 s per 429 and ask again before raising; here the 429 reaches
    the policy at once (and with no retries left, the caller): the server saw one request."""
    fault = AlpacaFault(kind="rate_limit", times=5, path="/v2/account")
    sandbox.add_fault(fault)
    with pytest.raises(AlpacaRequestError, match="gave up after 1 attempts: HTTP 429"):
        run(http(sandbox, max_retries=0).get_account())
    assert sandbox.pending_faults == [(fault, 4)]  # one 429 answered, four left


def test_retry_after_is_honoured(sandbox: AlpacaSandbox):
    sandbox.add_fault(
        AlpacaFault(kind="rate_limit", times=2, retry_after_secs=3.0, path="/v2/account")
    )
    sleep = SleepRecorder()
    account = run(http(sandbox, sleep).get_account())
    assert account["status"] == "ACTIVE"
    assert sleep.delays == [3.0, 3.0]


def test_retry_after_as_an_http_date_or_absent(sandbox: AlpacaSandbox):
    """Real servers and proxies also send Retry-After as an HTTP date, or not at all: the date
    was ignored (backoff instead of the wait asked for). The sandbox now sends both forms."""
    sandbox.add_fault(AlpacaFault(kind="rate_limit", retry_after_secs=30.0, retry_after_form="http_date",
                                  path="/v2/account"))
    sandbox.add_fault(AlpacaFault(kind="rate_limit", retry_after_form="absent", path="/v2/account"))
    sleep = SleepRecorder()
    assert run(http(sandbox, sleep).get_account())["status"] == "ACTIVE"
    dated, absent = sleep.delays
    assert 20.0 < dated <= 30.0  # the date's whole seconds, less the time the answer took to parse
    assert absent == pytest.approx(0.1, rel=0.5)  # the client's own first backoff step (jittered)


@pytest.mark.parametrize(("header", "expected"), [
    ("3", 3.0), ("0", 0.0), ("-5", 0.0), ("inf", 60.0), ("86400", 60.0), ("nan", None), ("soon", None),
    (None, None), ("Tue, 01 Dec 2026 12:00:10 GMT", 10.0), ("Tue, 01 Dec 2026 11:59:00 GMT", 0.0),
])
def test_retry_after_values_a_server_may_send(header, expected):
    """"inf" or a day used to park the request (an order submission) for that long."""
    now = pd.Timestamp("2026-12-01 12:00", tz="UTC").to_pydatetime()
    assert retry_after_secs(header, now) == expected


def test_server_errors_back_off_exponentially_then_give_up_clearly(sandbox: AlpacaSandbox):
    sandbox.add_fault(AlpacaFault(kind="server_error", status=503, times=10, path="/v2/positions"))
    sleep = SleepRecorder()
    with pytest.raises(
        AlpacaRequestError, match=r"GET /positions: gave up after 4 attempts: HTTP 503"
    ):
        run(http(sandbox, sleep, max_retries=3).get_positions())
    steps = [min(0.4, 0.1 * 2**k) for k in range(3)]
    assert len(sleep.delays) == 3
    assert all(step / 2 <= d <= step for d, step in zip(sleep.delays, steps, strict=True))


def test_backoff_delay_bounds():
    rng = random.Random(3)
    for attempt in range(40):
        step = min(30.0, 0.5 * 2 ** min(attempt, 32))
        assert step / 2 <= backoff_delay(attempt, 0.5, 30.0, rng) <= step


def test_a_stalled_server_is_a_timeout_not_a_hang(sandbox: AlpacaSandbox):
    sandbox.add_fault(AlpacaFault(kind="stall", stall_secs=30.0, times=2, path="/v2/account"))

    async def main() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        try:
            with pytest.raises(
                AlpacaTimeoutError, match="gave up after 2 attempts: no answer within 0.3s"
            ):
                await http(sandbox, request_timeout_secs=0.3, max_retries=1).get_account()
        finally:
            task.cancel()
        return ticks

    ticks = run(main())
    assert sandbox.pending_faults == []  # both attempts reached the stalled server and gave up
    assert ticks > 20  # the event loop kept running while the SDK's threads were stuck


# -- idempotent submission -----------------------------------------------------------------------


def test_a_post_that_went_through_unanswered_is_found_not_duplicated(sandbox: AlpacaSandbox):
    """The first POST is processed after the client gave up on it (timeout); the retry,
    same client_order_id, gets 422 duplicate: the order is fetched, not placed twice."""
    sandbox.add_fault(AlpacaFault(kind="stall", stall_secs=0.3, path="/v2/orders"))
    client = http(
        sandbox, request_timeout_secs=0.1, retry_initial_delay_secs=1.0, retry_max_delay_secs=1.0
    )
    order = run(client.submit_order(market("O-42")))
    assert order["client_order_id"] == "O-42"
    assert len(sandbox.orders()) == 1
    assert sorted(r.status_code for r in sandbox.order_requests) == [200, 422]


def test_a_duplicate_on_the_first_attempt_is_an_error(sandbox: AlpacaSandbox):
    client = http(sandbox)
    run(client.submit_order(market("O-7")))
    with pytest.raises(AlpacaUnprocessableError) as raised:
        run(client.submit_order(market("O-7")))
    assert raised.value.is_duplicate_client_order_id and raised.value.status == 422


def test_submit_requires_a_client_order_id(sandbox: AlpacaSandbox):
    body = market("x")
    del body["client_order_id"]
    with pytest.raises(ValueError, match="client_order_id"):
        run(http(sandbox).submit_order(body))


# -- error mapping -------------------------------------------------------------------------------


def test_insufficient_buying_power_is_forbidden(sandbox: AlpacaSandbox):
    with pytest.raises(AlpacaForbiddenError) as raised:
        run(http(sandbox).submit_order(market("O-big", qty=100_000)))
    assert (raised.value.code, raised.value.message) == (40310000, "insufficient buying power")


def test_not_found_and_invalid_requests(sandbox: AlpacaSandbox):
    client = http(sandbox)
    assert run(client.get_order("00000000-0000-0000-0000-000000000000")) is None
    assert run(client.get_order_by_client_id("nobody")) is None
    assert run(client.get_position("S000")) is None
    with pytest.raises(AlpacaNotFoundError):
        run(client.cancel_order("00000000-0000-0000-0000-000000000000"))
    with pytest.raises(AlpacaUnprocessableError, match="qty"):
        run(client.submit_order(market("O-bad", qty=0)))


def test_a_wrong_key_is_refused_not_retried(sandbox: AlpacaSandbox):
    with pytest.raises(AlpacaForbiddenError):
        run(http(sandbox, credentials=AlpacaCredentials("test-key", "wrong")).get_account())


# -- reads ---------------------------------------------------------------------------------------


def test_orders_positions_and_activities_round_trip(sandbox: AlpacaSandbox):
    client = http(sandbox)

    async def main() -> tuple:
        placed = await client.submit_order(market("O-1", qty=3))
        bracket = await client.submit_order(
            market("O-2", qty=2, symbol="S001")
            | {
                "type": "limit",
                "limit_price": "1.00",
                "order_class": "bracket",
                "time_in_force": "gtc",
                "take_profit": {"limit_price": "2.00"},
                "stop_loss": {"stop_price": "0.50"},
            }
        )
        return (
            placed,
            bracket,
            await client.list_orders("all"),
            await client.list_orders("open", symbols=["S001"]),
            await client.get_order(bracket["id"]),
            await client.get_positions(),
            await client.fill_activities(),
        )

    placed, bracket, every, open_s001, fetched, positions, activities = run(main())
    assert {o["client_order_id"] for o in every} == {"O-1", "O-2"}  # legs nested, not listed
    assert [o["id"] for o in open_s001] == [bracket["id"]]
    assert {leg["status"] for leg in fetched["legs"]} == {"held"}
    assert [(p["symbol"], p["qty"]) for p in positions] == [("S000", "3")]
    assert [(a["order_id"], a["qty"]) for a in activities] == [(placed["id"], "3")]


def test_fill_activities_follow_every_page(alpaca_market: CatalogMarket):
    with AlpacaSandbox(alpaca_market, participation=1e-9) as sb:  # one share per bar
        sb.advance_to(NOW)
        client = http(sb)
        run(client.submit_order(market("O-slow", qty=130)))
        sb.advance_to(NOW + pd.Timedelta(minutes=140))
        activities = run(client.fill_activities())
    assert len(activities) == 130 and len({a["id"] for a in activities}) == 130
    assert [a["cum_qty"] for a in activities] == [str(k) for k in range(1, 131)]  # oldest first


def test_assets(sandbox: AlpacaSandbox):
    client = http(sandbox)
    assert [a["symbol"] for a in run(client.list_assets())] == ["S000", "S001", "S002"]
    assert run(client.get_asset("S001"))["tradable"] is True
    assert run(client.get_asset("NOPE")) is None


def test_an_order_is_written_by_the_task_that_submits_it(sandbox: AlpacaSandbox):
    """No task of its own for the request (3.11's wait_for made one, queued behind every
    order of a burst): the task that submits is the one that writes, in its first step."""
    client = http(sandbox)

    async def main() -> tuple[int, dict]:
        await client.open_order_connections(1)
        submitting = asyncio.create_task(client.submit_order(market("O-step")))
        await asyncio.sleep(0)  # the submitting task's first step runs: the bytes are written
        tasks = len(asyncio.all_tasks())  # this one and the submitting one
        return tasks, await submitting

    tasks, order = run(main())
    assert tasks == 2 and order["client_order_id"] == "O-step"
