"""The sandbox's REST side, driven through massive.RESTClient; raw urllib3 only to see the
status codes and bodies that massive hides."""

import json
import math
import os
import signal
import socket
import threading
import time
from pathlib import Path

import massive
import numpy as np
import pandas as pd
import pytest
import urllib3
from massive.exceptions import BadResponse
from urllib3.exceptions import MaxRetryError

from adapters.polygon.sandbox import Fault, PolygonSandbox, SimClock, parse_fault
from catalog.sectors import SIC_DIVISIONS, representative_sic, sic_division
from catalog.store import EmptyCatalogError, MarketCatalog

FIRST, LAST = "2024-12-01", "2024-12-31"
AUTH = {"Authorization": "Bearer test-key"}


def client(sandbox: PolygonSandbox, **kwargs) -> massive.RESTClient:
    return massive.RESTClient(api_key="test-key", base=sandbox.base_url, **kwargs)


def raw_get(
    sandbox: PolygonSandbox, path: str, key: str | None = "test-key"
) -> tuple[int, dict, dict]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = urllib3.request("GET", sandbox.base_url + path, headers=headers, retries=False)
    return response.status, dict(response.headers), json.loads(response.data)


def aggs_path(
    ticker: str = "S000", size: str = "1/minute", first: str = FIRST, last: str = LAST
) -> str:
    return f"/v2/aggs/ticker/{ticker}/range/{size}/{first}/{last}"


# -- aggregates -------------------------------------------------------------------------------


def test_list_aggs_pages_through_the_whole_catalog(
    sandbox: PolygonSandbox, small_catalog: Path
) -> None:
    catalog = MarketCatalog(small_catalog)
    rest = client(sandbox)
    for symbol in catalog.symbols():
        bars = catalog.read_bars(symbol)
        rows = list(rest.list_aggs(symbol, 1, "minute", FIRST, LAST, limit=500))
        assert [r.timestamp + 60_000 for r in rows] == [ts.value // 1_000_000 for ts in bars.index]
        assert [(r.open, r.high, r.low, r.close, r.volume) for r in rows] == list(
            bars[["open", "high", "low", "close", "volume"]].itertuples(index=False, name=None)
        )
        assert all(r.transactions == 1 for r in rows)
    per_symbol = math.ceil(catalog.bar_count("S000") / 500)
    log = sandbox.requests
    assert len(log) == per_symbol * len(catalog.symbols())
    assert all(r.status == 200 for r in log)
    first_pages = log[::per_symbol]
    assert all(r.query == {"limit": "500"} for r in first_pages)
    follow_ups = [r for r in log if r not in first_pages]
    assert follow_ups and all(set(r.query) == {"cursor"} for r in follow_ups)


def test_sort_desc_epoch_bounds_and_one_page_get(sandbox: PolygonSandbox) -> None:
    rest = client(sandbox)
    ascending = list(rest.list_aggs("S001", 1, "minute", FIRST, LAST, limit=50_000))
    descending = list(rest.list_aggs("S001", 1, "minute", FIRST, LAST, sort="desc", limit=400))
    assert descending == ascending[::-1]
    lo, hi = ascending[10].timestamp, ascending[20].timestamp
    inclusive = list(rest.list_aggs("S001", 1, "minute", lo, hi))
    assert inclusive == ascending[10:21]
    assert rest.get_aggs("S001", 1, "minute", FIRST, LAST, limit=7) == ascending[:7]
    day = list(rest.list_aggs("S001", 1, "minute", "2024-12-30", "2024-12-30"))
    assert {
        pd.Timestamp(r.timestamp, unit="ms", tz="America/New_York").date().isoformat() for r in day
    } == {"2024-12-30"}


def test_unknown_ticker_is_an_empty_ok_answer(sandbox: PolygonSandbox) -> None:
    assert list(client(sandbox).list_aggs("NOPE", 1, "minute", FIRST, LAST)) == []
    status, _, body = raw_get(sandbox, aggs_path("NOPE"))
    assert (
        status == 200
        and body["status"] == "OK"
        and body["resultsCount"] == 0
        and "results" not in body
    )
    assert body["ticker"] == "NOPE" and body["adjusted"] is True


def test_response_shape_and_cursor(sandbox: PolygonSandbox) -> None:
    status, _, body = raw_get(sandbox, aggs_path(size="5/minute") + "?adjusted=false&limit=2")
    assert status == 200
    assert body["adjusted"] is False and body["resultsCount"] == body["queryCount"] == 2
    assert set(body["results"][0]) == {"o", "h", "l", "c", "v", "vw", "t", "n"}
    assert body["next_url"].startswith(sandbox.base_url + aggs_path(size="5/minute") + "?cursor=")
    cursor_only = body["next_url"][len(sandbox.base_url) :]
    status, _, second = raw_get(sandbox, cursor_only)
    assert status == 200 and second["adjusted"] is False
    assert second["results"][0]["t"] == body["results"][1]["t"] + 5 * 60_000


@pytest.mark.parametrize(
    "path",
    [
        aggs_path(size="2/minute"),
        aggs_path(size="1/week"),
        aggs_path(first="yesterday"),
        aggs_path() + "?sort=sideways",
        aggs_path() + "?cursor=not-a-cursor",
    ],
)
def test_bad_requests_get_a_polygon_400(sandbox: PolygonSandbox, path: str) -> None:
    status, _, body = raw_get(sandbox, path)
    assert status == 400 and body["status"] == "ERROR" and body["error"] and body["request_id"]


def test_bad_key_is_rejected(sandbox: PolygonSandbox) -> None:
    wrong = massive.RESTClient(api_key="wrong", base=sandbox.base_url)
    with pytest.raises(BadResponse, match="Unknown API Key"):
        list(wrong.list_aggs("S000", 1, "minute", FIRST, LAST))
    status, _, body = raw_get(sandbox, aggs_path(), key=None)
    assert status == 401 and body["status"] == "ERROR" and body["error"] == "Unknown API Key"
    status, _, _ = raw_get(sandbox, aggs_path() + "?apiKey=test-key", key=None)
    assert status == 200


# -- faults -----------------------------------------------------------------------------------


def test_a_single_rate_limit_recovers_and_retry_after_is_honoured(sandbox: PolygonSandbox) -> None:
    sandbox.add_fault(Fault(kind="rate_limit", target="rest", retry_after_secs=1.0))
    started = time.monotonic()
    rows = list(client(sandbox).list_aggs("S000", 1, "minute", FIRST, LAST))
    assert time.monotonic() - started >= 1.0
    assert len(rows) == 1170
    assert [r.status for r in sandbox.requests] == [429, 200]
    sandbox.add_fault(Fault(kind="rate_limit", target="rest", retry_after_secs=2.5))
    status, headers, body = raw_get(sandbox, aggs_path())
    assert status == 429 and headers["Retry-After"] == "3" and body["status"] == "ERROR"


def test_server_errors_are_retried_until_massive_gives_up(sandbox: PolygonSandbox) -> None:
    sandbox.add_fault(Fault(kind="server_error", target="rest", status=502, times=2))
    assert len(list(client(sandbox).list_aggs("S000", 1, "minute", FIRST, LAST))) == 1170
    assert [r.status for r in sandbox.requests] == [502, 502, 200]
    sandbox.add_fault(Fault(kind="server_error", target="rest", times=4))
    with pytest.raises(MaxRetryError):
        list(client(sandbox).list_aggs("S000", 1, "minute", FIRST, LAST))
    assert [r.status for r in sandbox.requests][3:] == [503] * 4


def test_malformed_page_silently_shortens_the_listing(sandbox: PolygonSandbox) -> None:
    sandbox.add_fault(Fault(kind="malformed", target="rest", page=2))
    rows = list(client(sandbox).list_aggs("S000", 1, "minute", FIRST, LAST, limit=500))
    assert len(rows) == 500  # massive logs the decode error and stops: only page 1 arrived
    log = sandbox.requests
    assert [r.status for r in log] == [200, 200] and set(log[1].query) == {"cursor"}


def test_truncated_page_says_more_than_it_holds(sandbox: PolygonSandbox) -> None:
    sandbox.add_fault(Fault(kind="truncated", target="rest", page=2, symbol="S001"))
    assert len(list(client(sandbox).list_aggs("S000", 1, "minute", FIRST, LAST, limit=500))) == 1170
    assert (
        len(list(client(sandbox).list_aggs("S001", 1, "minute", FIRST, LAST, limit=500)))
        == 1170 - 250
    )
    sandbox.add_fault(Fault(kind="truncated", target="rest"))
    status, _, body = raw_get(sandbox, aggs_path() + "?limit=10")
    assert (
        status == 200
        and body["resultsCount"] == 10
        and len(body["results"]) == 5
        and "next_url" in body
    )


def test_stall_makes_the_read_timeout_fire(sandbox: PolygonSandbox) -> None:
    sandbox.add_fault(Fault(kind="stall", target="rest", stall_secs=30.0))
    with pytest.raises(MaxRetryError, match="Read timed out"):  # after 0.5 s, not the 30 s stall
        list(
            client(sandbox, read_timeout=0.5, retries=0).list_aggs("S000", 1, "minute", FIRST, LAST)
        )
    deadline = time.monotonic() + 5.0
    while sandbox.requests[0].status == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sandbox.requests[0].status == 499  # the server saw the client give up
    sandbox.add_fault(Fault(kind="stall", target="rest", stall_secs=30.0))
    rows = list(client(sandbox, read_timeout=0.5).list_aggs("S000", 1, "minute", FIRST, LAST))
    assert len(rows) == 1170  # massive retried the timed-out read


def test_fault_limited_to_a_symbol(sandbox: PolygonSandbox) -> None:
    sandbox.add_fault(Fault(kind="server_error", target="rest", symbol="S002"))
    rest = client(sandbox)
    list(rest.list_aggs("S000", 1, "minute", FIRST, LAST))
    list(rest.list_aggs("S002", 1, "minute", FIRST, LAST))
    assert [(r.path.split("/")[4], r.status) for r in sandbox.requests] == [
        ("S000", 200),
        ("S002", 503),
        ("S002", 200),
    ]


def test_parse_fault() -> None:
    assert parse_fault("rest:rate_limit:times=2,retry_after_secs=1") == Fault(
        kind="rate_limit", target="rest", times=2, retry_after_secs=1.0
    )
    assert parse_fault("ws:drop:after_messages=5,clean=true") == Fault(
        kind="drop", target="ws", after_messages=5, clean=True
    )
    assert parse_fault("truncated:rest:page=2,symbol=S001") == Fault(
        kind="truncated", page=2, symbol="S001"
    )
    assert Fault(kind="refuse").target == "ws"
    for bad, part in [
        ("rest", "target:kind"),
        ("rest:explode", "explode"),
        ("rest:stall:speed=1", "speed=1"),
        ("ws:drop:after_messages=many", "many"),
        ("disk:stall", "target"),
        ("stall", "target:kind"),
    ]:
        with pytest.raises(ValueError, match=part):
            parse_fault(bad)
    with pytest.raises(ValueError, match="both targets"):
        Fault(kind="stall")


# -- simulated time ---------------------------------------------------------------------------


def test_rest_never_serves_a_bar_closing_after_sim_now(small_catalog: Path) -> None:
    now = pd.Timestamp("2024-12-30 15:07", tz="UTC")
    with PolygonSandbox(small_catalog, clock=SimClock.manual(now)) as sandbox:
        rest = client(sandbox)
        minutes = list(rest.list_aggs("S000", 1, "minute", FIRST, LAST, limit=100))
        assert minutes[-1].timestamp + 60_000 == now.value // 1_000_000
        hours = list(rest.list_aggs("S000", 1, "hour", FIRST, LAST))
        assert pd.Timestamp(hours[-1].timestamp + 3_600_000, unit="ms", tz="UTC") <= now
        days = list(rest.list_aggs("S000", 1, "day", FIRST, LAST))
        assert len(days) == 1  # 2024-12-27 only: today's session has not closed
        sandbox.advance_to(pd.Timestamp("2024-12-30 21:00", tz="UTC"))
        assert len(list(rest.list_aggs("S000", 1, "day", FIRST, LAST))) == 2
        assert list(rest.list_aggs("S000", 1, "minute", FIRST, LAST))[-1].timestamp + 60_000 == (
            pd.Timestamp("2024-12-30 21:00", tz="UTC").value // 1_000_000
        )


# -- reference --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sector_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sector-catalog")
    catalog = MarketCatalog(path)
    index = pd.DatetimeIndex([pd.Timestamp("2024-12-30 14:31", tz="UTC")], name="ts")
    frame = pd.DataFrame(
        {c: [10.0] for c in ("open", "high", "low", "close")} | {"volume": [100.0]}, index=index
    )
    for symbol, sector in [("BANK", "Finance"), ("SOFT", "Services"), ("ZZZ", "SECTOR_A")]:
        catalog.write_bars(symbol, frame, sector=sector)
    return path


def test_ticker_reference_endpoints(sector_catalog: Path) -> None:
    with PolygonSandbox(sector_catalog) as sandbox:
        rest = client(sandbox)
        tickers = list(rest.list_tickers(market="stocks", active=True, limit=2))
        assert [t.ticker for t in tickers] == ["BANK", "SOFT", "ZZZ"]  # two pages
        assert all(
            (t.market, t.locale, t.primary_exchange, t.type, t.active, t.currency_name)
            == ("stocks", "us", "XNYS", "CS", True, "usd")
            for t in tickers
        )
        assert [t.ticker for t in rest.list_tickers(ticker="SOFT", market="stocks")] == ["SOFT"]
        assert list(rest.list_tickers(market="crypto")) == []
        bank = rest.get_ticker_details("BANK")
        assert sic_division(bank.sic_code) == "Finance" and bank.sic_description
        assert sic_division(rest.get_ticker_details("SOFT").sic_code) == "Services"
        synthetic = rest.get_ticker_details("ZZZ")
        assert synthetic.sic_code is None and synthetic.sic_description is None
        status, _, body = raw_get(sandbox, "/v3/reference/tickers/ZZZ")
        assert status == 200 and body["status"] == "OK" and "sic_code" not in body["results"]
        status, _, body = raw_get(sandbox, "/v3/reference/tickers/NOPE")
        assert status == 404 and body == {
            "status": "NOT_FOUND",
            "request_id": body["request_id"],
            "message": "Ticker not found.",
        }
        with pytest.raises(BadResponse):
            rest.get_ticker_details("NOPE")


def test_sic_divisions_round_trip() -> None:
    for division in SIC_DIVISIONS:
        assert sic_division(representative_sic(division.name)) == division.name
        assert sic_division(division.first) == sic_division(str(division.last)) == division.name
    assert (
        sic_division("1850") is None
        and sic_division("9999") is None
        and sic_division("n/a") is None
    )
    assert representative_sic("SECTOR_A") is None
    assert np.all(np.diff([d.first for d in SIC_DIVISIONS]) > 0)


def test_an_empty_catalog_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EmptyCatalogError, match="no symbols"):
        PolygonSandbox(tmp_path)


def test_serve_forever_stops_cleanly_on_sigterm(small_catalog: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sandbox = PolygonSandbox(small_catalog, port=port)
    answers: list[int] = []

    url = f"http://127.0.0.1:{port}{aggs_path()}"  # sandbox.base_url only exists once started

    def use_then_terminate() -> None:
        deadline = time.monotonic() + 10.0
        try:
            while not answers and time.monotonic() < deadline:
                try:
                    answers.append(urllib3.request("GET", url, headers=AUTH, retries=False).status)
                except urllib3.exceptions.HTTPError:
                    time.sleep(0.05)  # not listening yet
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=use_then_terminate)
    helper.start()
    sandbox.serve_forever()  # returns once the SIGTERM arrives
    helper.join()
    assert answers == [200]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with pytest.raises(urllib3.exceptions.HTTPError):
        urllib3.request("GET", url, headers=AUTH, retries=False)
