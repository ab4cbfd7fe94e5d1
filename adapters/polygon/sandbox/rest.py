"""Polygon REST endpoints over a catalog: aggregates and ticker reference data.

The wire format follows Polygon exactly (see wire-protocols.md): listings page with a
``next_url`` whose opaque ``cursor`` carries all the state of the listing, and follow-up pages
are requested with the cursor alone. A cursor also pins the simulated "now" of its first page,
so a listing is a consistent snapshot even while a paced clock moves on.
"""

import asyncio
import base64
import binascii
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate

import msgspec
import numpy as np
import pandas as pd
from aiohttp import web

from adapters.polygon.common import TIMEFRAMES
from adapters.polygon.sandbox.aggregation import NEW_YORK, AggSeries
from adapters.polygon.sandbox.bars import CatalogBars
from adapters.polygon.sandbox.clock import SimClock
from adapters.polygon.sandbox.faults import Fault, FaultSchedule
from catalog.sectors import representative_sic, representative_sic_description

AGGS_ROUTE = "/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from_}/{to}"
TICKERS_ROUTE = "/v3/reference/tickers"
TICKER_ROUTE = "/v3/reference/tickers/{ticker}"
DEFAULT_AGGS_LIMIT = 5000
DEFAULT_TICKERS_LIMIT = 100
MAX_TICKERS_LIMIT = 1000
_TIMEFRAMES_BY_WIRE = {(tf.multiplier, tf.timespan): tf for tf in TIMEFRAMES.values()}
_JSON = "application/json"
_encoder = msgspec.json.Encoder()


@dataclass
class RequestRecord:
    """One REST request as the sandbox saw it; ``status`` is filled in when it is answered
    (499 when the client went away before the answer)."""

    method: str
    path: str
    query: dict[str, str]
    status: int = 0


class AggsCursor(msgspec.Struct, frozen=True):
    """Everything needed to serve the next page of an aggregates listing."""

    ticker: str
    multiplier: int
    timespan: str
    from_: str
    to: str
    lo_ms: int  # inclusive bounds on the window start ``t``
    hi_ms: int
    adjusted: bool
    sort: str
    limit: int
    page: int  # 1-based number of the page this cursor asks for
    after_ms: int | None  # ``t`` of the last row served
    asof_ns: int | None  # simulated now of the first page


class TickersCursor(msgspec.Struct, frozen=True):
    ticker: str | None
    search: str | None
    market: str | None
    active: bool
    limit: int
    page: int
    offset: int


class AggRow(msgspec.Struct):
    v: float
    vw: float
    o: float
    c: float
    h: float
    l: float  # Polygon's field name (low)
    t: int
    n: int


class BadRequest(ValueError):
    """A request Polygon would answer with 400; the message becomes the ``error`` field."""


def request_id() -> str:
    return secrets.token_hex(16)


def error_response(
    status: int, message: str, *, headers: dict[str, str] | None = None
) -> web.Response:
    if status == 404:
        body = {"status": "NOT_FOUND", "request_id": request_id(), "message": message}
    else:
        body = {"status": "ERROR", "request_id": request_id(), "error": message}
    return web.Response(
        status=status, body=_encoder.encode(body), content_type=_JSON, headers=headers
    )


def encode_cursor(cursor: msgspec.Struct) -> str:
    return base64.urlsafe_b64encode(_encoder.encode(cursor)).rstrip(b"=").decode()


def decode_cursor(token: str, kind: type[msgspec.Struct]) -> msgspec.Struct:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return msgspec.json.decode(raw, type=kind)
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise BadRequest(f"invalid cursor: {exc}") from None


class RestApi:
    """Handlers of the REST endpoints; faults are applied after the request is understood,
    so a fault limited to a symbol or page hits exactly that request."""

    def __init__(
        self,
        bars: CatalogBars,
        faults: FaultSchedule,
        clock: SimClock | None,
        api_key: str,
        max_page_size: int,
        requests: list[RequestRecord],
        passthrough_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.bars = bars
        self.faults = faults
        self.clock = clock
        self.api_key = api_key
        self.max_page_size = max_page_size
        self.requests = requests
        self.passthrough_paths = passthrough_paths  # e.g. the WebSocket endpoint
        self.stopping = asyncio.Event()  # set at shutdown so stalled answers end

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(AGGS_ROUTE, self.aggs),
            web.get(TICKERS_ROUTE, self.tickers),
            web.get(TICKER_ROUTE, self.ticker_details),
        ]

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Record every REST request, check the key, and answer errors with Polygon bodies."""
        if request.path in self.passthrough_paths:
            return await handler(request)
        record = RequestRecord(request.method, request.path, dict(request.query))
        self.requests.append(record)
        try:
            response = await self._authorised(request, handler)
        except web.HTTPException as exc:
            response = error_response(exc.status, exc.reason)
        except BadRequest as exc:
            response = error_response(400, str(exc))
        except asyncio.CancelledError:
            record.status = 499
            raise
        record.status = response.status
        return response

    async def _authorised(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        key = (
            header[len("Bearer ") :]
            if header.startswith("Bearer ")
            else request.query.get("apiKey")
        )
        if key != self.api_key:
            return error_response(401, "Unknown API Key")
        return await handler(request)

    # -- aggregates -----------------------------------------------------------------------------

    async def aggs(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("cursor")
        if token:
            cursor = decode_cursor(token, AggsCursor)
        else:
            cursor = self._first_aggs_cursor(request)
        early = await self._apply_fault(cursor.ticker, cursor.page, listing=True)
        if isinstance(early, web.Response):
            return early
        body = await asyncio.to_thread(self._aggs_body, cursor, _origin(request), early)
        return web.Response(body=body, content_type=_JSON)

    def _first_aggs_cursor(self, request: web.Request) -> AggsCursor:
        info = request.match_info
        try:
            multiplier = int(info["multiplier"])
        except ValueError:
            raise BadRequest(f"multiplier must be an integer, got {info['multiplier']!r}") from None
        timespan = info["timespan"]
        if (multiplier, timespan) not in _TIMEFRAMES_BY_WIRE:
            served = ", ".join(f"{tf.multiplier}/{tf.timespan}" for tf in TIMEFRAMES.values())
            raise BadRequest(
                f"unsupported aggregate size {multiplier}/{timespan}; the sandbox serves {served}"
            )
        query = request.query
        return AggsCursor(
            ticker=info["ticker"],
            multiplier=multiplier,
            timespan=timespan,
            from_=info["from_"],
            to=info["to"],
            lo_ms=_bound_ms(info["from_"], upper=False),
            hi_ms=_bound_ms(info["to"], upper=True),
            adjusted=_bool_param(query, "adjusted", True),
            sort=_choice_param(query, "sort", ("asc", "desc")),
            limit=_int_param(query, "limit", DEFAULT_AGGS_LIMIT, 1, 50_000),
            page=1,
            after_ms=None,
            asof_ns=self.clock.now_ns() if self.clock else None,
        )

    def _aggs_body(self, cursor: AggsCursor, origin: str, fault: Fault | None) -> bytes:
        """Runs in a worker thread: reading a symbol the first time and encoding 50k rows
        must not freeze the event loop that also feeds the WebSocket clients."""
        timeframe = _TIMEFRAMES_BY_WIRE[(cursor.multiplier, cursor.timespan)]
        series = self.bars.series(cursor.ticker, timeframe)
        head = {"ticker": cursor.ticker, "adjusted": cursor.adjusted}
        lo, hi = (0, 0) if series is None else _window(series, cursor)
        size = min(cursor.limit, self.max_page_size)
        if hi <= lo:
            body = {
                **head,
                "queryCount": 0,
                "resultsCount": 0,
                "status": "OK",
                "request_id": request_id(),
            }
            return _finish(_encoder.encode(body), fault)
        descending = cursor.sort == "desc"
        first, last = (max(lo, hi - size), hi) if descending else (lo, min(hi, lo + size))
        count = last - first
        kept = count // 2 if fault is not None and fault.kind == "truncated" else count
        body = {**head, "queryCount": count, "resultsCount": count}
        kept_rows = (last - kept, last) if descending else (first, first + kept)
        body["results"] = msgspec.Raw(_encode_rows(series, *kept_rows, descending))
        body["status"] = "OK"
        body["request_id"] = request_id()
        if hi - lo > size:
            last_served = int(series.start_ms[first if descending else last - 1])
            following = msgspec.structs.replace(cursor, page=cursor.page + 1, after_ms=last_served)
            path = AGGS_ROUTE.format(
                ticker=cursor.ticker,
                multiplier=cursor.multiplier,
                timespan=cursor.timespan,
                from_=cursor.from_,
                to=cursor.to,
            )
            body["next_url"] = f"{origin}{path}?cursor={encode_cursor(following)}"
        return _finish(_encoder.encode(body), fault)

    # -- reference ------------------------------------------------------------------------------

    async def tickers(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("cursor")
        if token:
            cursor = decode_cursor(token, TickersCursor)
        else:
            query = request.query
            cursor = TickersCursor(
                ticker=query.get("ticker") or None,
                search=query.get("search") or None,
                market=query.get("market") or None,
                active=_bool_param(query, "active", True),
                limit=_int_param(query, "limit", DEFAULT_TICKERS_LIMIT, 1, MAX_TICKERS_LIMIT),
                page=1,
                offset=0,
            )
        early = await self._apply_fault(cursor.ticker, cursor.page, listing=True)
        if isinstance(early, web.Response):
            return early
        matching = [s for s in self.bars.symbols if _ticker_matches(s, cursor)]
        page = matching[cursor.offset : cursor.offset + cursor.limit]
        served = page[: len(page) // 2] if early is not None and early.kind == "truncated" else page
        body: dict = {
            "results": [self._ticker(s, details=False) for s in served],
            "status": "OK",
            "request_id": request_id(),
            "count": len(page),
        }
        if cursor.offset + cursor.limit < len(matching):
            following = msgspec.structs.replace(
                cursor, page=cursor.page + 1, offset=cursor.offset + cursor.limit
            )
            body["next_url"] = (
                f"{_origin(request)}{TICKERS_ROUTE}?cursor={encode_cursor(following)}"
            )
        return web.Response(body=_finish(_encoder.encode(body), early), content_type=_JSON)

    async def ticker_details(self, request: web.Request) -> web.StreamResponse:
        ticker = request.match_info["ticker"]
        early = await self._apply_fault(ticker, None, listing=False)
        if isinstance(early, web.Response):
            return early
        if not self.bars.has(ticker):
            return error_response(404, "Ticker not found.")
        body = {
            "results": self._ticker(ticker, details=True),
            "status": "OK",
            "request_id": request_id(),
        }
        return web.Response(body=_finish(_encoder.encode(body), early), content_type=_JSON)

    def _ticker(self, symbol: str, details: bool) -> dict:
        """Polygon's ticker shape. Like Polygon, only the details endpoint carries the SIC
        fields, and only for catalog sectors that are SIC division names."""
        row = {
            "ticker": symbol,
            "name": symbol,
            "market": "stocks",
            "locale": "us",
            "primary_exchange": "XNYS",
            "type": "CS",
            "active": True,
            "currency_name": "usd",
        }
        sector = self.bars.sectors.get(symbol, "")
        code = representative_sic(sector)
        if details and code is not None:
            row["sic_code"] = code
            row["sic_description"] = representative_sic_description(sector)
        return row

    # -- faults ---------------------------------------------------------------------------------

    async def _apply_fault(
        self, symbol: str | None, page: int | None, listing: bool
    ) -> web.Response | Fault | None:
        """An error response for faults that replace the answer; the fault itself for those
        that alter the body (malformed, truncated); None when nothing fires."""
        fault = self.faults.take_rest(symbol, page, listing)
        if fault is None:
            return None
        if fault.kind == "rate_limit":
            message = "You've exceeded the maximum requests per minute, please wait or upgrade."
            return error_response(429, message, headers=_retry_after(fault))
        if fault.kind == "server_error":
            return error_response(fault.status, "Internal server error (sandbox fault)")
        if fault.kind == "stall":
            try:
                await asyncio.wait_for(self.stopping.wait(), fault.stall_secs)
            except TimeoutError:
                pass  # the stall ran its full length; answer normally
            return None
        return fault


def _finish(body: bytes, fault: Fault | None) -> bytes:
    """Apply a body-altering fault: ``malformed`` cuts the JSON in the middle."""
    if fault is not None and fault.kind == "malformed":
        return body[: len(body) // 2]
    return body


def _window(series: AggSeries, cursor: AggsCursor) -> tuple[int, int]:
    """Row range [lo, hi) of ``series`` still to serve for ``cursor``."""
    lo = int(np.searchsorted(series.start_ms, cursor.lo_ms, side="left"))
    hi = int(np.searchsorted(series.start_ms, cursor.hi_ms, side="right"))
    if cursor.asof_ns is not None:
        hi = min(hi, int(np.searchsorted(series.end_ns, cursor.asof_ns, side="right")))
    if cursor.after_ms is not None:
        if cursor.sort == "asc":
            lo = max(lo, int(np.searchsorted(series.start_ms, cursor.after_ms, side="right")))
        else:
            hi = min(hi, int(np.searchsorted(series.start_ms, cursor.after_ms, side="left")))
    return lo, hi


def _encode_rows(series: AggSeries, first: int, last: int, descending: bool) -> bytes:
    """Rows [first, last) as Polygon result objects; contiguous slices, no gathers."""
    step = -1 if descending else 1

    def column(values: np.ndarray) -> list:
        return values[first:last][::step].tolist()

    volume = series.volume[first:last][::step]
    columns = [
        volume.astype(np.int64).tolist() if series.integral_volume else volume.tolist(),
        column(series.vwap),
        column(series.open),
        column(series.close),
        column(series.high),
        column(series.low),
        column(series.start_ms),
        column(series.trades),
    ]
    return _encoder.encode(list(map(AggRow, *columns)))


# The nanosecond timestamps the catalog and the engine use end in 2262; a bound past that
# (``to=2999-12-31``) cannot be compared with a bar, so it is a 400 naming the range.
_LAST_DAY = (pd.Timestamp.max - pd.Timedelta(days=2)).normalize()
_MAX_MS = _LAST_DAY.value // 1_000_000


def _bound_ms(value: str, upper: bool) -> int:
    """Polygon's ``from``/``to``: epoch milliseconds (inclusive) or a New York calendar date
    (inclusive whole day)."""
    out_of_range = BadRequest(
        f"date {value!r} is out of range: dates run from 1970-01-01 to {_LAST_DAY:%Y-%m-%d}"
    )
    if value.isdigit():
        if int(value) > _MAX_MS:
            raise out_of_range
        return int(value)
    try:
        day = pd.Timestamp(value)
    except ValueError:
        raise BadRequest(
            f"could not parse date {value!r}: use YYYY-MM-DD or epoch milliseconds"
        ) from None
    if day.tzinfo is not None or day != day.normalize():
        raise BadRequest(f"could not parse date {value!r}: use YYYY-MM-DD or epoch milliseconds")
    if not pd.Timestamp(0) <= day <= _LAST_DAY:
        raise out_of_range
    if upper:
        day = day + pd.Timedelta(days=1)
    ms = day.tz_localize(NEW_YORK).value // 1_000_000
    return ms - 1 if upper else ms


def _bool_param(query, name: str, default: bool) -> bool:
    raw = query.get(name)
    if raw is None:
        return default
    if raw.lower() not in ("true", "false"):
        raise BadRequest(f"{name} must be true or false, got {raw!r}")
    return raw.lower() == "true"


def _choice_param(query, name: str, choices: tuple[str, ...]) -> str:
    raw = query.get(name, choices[0])
    if raw not in choices:
        raise BadRequest(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _int_param(query, name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if value < low:
        raise BadRequest(f"{name} must be >= {low}, got {value}")
    return min(value, high)


def _ticker_matches(symbol: str, cursor: TickersCursor) -> bool:
    if not cursor.active or (cursor.market not in (None, "stocks")):
        return False
    if cursor.ticker is not None and symbol != cursor.ticker:
        return False
    return cursor.search is None or cursor.search.lower() in symbol.lower()


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _retry_after(fault: Fault) -> dict[str, str]:
    """The 429's Retry-After in the fault's form (whole seconds: urllib3, under massive,
    rejects a fractional one)."""
    if fault.retry_after_form == "absent":
        return {}
    if fault.retry_after_form == "invalid":
        return {"Retry-After": "soon"}
    if fault.retry_after_form == "http_date":
        return {"Retry-After": formatdate(time.time() + fault.retry_after_secs, usegmt=True)}
    return {"Retry-After": str(math.ceil(fault.retry_after_secs))}
