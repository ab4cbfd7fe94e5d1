"""Polygon aggregates pages -> validated numpy arrays, and window starts -> bar closes.

Pure (no I/O). The massive SDK's own ``list_aggs`` logs and returns fewer rows when a page is
malformed, so every page is checked here before a single bar is trusted: a truncated or
inconsistent page raises ``PolygonDataError`` naming the symbol and range, never silently
fewer bars. Pages are decoded by msgspec into typed Structs (one C-level pass, unknown fields
such as ``vw``/``n`` skipped) and then into column arrays.

Times: REST ``t`` is the window START in ms. The catalog stamps a bar with its CLOSE, so an
intraday bar closes at ``t + interval``; a daily bar closes at its NYSE session's close (13:00
ET on half days), looked up in ``catalog.sessions``. Polygon stamps a daily bar at midnight
America/New_York of its session date, and calendar dates in a request are Eastern days.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from operator import attrgetter
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

import msgspec
import numpy as np
import pandas as pd

from adapters.polygon.common import NANOS_PER_MILLI, Timeframe
from adapters.polygon.errors import PolygonDataError
from catalog.sessions import trading_sessions

EXCHANGE_TZ = "America/New_York"
OK_STATUSES = frozenset({"OK", "DELAYED"})  # DELAYED: same payload, on plans with delayed data
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class AggregateRequest:
    """What was asked for: every check compares against it and every error quotes it."""

    symbol: str
    timeframe: Timeframe
    from_ms: int  # first window start accepted, inclusive
    to_ms: int  # last window start accepted, inclusive
    adjusted: bool = True

    @property
    def span(self) -> str:
        first = pd.Timestamp(self.from_ms, unit="ms", tz="UTC").tz_convert(EXCHANGE_TZ)
        last = pd.Timestamp(self.to_ms, unit="ms", tz="UTC").tz_convert(EXCHANGE_TZ)
        return f"{self.timeframe.name} {first:%Y-%m-%d %H:%M}..{last:%Y-%m-%d %H:%M} ET"

    def error(self, reason: str) -> PolygonDataError:
        return PolygonDataError(self.symbol, self.span, reason)


class NextPage(NamedTuple):
    """Where ``next_url`` points: the aggregates path's range and its query (the cursor)."""

    from_: str
    to: str
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
class AggregatePage:
    t_ms: np.ndarray  # int64 window starts
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    results_count: int
    adjusted: bool
    next_page: NextPage | None

    @property
    def next_cursor(self) -> str | None:
        return None if self.next_page is None else self.next_page.params["cursor"]


class _Agg(msgspec.Struct, gc=False):
    o: float
    h: float
    l: float
    c: float
    v: float
    t: int


class _Page(msgspec.Struct, gc=False):
    """An error page ({"status": "ERROR", "error": ...}) has no counts: status is read first.
    An empty page may omit ``results`` and ``resultsCount``; ``adjusted`` may be absent."""

    status: str
    resultsCount: int | None = None
    adjusted: bool | None = None
    results: list[_Agg] | None = None
    next_url: str | None = None
    error: str | None = None
    message: str | None = None


_PAGE_DECODER = msgspec.json.Decoder(_Page)
_T = attrgetter("t")
_OHLCV = tuple(attrgetter(name) for name in "ohlcv")


def parse_aggregate_page(body: bytes, request: AggregateRequest, after_ms: int | None = None) -> AggregatePage:
    """Decode and validate one page; ``after_ms`` is the previous page's last window start,
    which this page must come strictly after (no overlap, no reordering)."""
    try:
        page = _PAGE_DECODER.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError is a subclass: wrong types too
        raise request.error(f"malformed aggregates page ({exc}); {len(body)} bytes") from None
    if page.status not in OK_STATUSES:
        said = page.error or page.message
        raise request.error(f"aggregates page has status {page.status!r}" + (f": {said[:300]}" if said else ""))
    if page.adjusted is not None and page.adjusted != request.adjusted:
        raise request.error(f"asked for adjusted={request.adjusted}, page says adjusted={page.adjusted}")
    rows = page.results if page.results is not None else []
    if page.resultsCount is None and rows:
        raise request.error(f"page of {len(rows)} results carries no resultsCount to check it against")
    if page.resultsCount is not None and page.resultsCount != len(rows):
        raise request.error(f"truncated page: resultsCount={page.resultsCount} but {len(rows)} results")
    n = len(rows)
    t_ms = np.fromiter(map(_T, rows), np.int64, n)  # map + attrgetter: no Python frame per row
    columns = [np.fromiter(map(get, rows), np.float64, n) for get in _OHLCV]
    _check_rows(t_ms, *columns, request=request, after_ms=after_ms)
    next_page = parse_next_url(page.next_url, request) if page.next_url else None
    return AggregatePage(t_ms, *columns, results_count=n, adjusted=page.adjusted, next_page=next_page)


def _check_rows(
    t_ms: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    *,
    request: AggregateRequest,
    after_ms: int | None,
) -> None:
    if not len(t_ms):
        return
    if np.any(np.diff(t_ms) <= 0):
        raise request.error("window starts are not strictly ascending within a page")
    if after_ms is not None and t_ms[0] <= after_ms:
        raise request.error(f"page starts at {_ms(t_ms[0])}, overlapping the previous page (ends {_ms(after_ms)})")
    if t_ms[0] < request.from_ms or t_ms[-1] > request.to_ms:
        raise request.error(f"bars {_ms(t_ms[0])}..{_ms(t_ms[-1])} fall outside the requested range")
    values = np.stack([o, h, lo, c, v])
    if not np.isfinite(values).all() or (values < 0).any():
        raise request.error("non-finite or negative prices/volumes")
    if np.any(lo > h):
        raise request.error("a bar's low is above its high")


def parse_next_url(next_url: str, request: AggregateRequest) -> NextPage:
    """The next page's range and query, from a ``next_url`` that must be this request's
    aggregates path (only the start may have advanced) carrying a ``cursor``."""
    parts = urlsplit(next_url)
    segments = [unquote(s) for s in parts.path.split("/")]
    tf = request.timeframe
    # "", "v2", "aggs", "ticker", T, "range", mult, timespan, from, to
    if (
        len(segments) != 10
        or segments[1:4] != ["v2", "aggs", "ticker"]
        or segments[5] != "range"
        or segments[4] != request.symbol
        or segments[6:8] != [str(tf.multiplier), tf.timespan]
    ):
        raise request.error(f"next_url does not continue this request: {parts.path!r}")
    params = {k: v for k, v in parse_qsl(parts.query) if k != "apiKey"}  # the key travels in a header only
    if not params.get("cursor"):
        raise request.error("next_url carries no cursor")
    return NextPage(segments[8], segments[9], params)


def bar_close_ns(t_ms: np.ndarray, request: AggregateRequest) -> np.ndarray:
    """Window starts (ms) -> bar-close times (ns): ``t + interval`` intraday; a daily bar
    closes at the close of the NYSE session on its Eastern date."""
    if not request.timeframe.is_daily:
        return t_ms * NANOS_PER_MILLI + request.timeframe.interval_ns
    if not len(t_ms):
        return np.empty(0, np.int64)
    days = pd.DatetimeIndex(t_ms * NANOS_PER_MILLI, tz="UTC").tz_convert(EXCHANGE_TZ)
    session_dates = days.tz_localize(None).normalize()
    sessions = trading_sessions(session_dates[0], session_dates[-1])
    positions = sessions.index.get_indexer(session_dates)
    if np.any(positions < 0):
        bad = session_dates[positions < 0][0]
        raise request.error(f"daily bar stamped {bad:%Y-%m-%d}, which is not an NYSE session")
    return pd.DatetimeIndex(sessions["close"]).as_unit("ns").asi8[positions]


def eastern_day_bounds_ms(first: date, last: date) -> tuple[int, int]:
    """[00:00 of ``first``, 23:59:59.999 of ``last``] in America/New_York, as epoch ms."""
    start = pd.Timestamp(first).tz_localize(EXCHANGE_TZ)
    stop = (pd.Timestamp(last) + pd.Timedelta(days=1)).tz_localize(EXCHANGE_TZ)
    return start.value // NANOS_PER_MILLI, stop.value // NANOS_PER_MILLI - 1


@dataclass(frozen=True, slots=True)
class AggregateBars:
    """All pages of one request: bar-close times (ns, int64) and float64 OHLCV columns."""

    symbol: str
    timeframe: str
    ts_ns: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_ns)

    @classmethod
    def from_pages(cls, pages: Sequence[AggregatePage], request: AggregateRequest) -> "AggregateBars":
        def joined(name: str, dtype: type) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in pages]) if pages else np.empty(0, dtype)

        t_ms = joined("t_ms", np.int64)
        return cls(
            request.symbol,
            request.timeframe.name,
            bar_close_ns(t_ms, request),
            *(joined(name, np.float64) for name in ("open", "high", "low", "close", "volume")),
        )

    def select(self, mask: np.ndarray) -> "AggregateBars":
        return AggregateBars(
            self.symbol,
            self.timeframe,
            *(a[mask] for a in (self.ts_ns, self.open, self.high, self.low, self.close, self.volume)),
        )

    def to_frame(self) -> pd.DataFrame:
        """The catalog's bars layout: index ``ts`` = bar close (UTC), OHLCV float columns."""
        index = pd.DatetimeIndex(self.ts_ns.view("datetime64[ns]"), name="ts").tz_localize("UTC")
        return pd.DataFrame(
            {"open": self.open, "high": self.high, "low": self.low, "close": self.close, "volume": self.volume},
            index=index,
            copy=False,
        )


def _ms(value: int) -> str:
    return f"{pd.Timestamp(int(value), unit='ms', tz='UTC').tz_convert(EXCHANGE_TZ):%Y-%m-%d %H:%M} ET"
