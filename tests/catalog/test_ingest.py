"""The resumable ingest job, driven by a real source that reads another catalog."""

import json
import threading
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from catalog.errors import IngestManifestError
from catalog.ingest import MANIFEST_NAME, BarSourceError, IngestManifest, ingest_bars
from catalog.jobs import generate_catalog
from catalog.sessions import sessions_ending
from catalog.store import MarketCatalog

N_DAYS = 6


@pytest.fixture(scope="module")
def source_catalog(tmp_path_factory: pytest.TempPathFactory) -> MarketCatalog:
    return generate_catalog(tmp_path_factory.mktemp("src"), n_symbols=3, n_days=N_DAYS, seed=3)


@pytest.fixture(scope="module")
def sessions() -> list[date]:
    return [d.date() for d in sessions_ending("2024-12-31", N_DAYS).index]


class CatalogSource:
    """Bars of the requested sessions' New York dates, read from a catalog; counts fetches
    and can be told to fail a symbol's Nth fetch, the way a flaky API would."""

    def __init__(self, catalog: MarketCatalog, fail: dict[str, int] | None = None) -> None:
        self.frames = {s: catalog.read_bars(s) for s in catalog.symbols()}
        self.fail = dict(fail or {})
        self.calls: list[tuple[str, date, date]] = []
        self._lock = threading.Lock()

    def fetch(self, symbol: str, first_session: date, last_session: date, timeframe: str) -> pd.DataFrame:
        with self._lock:
            self.calls.append((symbol, first_session, last_session))
            n = sum(1 for c in self.calls if c[0] == symbol)
        if self.fail.get(symbol) == n:
            raise BarSourceError(f"{symbol} {first_session}..{last_session}: scripted failure")
        frame = self.frames[symbol]
        lo = pd.Timestamp(first_session).tz_localize("America/New_York")
        hi = (pd.Timestamp(last_session) + pd.Timedelta(days=1)).tz_localize("America/New_York")
        return frame[(frame.index > lo) & (frame.index <= hi)]


def _assert_same_bars(source: MarketCatalog, dest_path: Path) -> None:
    dest = MarketCatalog(dest_path)
    assert dest.symbols() == source.symbols()
    for symbol in source.symbols():
        pd.testing.assert_frame_equal(dest.read_bars(symbol), source.read_bars(symbol))


def test_ingest_copies_every_bar_and_a_rerun_fetches_nothing(
    tmp_path: Path, source_catalog: MarketCatalog, sessions: list[date]
) -> None:
    source = CatalogSource(source_catalog)
    progress: list[tuple[str, int, int]] = []
    report = ingest_bars(tmp_path, source_catalog.symbols(), sessions[0], sessions[-1], "1m", source,
                         max_workers=2, chunk_sessions=4, on_progress=lambda *a: progress.append(a),
                         sectors={"S000": "Finance"})
    assert report.ok and report.sessions_total == N_DAYS
    assert report.bars_written == {s: source_catalog.bar_count(s) for s in source_catalog.symbols()}
    assert set(report.sessions_fetched.values()) == {N_DAYS} and set(report.sessions_skipped.values()) == {0}
    assert len(source.calls) == 3 * 2  # 6 contiguous sessions in chunks of <= 4
    assert ("S001", N_DAYS, N_DAYS) in progress and ("S001", 0, N_DAYS) in progress
    _assert_same_bars(source_catalog, tmp_path)
    assert MarketCatalog(tmp_path).sectors()["S000"] == "Finance"
    assert MarketCatalog(tmp_path).sectors()["S001"] == "UNKNOWN"

    again = CatalogSource(source_catalog)
    rerun = ingest_bars(tmp_path, source_catalog.symbols(), sessions[0], sessions[-1], "1m", again)
    assert again.calls == [] and set(rerun.bars_written.values()) == {0}
    assert set(rerun.sessions_skipped.values()) == {N_DAYS}
    _assert_same_bars(source_catalog, tmp_path)
    assert MarketCatalog(tmp_path).sectors()["S000"] == "Finance"  # kept without sectors=


def test_only_missing_sessions_are_fetched_in_contiguous_runs(
    tmp_path: Path, source_catalog: MarketCatalog, sessions: list[date]
) -> None:
    # sessions 1 and 3 (0-based) already ingested: the gaps are [0], [2], [4, 5]
    first = CatalogSource(source_catalog)
    for day in (sessions[1], sessions[3]):
        ingest_bars(tmp_path, ["S002"], day, day, "1m", first)
    source = CatalogSource(source_catalog)
    report = ingest_bars(tmp_path, ["S002"], sessions[0], sessions[-1], "1m", source)
    assert source.calls == [("S002", sessions[0], sessions[0]), ("S002", sessions[2], sessions[2]),
                            ("S002", sessions[4], sessions[5])]
    assert report.sessions_skipped == {"S002": 2} and report.sessions_fetched == {"S002": 4}
    pd.testing.assert_frame_equal(MarketCatalog(tmp_path).read_bars("S002"), source_catalog.read_bars("S002"))


def test_a_failed_chunk_is_reported_not_marked_and_resumed_without_gap_or_duplicate(
    tmp_path: Path, source_catalog: MarketCatalog, sessions: list[date]
) -> None:
    source = CatalogSource(source_catalog, fail={"S001": 2})  # S001's second chunk fails
    report = ingest_bars(tmp_path, source_catalog.symbols(), sessions[0], sessions[-1], "1m", source,
                         chunk_sessions=2)
    assert [f.symbol for f in report.failures] == ["S001"]
    failure = report.failures[0]
    assert (failure.first_session, failure.last_session, failure.sessions_pending) == (sessions[2], sessions[3], 4)
    assert "S001" in str(failure) and str(sessions[2]) in str(failure) and "scripted failure" in str(failure)
    assert report.sessions_fetched["S001"] == 2 and report.sessions_fetched["S000"] == N_DAYS
    assert IngestManifest(tmp_path).done("S001", "1m") == set(sessions[:2])

    resumed_source = CatalogSource(source_catalog)
    resumed = ingest_bars(tmp_path, source_catalog.symbols(), sessions[0], sessions[-1], "1m", resumed_source)
    assert resumed.ok and resumed_source.calls == [("S001", sessions[2], sessions[-1])]
    _assert_same_bars(source_catalog, tmp_path)


def test_bars_written_but_not_marked_are_replaced_not_duplicated(
    tmp_path: Path, source_catalog: MarketCatalog, sessions: list[date]
) -> None:
    """A crash between write and mark leaves bars the manifest does not know: the re-run
    fetches that chunk again and the idempotent writer replaces it."""
    ingest_bars(tmp_path, ["S000"], sessions[0], sessions[-1], "1m", CatalogSource(source_catalog))
    manifest_path = tmp_path / MANIFEST_NAME
    manifest_path.write_text(json.dumps({"version": 1, "done": {"1m": {"S000": [[str(sessions[0]), str(sessions[1])]]}}}))
    source = CatalogSource(source_catalog)
    ingest_bars(tmp_path, ["S000"], sessions[0], sessions[-1], "1m", source)
    assert source.calls == [("S000", sessions[2], sessions[-1])]
    pd.testing.assert_frame_equal(MarketCatalog(tmp_path).read_bars("S000"), source_catalog.read_bars("S000"))


def test_a_session_without_bars_is_still_marked_done(tmp_path: Path, sessions: list[date]) -> None:
    class Halted:
        calls = 0

        def fetch(self, symbol: str, first: date, last: date, timeframe: str) -> pd.DataFrame:
            Halted.calls += 1
            return pd.DataFrame(columns=["open", "high", "low", "close", "volume"],
                                index=pd.DatetimeIndex([], tz="UTC", name="ts"), dtype=float)

    report = ingest_bars(tmp_path, ["HALT"], sessions[0], sessions[1], "5m", Halted())
    assert report.ok and report.bars_written == {"HALT": 0} and report.sessions_fetched == {"HALT": 2}
    ingest_bars(tmp_path, ["HALT"], sessions[0], sessions[1], "5m", Halted())
    assert Halted.calls == 1


def test_bars_outside_the_requested_sessions_fail_the_chunk(
    tmp_path: Path, source_catalog: MarketCatalog, sessions: list[date]
) -> None:
    class Sloppy(CatalogSource):
        def fetch(self, symbol: str, first: date, last: date, timeframe: str) -> pd.DataFrame:
            return self.frames[symbol]  # every session, not just the asked ones

    report = ingest_bars(tmp_path, ["S000"], sessions[2], sessions[2], "1m", Sloppy(source_catalog))
    assert "outside these sessions" in report.failures[0].error
    assert IngestManifest(tmp_path).done("S000", "1m") == set()


def test_manifest_is_compact_and_survives_a_reload(tmp_path: Path, sessions: list[date]) -> None:
    manifest = IngestManifest(tmp_path)
    manifest.mark_done("AAA", "1m", sessions[:3])
    manifest.mark_done("AAA", "1m", sessions[4:])
    manifest.mark_done("AAA", "1d", sessions)
    content = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert content["done"]["1m"]["AAA"] == [[str(sessions[0]), str(sessions[2])], [str(sessions[4]), str(sessions[5])]]
    assert content["done"]["1d"]["AAA"] == [[str(sessions[0]), str(sessions[-1])]]
    assert IngestManifest(tmp_path).done("AAA", "1m") == set(sessions) - {sessions[3]}
    assert list(tmp_path.iterdir()) == [tmp_path / MANIFEST_NAME]  # no temp files left behind


def test_an_unreadable_manifest_is_an_error_not_a_silent_restart(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(IngestManifestError, match="delete it to re-ingest"):
        IngestManifest(tmp_path)


def test_a_source_bug_propagates(tmp_path: Path, sessions: list[date]) -> None:
    class Broken:
        def fetch(self, symbol: str, first: date, last: date, timeframe: str) -> pd.DataFrame:
            raise KeyError("a bug, not a data problem")

    with pytest.raises(KeyError):
        ingest_bars(tmp_path, ["S000"], sessions[0], sessions[0], "1m", Broken())


def test_a_catalog_never_mixes_source_settings(
    tmp_path: Path, source_catalog: MarketCatalog, sessions: list[date]
) -> None:
    """Split-adjusted and unadjusted (or regular-only and extended) bars of one timeframe
    cannot share a catalog: the second kind is refused before anything is fetched."""
    source = CatalogSource(source_catalog)
    adjusted = {"adjusted": True, "regular_session_only": True}
    report = ingest_bars(tmp_path, ["S000"], sessions[0], sessions[-1], "1m", source, source_settings=adjusted)
    assert report.ok
    again = ingest_bars(tmp_path, ["S000"], sessions[0], sessions[-1], "1m", source, source_settings=dict(adjusted))
    assert again.sessions_skipped["S000"] == len(sessions)
    calls = len(source.calls)
    with pytest.raises(IngestManifestError, match=r"holds 1m bars ingested with \{'adjusted': True"):
        ingest_bars(tmp_path, ["S000"], sessions[0], sessions[-1], "1m", source,
                    source_settings={"adjusted": False, "regular_session_only": True})
    assert len(source.calls) == calls
    # Another timeframe binds its own settings.
    IngestManifest(tmp_path).claim_settings("1d", {"adjusted": False, "regular_session_only": True})
    settings = json.loads((tmp_path / MANIFEST_NAME).read_text())["settings"]
    assert settings == {"1m": adjusted, "1d": {"adjusted": False, "regular_session_only": True}}
