"""Ingest through the massive SDK from the sandbox: bar-for-bar copies, resumable, faults
recovered or reported (never silent loss), regular-session filtering."""

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adapters.polygon.benchmarks import measure_ingest_throughput
from adapters.polygon.common import TIMEFRAMES
from adapters.polygon.config import PolygonHistoricalConfig
from adapters.polygon.http import PolygonHttpClient
from adapters.polygon.loader import PolygonBarSource
from adapters.polygon.sandbox import Fault, PolygonSandbox
from adapters.polygon.sandbox.aggregation import minute_aggregates, resample
from catalog.ingest import IngestManifest, ingest_bars
from catalog.sessions import in_regular_session, trading_sessions
from catalog.store import MarketCatalog

SESSIONS = [date(2024, 12, 27), date(2024, 12, 30), date(2024, 12, 31)]  # small_catalog's
SYMBOLS = ["S000", "S001", "S002"]


def _source(sandbox: PolygonSandbox, regular_session_only: bool = True, **overrides: object) -> PolygonBarSource:
    settings = {"base_url": sandbox.base_url, "retries": 2, "read_timeout_secs": 0.3, "page_limit": 300, **overrides}
    return PolygonBarSource(PolygonHttpClient("test-key", PolygonHistoricalConfig(**settings)), regular_session_only)


def _ingest(dest: Path, source: PolygonBarSource, timeframe: str = "1m", first: date = SESSIONS[0],
            last: date = SESSIONS[-1]):
    return ingest_bars(dest, SYMBOLS, first, last, timeframe, source, max_workers=3, chunk_sessions=2)


def _aggs_requests(sandbox: PolygonSandbox) -> list:
    return [r for r in sandbox.requests if r.path.startswith("/v2/aggs/")]


def _assert_copy(small_catalog: Path, dest: Path) -> None:
    source, copy = MarketCatalog(small_catalog), MarketCatalog(dest)
    assert copy.symbols() == SYMBOLS
    for symbol in SYMBOLS:
        pd.testing.assert_frame_equal(copy.read_bars(symbol), source.read_bars(symbol))


# -- ingest from the sandbox ------------------------------------------------------------------------


def test_ingest_reproduces_the_catalog_and_a_rerun_adds_nothing(
    sandbox: PolygonSandbox, small_catalog: Path, tmp_path: Path
) -> None:
    report = _ingest(tmp_path, _source(sandbox))
    assert report.ok
    assert report.bars_written == {s: MarketCatalog(small_catalog).bar_count(s) for s in SYMBOLS}
    _assert_copy(small_catalog, tmp_path)
    # 2 chunks per symbol ([27, 30] = 780 bars = 3 pages, [31] = 390 bars = 2 pages)
    assert len(_aggs_requests(sandbox)) == 3 * (3 + 2)

    before = len(sandbox.requests)
    rerun = _ingest(tmp_path, _source(sandbox))
    assert sandbox.requests[before:] == []
    assert set(rerun.bars_written.values()) == {0} and set(rerun.sessions_skipped.values()) == {3}
    assert {s: MarketCatalog(tmp_path).bar_count(s) for s in SYMBOLS} == report.bars_written


@pytest.mark.parametrize("timeframe", ["5m", "1h", "1d"])
def test_ingested_larger_timeframes_equal_the_sandbox_aggregation(
    sandbox: PolygonSandbox, small_catalog: Path, tmp_path: Path, timeframe: str
) -> None:
    assert _ingest(tmp_path, _source(sandbox, page_limit=50_000), timeframe).ok
    for symbol in SYMBOLS:
        expected = resample(minute_aggregates(MarketCatalog(small_catalog).read_bars(symbol)), TIMEFRAMES[timeframe])
        got = MarketCatalog(tmp_path).read_bars(symbol, timeframe=timeframe)
        np.testing.assert_array_equal(got.index.as_unit("ns").asi8, expected.end_ns)
        for column in ("open", "high", "low", "close", "volume"):
            np.testing.assert_array_equal(got[column].to_numpy(), getattr(expected, column))


@pytest.mark.parametrize(
    "fault",
    [Fault("rate_limit", retry_after_secs=1, symbol="S001"), Fault("server_error", status=503, symbol="S001", page=2)],
)
def test_recoverable_faults_lose_nothing(
    sandbox: PolygonSandbox, small_catalog: Path, tmp_path: Path, fault: Fault
) -> None:
    sandbox.add_fault(fault)
    assert _ingest(tmp_path, _source(sandbox)).ok
    assert sandbox.pending_faults == []
    _assert_copy(small_catalog, tmp_path)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault("truncated", symbol="S001", page=2), "truncated page"),
        (Fault("malformed", symbol="S001", page=1), "malformed aggregates page"),
        (Fault("server_error", status=500, symbol="S001", times=3), "gave up after 2 retries"),
        (Fault("stall", target="rest", symbol="S001", stall_secs=10.0, times=3), "timed out"),
    ],
)
def test_failed_chunk_is_reported_not_marked_and_a_rerun_completes_it(
    sandbox: PolygonSandbox, small_catalog: Path, tmp_path: Path, fault: Fault, reason: str
) -> None:
    assert _ingest(tmp_path, _source(sandbox), first=SESSIONS[0], last=SESSIONS[0]).ok  # one day in already
    sandbox.add_fault(fault)
    report = _ingest(tmp_path, _source(sandbox))
    assert [f.symbol for f in report.failures] == ["S001"]
    failure = report.failures[0]
    assert (failure.first_session, failure.last_session, failure.sessions_pending) == (SESSIONS[1], SESSIONS[2], 2)
    assert reason in failure.error and "S001 1m 2024-12-30 00:00..2024-12-31 23:59 ET" in failure.error
    assert IngestManifest(tmp_path).done("S001", "1m") == {SESSIONS[0]}
    assert report.sessions_fetched == {"S000": 2, "S001": 0, "S002": 2}

    resumed = _ingest(tmp_path, _source(sandbox))
    assert resumed.ok and resumed.sessions_fetched == {"S000": 0, "S001": 2, "S002": 0}
    _assert_copy(small_catalog, tmp_path)


# -- the source's session filtering -----------------------------------------------------------------

EXT_SESSIONS = [date(2024, 11, 27), date(2024, 11, 29), date(2024, 12, 2)]  # 11-29: 13:00 ET close


@pytest.fixture(scope="module")
def extended_catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """One symbol with pre- and post-market minutes, 04:01..20:00 ET, around a half day."""
    closes = pd.DatetimeIndex(np.concatenate([
        pd.date_range(pd.Timestamp(day).tz_localize("America/New_York") + pd.Timedelta(hours=4, minutes=1),
                      periods=16 * 60, freq="1min").tz_convert("UTC").as_unit("ns").asi8
        for day in EXT_SESSIONS
    ]), name="ts").tz_localize("UTC")
    n = len(closes)
    price = 50.0 + np.arange(n) % 97 / 100.0
    frame = pd.DataFrame({"open": price, "high": price + 0.05, "low": price - 0.05, "close": price + 0.01,
                          "volume": 100.0 + np.arange(n) % 13}, index=closes)
    path = tmp_path_factory.mktemp("extended")
    MarketCatalog(path).write_bars("EXT", frame, sector="Finance")
    return path, frame


@pytest.fixture
def extended_sandbox(extended_catalog: tuple[Path, pd.DataFrame]) -> Iterator[PolygonSandbox]:
    with PolygonSandbox(extended_catalog[0], api_key="test-key") as running:
        yield running


def test_regular_session_only_keeps_closes_in_open_close(
    extended_sandbox: PolygonSandbox, extended_catalog: tuple[Path, pd.DataFrame]
) -> None:
    frame = extended_catalog[1]
    got = _source(extended_sandbox, page_limit=50_000).fetch("EXT", EXT_SESSIONS[0], EXT_SESSIONS[-1], "1m")
    pd.testing.assert_frame_equal(got, frame[in_regular_session(frame.index)], check_freq=False)
    per_day = got.groupby(got.index.tz_convert("America/New_York").date).size()
    assert list(per_day) == [390, 210, 390]


def test_extended_hours_keep_only_the_asked_sessions(
    extended_sandbox: PolygonSandbox, extended_catalog: tuple[Path, pd.DataFrame]
) -> None:
    frame = extended_catalog[1]
    got = _source(extended_sandbox, regular_session_only=False).fetch("EXT", EXT_SESSIONS[1], EXT_SESSIONS[1], "1m")
    local = frame.index.tz_convert("America/New_York")
    pd.testing.assert_frame_equal(got, frame[local.date == EXT_SESSIONS[1]], check_freq=False)
    assert len(got) == 16 * 60


def test_hourly_and_daily_bars_close_on_the_session_clock(extended_sandbox: PolygonSandbox) -> None:
    source = _source(extended_sandbox)
    hourly = source.fetch("EXT", EXT_SESSIONS[0], EXT_SESSIONS[1], "1h").index.tz_convert("America/New_York")
    assert hourly[0] == pd.Timestamp("2024-11-27 10:00", tz="America/New_York")  # the 09:00-10:00 bar
    assert hourly[-1] == pd.Timestamp("2024-11-29 13:00", tz="America/New_York")  # half-day close
    daily = source.fetch("EXT", EXT_SESSIONS[0], EXT_SESSIONS[-1], "1d")
    closes = trading_sessions(EXT_SESSIONS[0], EXT_SESSIONS[-1])["close"]
    assert list(daily.index) == list(closes)
    assert daily.index[1] == pd.Timestamp("2024-11-29 18:00", tz="UTC")


@pytest.mark.slow
def test_throughput_helper_ingests_everything_from_a_separate_process(tmp_path: Path) -> None:
    result = measure_ingest_throughput(n_symbols=2, n_days=2, workdir=tmp_path)
    assert result["failures"] == [] and result["bars"] == 2 * 2 * 390 and result["bars_per_second"] > 0
