"""PolygonHttpClient through the massive SDK against the loopback sandbox: complete pages,
faults recovered or named, and a rate budget no 60 s window exceeds."""

import logging
import threading
import time
from datetime import date
from pathlib import Path

import massive
import numpy as np
import pandas as pd
import pytest

from adapters.polygon.common import TIMEFRAMES
from adapters.polygon.config import PolygonHistoricalConfig
from adapters.polygon.errors import PolygonDataError, PolygonRequestError
from adapters.polygon.http import (
    RETRY_BACKOFF_FACTOR,
    RETRY_STATUSES,
    PolygonHttpClient,
    RateBudget,
)
from adapters.polygon.sandbox import Fault, PolygonSandbox
from adapters.polygon.sandbox.aggregation import minute_aggregates, resample
from catalog.store import MarketCatalog

FIRST, LAST = date(2024, 12, 27), date(2024, 12, 31)  # the small catalog's three sessions
KEY = "test-key"


class FakeClock:
    """Virtual time: ``sleep`` advances it, so a minute-long budget runs instantly."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _client(sandbox: PolygonSandbox, budget: RateBudget | None = None, **overrides: object) -> PolygonHttpClient:
    settings = {"base_url": sandbox.base_url, "retries": 2, "read_timeout_secs": 5.0, **overrides}
    return PolygonHttpClient(KEY, PolygonHistoricalConfig(**settings), budget=budget)


def _max_in_any_window(times: list[float], window: float = 60.0) -> int:
    times = sorted(times)
    return max(int(np.searchsorted(times, t + window, side="left")) - i for i, t in enumerate(times))


def _aggs_requests(sandbox: PolygonSandbox) -> list:
    return [r for r in sandbox.requests if r.path.startswith("/v2/aggs/")]


# -- completeness ----------------------------------------------------------------------------------


def test_minute_aggregates_across_pages_equal_the_catalog(sandbox: PolygonSandbox, small_catalog: Path) -> None:
    bars = _client(sandbox, page_limit=100).aggregates("S000", "1m", FIRST, LAST)
    expected = MarketCatalog(small_catalog).read_bars("S000")
    pd.testing.assert_frame_equal(bars.to_frame(), expected)

    requests = _aggs_requests(sandbox)
    assert len(requests) == -(-len(expected) // 100)
    assert requests[0].query == {"adjusted": "true", "sort": "asc", "limit": "100"}
    assert all(set(r.query) == {"cursor"} and r.path == requests[0].path for r in requests[1:])
    assert all(r.status == 200 for r in requests)


@pytest.mark.parametrize("tf", ["5m", "15m", "1h", "1d"])
def test_larger_timeframes_equal_the_sandbox_aggregation(sandbox: PolygonSandbox, small_catalog: Path, tf: str) -> None:
    bars = _client(sandbox, page_limit=7).aggregates("S001", tf, "2024-12-27", "2024-12-31")
    expected = resample(minute_aggregates(MarketCatalog(small_catalog).read_bars("S001")), TIMEFRAMES[tf])
    np.testing.assert_array_equal(bars.ts_ns, expected.end_ns)  # bar close, daily = session close
    for column in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(bars, column), getattr(expected, column))


def test_epoch_ms_range_as_the_live_backfill_uses_it(sandbox: PolygonSandbox, small_catalog: Path) -> None:
    start = pd.Timestamp("2024-12-30 15:00", tz="UTC")
    bars = _client(sandbox).aggregates("S002", TIMEFRAMES["1m"], start.value // 10**6, start.value // 10**6 + 9 * 60_000)
    frame = bars.to_frame()
    assert list(frame.index) == list(pd.date_range(start + pd.Timedelta(minutes=1), periods=10, freq="1min"))
    pd.testing.assert_frame_equal(frame, MarketCatalog(small_catalog).read_bars("S002").loc[frame.index])


def test_unknown_ticker_is_empty_not_an_error(sandbox: PolygonSandbox) -> None:
    bars = _client(sandbox).aggregates("NOPE", "1m", FIRST, LAST)
    assert len(bars) == 0 and bars.to_frame().empty


def test_retry_policy_is_massives_own() -> None:
    sdk_retry = massive.RESTClient(api_key=KEY, base="http://127.0.0.1:9").client.connection_pool_kw["retries"]
    assert tuple(sdk_retry.status_forcelist) == RETRY_STATUSES
    assert sdk_retry.backoff_factor == RETRY_BACKOFF_FACTOR


# -- faults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [Fault("rate_limit", retry_after_secs=1, symbol="S000", page=2), Fault("server_error", status=503, page=3)],
)
def test_one_rate_limit_or_server_error_is_recovered(sandbox: PolygonSandbox, small_catalog: Path, fault: Fault) -> None:
    sandbox.add_fault(fault)
    bars = _client(sandbox, page_limit=400).aggregates("S000", "1m", FIRST, LAST)
    pd.testing.assert_frame_equal(bars.to_frame(), MarketCatalog(small_catalog).read_bars("S000"))
    assert [r.status for r in _aggs_requests(sandbox)].count(fault.status if fault.kind == "server_error" else 429) == 1


def test_retry_after_is_honoured(sandbox: PolygonSandbox) -> None:
    sandbox.add_fault(Fault("rate_limit", retry_after_secs=1.0))
    started = time.monotonic()
    assert len(_client(sandbox).aggregates("S000", "1d", FIRST, LAST)) == 3
    assert time.monotonic() - started >= 1.0


@pytest.mark.parametrize("form", ["http_date", "absent", "invalid"])
def test_a_429_with_any_retry_after_form_is_recovered(sandbox: PolygonSandbox, form: str) -> None:
    """Real servers and proxies send Retry-After as an HTTP date, leave it out, or send text no
    parser reads: the last failed the whole request with urllib3's InvalidHeader."""
    sandbox.add_fault(Fault("rate_limit", retry_after_secs=1.0, retry_after_form=form))
    assert len(_client(sandbox).aggregates("S000", "1d", FIRST, LAST)) == 3
    assert [r.status for r in _aggs_requests(sandbox)].count(429) == 1


@pytest.mark.parametrize(
    ("fault", "error", "reason"),
    [
        (Fault("server_error", status=502, times=3), PolygonRequestError, "gave up after 2 retries"),
        (Fault("rate_limit", retry_after_secs=0, times=3), PolygonRequestError, "429"),
        (Fault("truncated", page=2), PolygonDataError, "truncated page"),
        (Fault("malformed", page=2), PolygonDataError, "malformed aggregates page"),
        (Fault("stall", target="rest", stall_secs=10.0, times=3), PolygonRequestError, "timed out"),
    ],
)
def test_unrecoverable_faults_name_symbol_and_range(
    sandbox: PolygonSandbox, fault: Fault, error: type, reason: str
) -> None:
    sandbox.add_fault(fault)
    client = _client(sandbox, page_limit=400, read_timeout_secs=0.3)
    with pytest.raises(error) as caught:
        client.aggregates("S001", "1m", FIRST, LAST)
    message = str(caught.value)
    assert reason in message
    assert "S001" in message and "1m 2024-12-27 00:00..2024-12-31 23:59 ET" in message
    assert KEY not in message


def test_a_bad_key_is_rejected_by_name_and_never_logged(sandbox: PolygonSandbox, caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-very-secret-0123"
    client = PolygonHttpClient(secret, PolygonHistoricalConfig(base_url=sandbox.base_url))
    with caplog.at_level(logging.DEBUG), pytest.raises(PolygonRequestError, match="S000.*rejected"):
        client.aggregates("S000", "1m", FIRST, LAST)
    assert secret not in caplog.text


# -- rate budget -----------------------------------------------------------------------------------


def test_budget_never_exceeds_the_limit_in_any_window() -> None:
    clock = FakeClock()
    budget = RateBudget(5, clock=clock, sleep=clock.sleep)
    granted = []
    for _ in range(23):
        budget.acquire()
        granted.append(clock())
    assert _max_in_any_window(granted) == 5
    assert granted[:5] == [1000.0] * 5 and granted[5] == 1060.0 and granted[-1] == 1240.0


def test_budget_is_shared_by_threads() -> None:
    clock = FakeClock()
    budget = RateBudget(4, clock=clock, sleep=clock.sleep)
    granted: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(5):
            budget.acquire()
            with lock:
                granted.append(clock())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 20 and _max_in_any_window(granted) == 4
    assert max(granted) - min(granted) == 4 * 60.0  # and it waits no longer than it must


def test_pagination_and_retries_pay_the_budget(sandbox: PolygonSandbox, small_catalog: Path) -> None:
    clock = FakeClock()
    budget = RateBudget(5, clock=clock, sleep=clock.sleep)
    granted: list[float] = []
    acquire = budget.acquire

    def recording_acquire() -> None:
        acquire()
        granted.append(clock())

    budget.acquire = recording_acquire  # observe the grants; the budget itself is real
    sandbox.add_fault(Fault("rate_limit", retry_after_secs=0, page=4))
    client = _client(sandbox, budget=budget, requests_per_minute=5, page_limit=100)
    bars = client.aggregates("S002", "1m", FIRST, LAST)
    assert len(bars) == MarketCatalog(small_catalog).bar_count("S002")
    requests = _aggs_requests(sandbox)
    assert len(requests) == len(granted) == 13  # 12 pages + one 429 retried
    assert _max_in_any_window(granted) == 5
    assert clock.now - 1000.0 == 120.0


def test_bad_budget() -> None:
    with pytest.raises(ValueError):
        RateBudget(0)


# -- reference ------------------------------------------------------------------------------------


def test_list_tickers_follows_every_page(sandbox: PolygonSandbox) -> None:
    client = _client(sandbox)
    assert [t["ticker"] for t in client.list_tickers(limit=1)] == ["S000", "S001", "S002"]
    assert [t["ticker"] for t in client.list_tickers(limit=2, max_pages=1)] == ["S000", "S001"]
    listing = [r for r in sandbox.requests if r.path == "/v3/reference/tickers"]
    assert [set(r.query) for r in listing[1:3]] == [{"cursor"}, {"cursor"}]


def test_truncated_ticker_page_is_an_error(sandbox: PolygonSandbox) -> None:
    sandbox.add_fault(Fault("truncated", page=2))
    with pytest.raises(PolygonDataError, match="reference tickers: bad page"):
        _client(sandbox).list_tickers(limit=2)


def test_ticker_details_is_the_results_object(sandbox: PolygonSandbox) -> None:
    details = _client(sandbox).ticker_details("S001")
    assert details["ticker"] == "S001" and details["market"] == "stocks"
