"""`describe_catalog`: what a catalog holds, checked against bars written three ways."""

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from catalog.errors import DamagedCatalogError, MissingCatalogError
from catalog.ingest import ingest_bars
from catalog.inventory import IMPORTED, INGESTED, SYNTHETIC, describe_catalog
from catalog.jobs import generate_catalog, import_csv
from catalog.sessions import session_minutes, trading_sessions
from catalog.store import MarketCatalog


def minutes_of(*days: str) -> pd.DatetimeIndex:
    return session_minutes(pd.concat([trading_sessions(d, d) for d in days]))


def flat_bars(index: pd.DatetimeIndex, price: float = 20.0) -> pd.DataFrame:
    return pd.DataFrame({"open": price, "high": price, "low": price, "close": price, "volume": 100.0}, index=index)


def write_csv(path: Path, closes: pd.DatetimeIndex) -> Path:
    starts = (closes - pd.Timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
    path.write_text("timestamp,open,high,low,close,volume\n" + "".join(f"{t},20,20,20,20,100\n" for t in starts))
    return path


class FrameSource:
    """A bar source serving fixed frames (what the ingest job sees from Polygon)."""

    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self.frames = frames

    def fetch(self, symbol: str, first: date, last: date, timeframe: str) -> pd.DataFrame:
        frame = self.frames[symbol]
        lo = pd.Timestamp(first).tz_localize("America/New_York")
        hi = (pd.Timestamp(last) + pd.Timedelta(days=1)).tz_localize("America/New_York")
        return frame[(frame.index > lo) & (frame.index <= hi)]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inv") / "cat"
    generate_catalog(path, n_symbols=2, n_days=3, seed=1)  # 2024-12-26, 27, 30, 31 -> last 3 sessions
    # Imported: a full 2024-01-03, nothing on 01-04, 30 minutes of 01-05.
    closes = minutes_of("2024-01-03").append(minutes_of("2024-01-05")[:30])
    import_csv(write_csv(path.parent / "abc.csv", closes), "abc", path, sector="Finance")
    # Ingested: two full sessions of 1m bars and their 1d bars, one session with a missing minute.
    full = minutes_of("2024-02-01", "2024-02-02", "2024-02-05")
    one_missing = full.delete(500)
    daily = pd.DatetimeIndex(trading_sessions("2024-02-01", "2024-02-05")["close"], name="ts")
    for timeframe, index in (("1m", one_missing), ("1d", daily.delete(1))):
        report = ingest_bars(path, ["XYZ"], "2024-02-01", "2024-02-05", timeframe,
                             FrameSource({"XYZ": flat_bars(index)}), sectors={"XYZ": "Services"})
        assert report.ok
    return path


def by_key(path: Path) -> dict[tuple[str, str], object]:
    return {(s.symbol, s.timeframe): s for s in describe_catalog(path).series}


def test_every_series_is_listed_with_its_sector_range_and_source(mixed):
    info = describe_catalog(mixed)
    assert info.symbols == ["ABC", "S000", "S001", "XYZ"]
    assert info.synthetic["seed"] == 1
    rows = by_key(mixed)
    assert sorted(rows) == [("ABC", "1m"), ("S000", "1m"), ("S001", "1m"), ("XYZ", "1d"), ("XYZ", "1m")]
    synthetic = rows[("S000", "1m")]
    assert (synthetic.provenance, synthetic.first_session, synthetic.last_session) == (
        SYNTHETIC, date(2024, 12, 27), date(2024, 12, 31))
    assert synthetic.sector == MarketCatalog(mixed).sectors()["S000"] != "UNKNOWN"
    assert (synthetic.sessions, synthetic.incomplete_sessions) == (3, 0)
    assert synthetic.bars == MarketCatalog(mixed).bar_count("S000") == 390 + 390 + 390
    abc = rows[("ABC", "1m")]
    assert (abc.provenance, abc.sector, abc.bars) == (IMPORTED, "Finance", 390 + 30)
    assert (abc.first_session, abc.last_session, abc.sessions) == (date(2024, 1, 3), date(2024, 1, 5), 3)


def test_sessions_with_missing_minutes_or_no_bar_are_counted(mixed):
    rows = by_key(mixed)
    assert rows[("ABC", "1m")].incomplete_sessions == 2  # 01-04 has no bar, 01-05 has 30 of 390
    minute = rows[("XYZ", "1m")]
    assert (minute.provenance, minute.sector, minute.bars) == (INGESTED, "Services", 3 * 390 - 1)
    assert (minute.sessions, minute.incomplete_sessions) == (3, 1)
    daily = rows[("XYZ", "1d")]
    assert (daily.provenance, daily.bars, daily.sessions, daily.incomplete_sessions) == (INGESTED, 2, 3, 1)


def test_a_missing_path_or_an_empty_directory_is_an_error(tmp_path):
    with pytest.raises(MissingCatalogError, match="does not exist"):
        describe_catalog(tmp_path / "typo")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingCatalogError, match="empty directory"):
        describe_catalog(tmp_path / "empty")


def test_a_damaged_bar_file_is_named(tmp_path):
    catalog = generate_catalog(tmp_path / "cat", 1, 2, seed=1)
    file = Path(catalog._bar_files("S000")[0])
    file.write_bytes(file.read_bytes()[:100])
    with pytest.raises(DamagedCatalogError, match=str(file)):
        describe_catalog(tmp_path / "cat")
