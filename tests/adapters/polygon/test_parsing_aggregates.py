"""Aggregates pages: every inconsistency is an error naming symbol and range; closes are right."""

from datetime import date

import msgspec
import numpy as np
import pandas as pd
import pytest

from adapters.polygon.common import TIMEFRAMES
from adapters.polygon.errors import PolygonDataError
from adapters.polygon.parsing.aggregates import (
    AggregateBars,
    AggregateRequest,
    bar_close_ns,
    eastern_day_bounds_ms,
    parse_aggregate_page,
    parse_next_url,
)

OPEN_2024_01_02_MS = pd.Timestamp("2024-01-02 14:30", tz="UTC").value // 1_000_000
MINUTE_MS = 60_000


def _request(tf: str = "1m", first: date = date(2024, 1, 2), last: date = date(2024, 1, 2)) -> AggregateRequest:
    return AggregateRequest("AAPL", TIMEFRAMES[tf], *eastern_day_bounds_ms(first, last), adjusted=True)


def _rows(n: int, start_ms: int = OPEN_2024_01_02_MS, step_ms: int = MINUTE_MS) -> list[dict]:
    return [
        {"o": 100.0 + i, "h": 101.0 + i, "l": 99.0 + i, "c": 100.5 + i, "v": 1000 + i, "vw": 100.2, "n": 7,
         "t": start_ms + i * step_ms}
        for i in range(n)
    ]


def _body(rows: list[dict] | None, **overrides: object) -> bytes:
    page: dict = {"ticker": "AAPL", "queryCount": len(rows or []), "resultsCount": len(rows or []),
                  "adjusted": True, "status": "OK", "request_id": "r1"}
    if rows is not None:
        page["results"] = rows
    page.update(overrides)
    return msgspec.json.encode(page)


def test_valid_page_decodes_into_columns_and_cursor() -> None:
    body = _body(_rows(3), next_url="https://api.massive.com/v2/aggs/ticker/AAPL/range/1/minute/"
                                    "1704205980000/1704257999999?cursor=abc%3D&limit=2")
    page = parse_aggregate_page(body, _request())
    assert page.results_count == 3 and page.adjusted
    assert page.t_ms.dtype == np.int64 and page.t_ms[0] == OPEN_2024_01_02_MS
    np.testing.assert_array_equal(page.open, [100.0, 101.0, 102.0])
    np.testing.assert_array_equal(page.volume, [1000.0, 1001.0, 1002.0])
    assert page.next_cursor == "abc="
    assert page.next_page.from_ == "1704205980000" and page.next_page.params == {"cursor": "abc=", "limit": "2"}


def test_empty_page_without_results_is_valid() -> None:
    page = parse_aggregate_page(_body(None), _request())
    assert page.results_count == 0 and len(page.t_ms) == 0 and page.next_page is None


def _without(body: bytes, *fields: str) -> bytes:
    page = msgspec.json.decode(body)
    return msgspec.json.encode({k: v for k, v in page.items() if k not in fields})


def test_what_the_real_api_may_send_is_accepted() -> None:
    """Fields our sandbox always sends but the real API may leave out, nulls and extra fields."""
    assert parse_aggregate_page(_without(_body(None), "resultsCount", "queryCount"), _request()).results_count == 0
    assert parse_aggregate_page(_without(_body(_rows(2)), "adjusted"), _request()).results_count == 2
    extra = [{**row, "vw": None, "n": None, "otc": False} for row in _rows(2)]
    assert parse_aggregate_page(_body(extra, status="DELAYED", extra_field={"a": 1}), _request()).results_count == 2
    fractional = [{**row, "v": 1.5e6} for row in _rows(1)]
    assert parse_aggregate_page(_body(fractional), _request()).volume.tolist() == [1.5e6]


@pytest.mark.parametrize(("body", "reason"), [
    (b'{"status":"ERROR","request_id":"x","error":"Unknown API Key"}', "status 'ERROR': Unknown API Key"),
    (b'{"status":"NOT_AUTHORIZED","request_id":"x","message":"You are not entitled to this data."}',
     "status 'NOT_AUTHORIZED': You are not entitled to this data."),
    (_without(_body(_rows(2)), "resultsCount"), "page of 2 results carries no resultsCount"),
])
def test_an_error_page_says_what_the_vendor_said(body: bytes, reason: str) -> None:
    """An error page has no resultsCount: it was reported as 'malformed', hiding the vendor's reason."""
    with pytest.raises(PolygonDataError, match=reason):
        parse_aggregate_page(body, _request())


def test_next_url_never_forwards_an_api_key_in_the_query() -> None:
    """A next_url may carry extra query parameters (limit, sort, even apiKey): all but the key are
    passed on; the key goes in the Authorization header only, never into a URL that gets logged."""
    url = ("https://api.polygon.io/v2/aggs/ticker/AAPL/range/1/minute/1704205980000/1704257999999"
           "?cursor=abc&adjusted=true&limit=50000&sort=asc&apiKey=SECRET")
    nxt = parse_next_url(url, _request())
    assert nxt.params == {"cursor": "abc", "adjusted": "true", "limit": "50000", "sort": "asc"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_body(_rows(3))[:-40], "malformed"),
        (b"<html>oops</html>", "malformed"),
        (_body(_rows(3), resultsCount=5), "truncated page: resultsCount=5 but 3 results"),
        (_body(None, resultsCount=2), "truncated page"),
        (_body(_rows(2), status="ERROR"), "status 'ERROR'"),
        (_body(_rows(2), adjusted=False), "adjusted=False"),
        (_body([{**_rows(1)[0], "c": "x"}]), "malformed"),
        (_body([{k: v for k, v in _rows(1)[0].items() if k != "v"}]), "malformed"),
        (_body(list(reversed(_rows(3)))), "not strictly ascending"),
        (_body(_rows(2, step_ms=0)), "not strictly ascending"),
        (_body(_rows(1, start_ms=OPEN_2024_01_02_MS + 86_400_000)), "outside the requested range"),
        (_body([{**_rows(1)[0], "l": 200.0}]), "low is above its high"),
        (_body([{**_rows(1)[0], "v": -1}]), "negative"),
    ],
)
def test_bad_pages_raise_naming_symbol_and_range(body: bytes, reason: str) -> None:
    with pytest.raises(PolygonDataError) as caught:
        parse_aggregate_page(body, _request())
    message = str(caught.value)
    assert reason in message
    assert "AAPL" in message and "1m 2024-01-02 00:00..2024-01-02 23:59 ET" in message


def test_page_overlapping_the_previous_one_is_rejected() -> None:
    rows = _rows(4)
    first = parse_aggregate_page(_body(rows[:3]), _request())
    with pytest.raises(PolygonDataError, match="overlapping the previous page"):
        parse_aggregate_page(_body(rows[2:]), _request(), after_ms=int(first.t_ms[-1]))
    assert len(parse_aggregate_page(_body(rows[3:]), _request(), after_ms=int(first.t_ms[-1])).t_ms) == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://x/v2/aggs/ticker/MSFT/range/1/minute/1/2?cursor=a",  # another ticker
        "https://x/v2/aggs/ticker/AAPL/range/5/minute/1/2?cursor=a",  # another timeframe
        "https://x/v3/trades/AAPL?cursor=a",
        "https://x/v2/aggs/ticker/AAPL/range/1/minute/1/2",  # no cursor
    ],
)
def test_next_url_must_continue_the_same_request(url: str) -> None:
    with pytest.raises(PolygonDataError, match="AAPL"):
        parse_next_url(url, _request())


def test_intraday_close_is_window_start_plus_interval() -> None:
    t = np.array([OPEN_2024_01_02_MS], np.int64)
    for tf, minutes in [("1m", 1), ("5m", 5), ("15m", 15), ("1h", 60)]:
        close = bar_close_ns(t, _request(tf))
        assert pd.Timestamp(close[0], tz="UTC") == pd.Timestamp("2024-01-02 14:30", tz="UTC") + pd.Timedelta(minutes=minutes)


def test_daily_close_is_the_session_close_including_half_days() -> None:
    # Polygon stamps a daily bar at midnight New York time of its session date.
    days = pd.DatetimeIndex(["2024-11-27", "2024-11-29", "2024-12-02"]).tz_localize("America/New_York")
    t_ms = days.as_unit("ns").asi8 // 1_000_000
    closes = pd.DatetimeIndex(bar_close_ns(t_ms, _request("1d", date(2024, 11, 27), date(2024, 12, 2)))).tz_localize("UTC")
    expected = pd.DatetimeIndex(["2024-11-27 21:00", "2024-11-29 18:00", "2024-12-02 21:00"]).tz_localize("UTC")
    assert list(closes) == list(expected)  # 2024-11-29 is a 13:00 ET half day


def test_daily_bar_on_a_non_session_is_an_error() -> None:
    saturday = pd.Timestamp("2024-01-06", tz="America/New_York").value // 1_000_000
    with pytest.raises(PolygonDataError, match="2024-01-06, which is not an NYSE session"):
        bar_close_ns(np.array([saturday]), _request("1d", date(2024, 1, 2), date(2024, 1, 8)))


def test_eastern_day_bounds_follow_daylight_saving() -> None:
    winter = eastern_day_bounds_ms(date(2024, 1, 2), date(2024, 1, 2))
    summer = eastern_day_bounds_ms(date(2024, 7, 1), date(2024, 7, 1))
    assert pd.Timestamp(winter[0], unit="ms", tz="UTC") == pd.Timestamp("2024-01-02 05:00", tz="UTC")
    assert pd.Timestamp(summer[1] + 1, unit="ms", tz="UTC") == pd.Timestamp("2024-07-02 04:00", tz="UTC")


def test_pages_join_into_bars_in_the_catalog_layout() -> None:
    request = _request()
    rows = _rows(5)
    pages = [parse_aggregate_page(_body(rows[:2]), request),
             parse_aggregate_page(_body(rows[2:]), request, after_ms=rows[1]["t"])]
    bars = AggregateBars.from_pages(pages, request)
    frame = bars.to_frame()
    assert len(bars) == 5 and list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert frame.index.name == "ts" and str(frame.index.tz) == "UTC"
    assert frame.index[0] == pd.Timestamp("2024-01-02 14:31", tz="UTC")
    assert frame["close"].iloc[-1] == 104.5
    assert len(AggregateBars.from_pages([], request).to_frame()) == 0
