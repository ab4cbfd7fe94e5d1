"""Polygon REST through the official ``massive`` SDK: complete, validated aggregates.

massive's own ``list_aggs`` logs and returns fewer rows when a later page is bad, so pages
are followed here through the SDK's public API instead: ``list_aggs(..., raw=True)`` for the
first page, then ``next_url``'s path and query (the cursor) passed back the same way, exactly
the request massive's paginator would send. Every page is validated before it is kept.

Retries are massive's urllib3 policy (413/429/499/5xx and read errors, ``Retry-After``
honoured); when they run out, urllib3's ``MaxRetryError`` becomes a ``PolygonRequestError``
naming the symbol and range. A requests-per-minute budget, shared by every thread using the
client, is paid before each request and before each retry, since a retry costs the account
a request too. The API key is handed to the SDK and never logged.
"""

import numbers
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import date, datetime
from urllib.parse import parse_qsl, urlsplit

import massive
import msgspec
import pandas as pd
import urllib3
from massive.exceptions import BadResponse
from urllib3.util.retry import Retry

from adapters.polygon import common
from adapters.polygon.common import NANOS_PER_MILLI, Timeframe
from adapters.polygon.config import PolygonHistoricalConfig
from adapters.polygon.errors import PolygonDataError, PolygonRequestError
from adapters.polygon.parsing.aggregates import (
    OK_STATUSES,
    AggregateBars,
    AggregateRequest,
    eastern_day_bounds_ms,
    parse_aggregate_page,
)

# massive 2.9's BaseClient retry policy (test_http checks they still agree); repeated here
# only to subclass it with the budget.
RETRY_STATUSES = (413, 429, 499, 500, 502, 503, 504)
RETRY_BACKOFF_FACTOR = 0.1
MAX_RETRY_AFTER_SECS = 120.0  # a longer wait asked for is cut to this (urllib3's own cap is 6 hours)

TimePoint = date | datetime | str | int


class RateBudget:
    """At most ``requests_per_minute`` acquisitions in any ``window_secs`` window.

    A sliding log of the last N grant times: a caller that would be the N+1th inside the
    window sleeps until the oldest grant leaves it. The lock is held while sleeping, so
    waiting threads queue behind each other rather than all waking at once. ``clock`` and
    ``sleep`` are injectable so tests can prove the bound without waiting a minute."""

    def __init__(
        self,
        requests_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        window_secs: float = 60.0,
    ) -> None:
        if requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be positive")
        self.limit = requests_per_minute
        self.window_secs = window_secs
        self._clock = clock
        self._sleep = sleep
        self._granted: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            while True:
                now = self._clock()
                while self._granted and self._granted[0] <= now - self.window_secs:
                    self._granted.popleft()
                if len(self._granted) < self.limit:
                    self._granted.append(now)
                    return
                self._sleep(self._granted[0] + self.window_secs - now)


class _BudgetedRetry(Retry):
    """urllib3's Retry that also pays the shared budget before each retry."""

    budget: RateBudget | None = None

    def new(self, **kw: object) -> "_BudgetedRetry":
        retry = super().new(**kw)
        retry.budget = self.budget
        return retry

    def get_retry_after(self, response: urllib3.BaseHTTPResponse) -> float | None:
        """The server's Retry-After, capped at ``MAX_RETRY_AFTER_SECS``; an unreadable one
        ("soon", "inf": broken proxies send such) falls back to the backoff instead of
        failing the request with urllib3's InvalidHeader."""
        try:
            seconds = super().get_retry_after(response)
        except urllib3.exceptions.InvalidHeader:
            return None
        return None if seconds is None else min(seconds, MAX_RETRY_AFTER_SECS)

    def sleep(self, response: urllib3.BaseHTTPResponse | None = None) -> None:
        super().sleep(response)
        if self.budget is not None:
            self.budget.acquire()


class _TickersPage(msgspec.Struct):
    status: str
    results: list[dict] = []
    count: int | None = None
    next_url: str | None = None


class _DetailsPage(msgspec.Struct):
    status: str
    results: dict


class PolygonHttpClient:
    """One massive ``RESTClient`` and one rate budget, safe to share between threads.

    ``budget`` defaults to one built from ``config.requests_per_minute`` (None: unthrottled);
    pass one to share it with another client or to drive it from a test clock."""

    def __init__(self, api_key: str, config: PolygonHistoricalConfig, budget: RateBudget | None = None) -> None:
        self.config = config
        if budget is None and config.requests_per_minute is not None:
            budget = RateBudget(config.requests_per_minute)
        self.budget = budget
        retry = _BudgetedRetry(
            total=config.retries, status_forcelist=RETRY_STATUSES, backoff_factor=RETRY_BACKOFF_FACTOR
        )
        retry.budget = self.budget
        self._sdk = massive.RESTClient(
            api_key=api_key,
            base=config.base_url.rstrip("/"),
            connect_timeout=config.connect_timeout_secs,
            read_timeout=config.read_timeout_secs,
            retries=config.retries,
            maxsize=max(10, config.max_workers),
            connection_pool_kw={"retries": retry},
        )

    # -- aggregates -------------------------------------------------------------------------------

    def aggregates(self, symbol: str, timeframe: str | Timeframe, start: TimePoint, end: TimePoint) -> AggregateBars:
        """Every bar of ``symbol`` whose window starts in [start, end], across all pages.

        ``start``/``end``: epoch-ms ints (window starts, inclusive), tz-aware datetimes, or
        dates / "YYYY-MM-DD" meaning whole Eastern days. Bars come back stamped at their
        close. Raises ``PolygonRequestError`` / ``PolygonDataError`` naming symbol and range."""
        tf = timeframe if isinstance(timeframe, Timeframe) else common.timeframe(timeframe)
        request = AggregateRequest(
            symbol, tf, _epoch_ms(start, end=False), _epoch_ms(end, end=True), self.config.adjusted
        )
        if request.from_ms > request.to_ms:
            raise ValueError(f"{symbol}: start {start!r} is after end {end!r}")
        body = self._get(
            request.symbol,
            request.span,
            lambda: self._sdk.list_aggs(
                symbol,
                tf.multiplier,
                tf.timespan,
                request.from_ms,
                request.to_ms,
                adjusted=request.adjusted,
                sort="asc",
                limit=self.config.page_limit,
                raw=True,
            ),
        )
        pages = [parse_aggregate_page(body, request)]
        cursors: set[str] = set()
        while (nxt := pages[-1].next_page) is not None:
            if nxt.params["cursor"] in cursors:
                raise request.error(f"next_url repeats cursor {nxt.params['cursor']!r}")
            cursors.add(nxt.params["cursor"])
            after = next((int(p.t_ms[-1]) for p in reversed(pages) if len(p.t_ms)), None)
            body = self._get(
                request.symbol,
                request.span,
                lambda nxt=nxt: self._sdk.list_aggs(
                    symbol, tf.multiplier, tf.timespan, nxt.from_, nxt.to, params=nxt.params, raw=True
                ),
            )
            pages.append(parse_aggregate_page(body, request, after_ms=after))
        return AggregateBars.from_pages(pages, request)

    # -- reference --------------------------------------------------------------------------------

    def ticker_details(self, symbol: str) -> dict:
        """The ``results`` object of /v3/reference/tickers/{symbol} (name, sic_code, ...)."""
        span = "ticker details"
        body = self._get(symbol, span, lambda: self._sdk.get_ticker_details(symbol, raw=True))
        try:
            page = msgspec.json.decode(body, type=_DetailsPage)
        except msgspec.DecodeError as exc:
            raise PolygonDataError(symbol, span, f"malformed response ({exc})") from None
        if page.status not in OK_STATUSES:
            raise PolygonDataError(symbol, span, f"status {page.status!r}")
        return page.results

    def list_tickers(
        self, *, market: str = "stocks", active: bool = True, limit: int = 1000, max_pages: int | None = None, **filters: object
    ) -> list[dict]:
        """Reference tickers matching the filters (massive ``list_tickers`` names: ticker,
        type, exchange, search, ...), following every page up to ``max_pages``."""
        span = "reference tickers"
        first = {"market": market, "active": active, "limit": limit, **filters}
        body = self._get("*", span, lambda: self._sdk.list_tickers(raw=True, **first))
        results: list[dict] = []
        pages = 0
        while True:
            try:
                page = msgspec.json.decode(body, type=_TickersPage)
            except msgspec.DecodeError as exc:
                raise PolygonDataError("*", span, f"malformed page ({exc})") from None
            if page.status not in OK_STATUSES or (page.count is not None and page.count != len(page.results)):
                raise PolygonDataError("*", span, f"bad page: status {page.status!r}, count {page.count}, "
                                       f"{len(page.results)} results")
            results.extend(page.results)
            pages += 1
            if not page.next_url or (max_pages is not None and pages >= max_pages):
                return results
            params = dict(parse_qsl(urlsplit(page.next_url).query))
            body = self._get(
                "*",
                span,
                lambda params=params: self._sdk.list_tickers(
                    limit=None, sort=None, order=None, params=params, raw=True
                ),
            )

    # -- transport --------------------------------------------------------------------------------

    def _get(self, symbol: str, span: str, call: Callable[[], urllib3.BaseHTTPResponse]) -> bytes:
        """One budgeted SDK call -> body bytes, transport failures named by symbol and span."""
        if self.budget is not None:
            self.budget.acquire()
        try:
            return call().data
        except urllib3.exceptions.MaxRetryError as exc:
            raise PolygonRequestError(
                symbol, span, f"gave up after {self.config.retries} retries: {exc.reason}"
            ) from None
        except BadResponse as exc:
            raise PolygonRequestError(symbol, span, f"rejected: {str(exc)[:300]}") from None
        except urllib3.exceptions.HTTPError as exc:
            raise PolygonRequestError(symbol, span, f"transport error: {exc}") from None


def _epoch_ms(value: TimePoint, *, end: bool) -> int:
    """A window-start bound in epoch ms; calendar dates are whole Eastern days."""
    if isinstance(value, bool):
        raise TypeError(f"not a time: {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"datetime bounds must be tz-aware, got {value!r}")
        return pd.Timestamp(value).value // NANOS_PER_MILLI
    day = date.fromisoformat(value) if isinstance(value, str) else value
    first, last = eastern_day_bounds_ms(day, day)
    return last if end else first


__all__ = ["AggregateBars", "PolygonHttpClient", "RateBudget"]
