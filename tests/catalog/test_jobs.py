"""Jobs that fill a catalog: the synthetic market generator and the real-CSV import."""

from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest

from catalog.errors import CatalogExistsError
from catalog.jobs import generate_catalog, import_csv
from catalog.store import MarketCatalog
from tests.real_data import real_csv

NY = "America/New_York"


def nyse_bounds(index: pd.DatetimeIndex) -> tuple[pd.Series, pd.Series]:
    """Each timestamp's NYSE session open and close (UTC), straight from exchange_calendars;
    NaT where the New York date is not a session."""
    dates = index.tz_convert(NY).tz_localize(None).normalize()
    cal = xcals.get_calendar("XNYS", start=dates.min(), end=dates.max())
    schedule = cal.schedule.loc[dates.min():dates.max()]
    opens = pd.Series(dates).map(schedule["open"])
    closes = pd.Series(dates).map(schedule["close"])
    return opens.to_numpy(), closes.to_numpy()


# -- generate_catalog ----------------------------------------------------------------------------


def test_generate_catalog_marks_it_synthetic_and_writes_every_symbol(tmp_path):
    seen = []
    catalog = generate_catalog(tmp_path / "cat", n_symbols=3, n_days=5, seed=11, signal_strength=0.2,
                               on_symbol=lambda symbol, rows: seen.append((symbol, rows)))
    origin = MarketCatalog(tmp_path / "cat").synthetic_origin()
    assert origin is not None
    assert (origin["symbols"], origin["days"], origin["seed"], origin["signal_strength"]) == (3, 5, 11, 0.2)
    assert catalog.symbols() == ["S000", "S001", "S002"]
    assert [s for s, _ in seen] == catalog.symbols()
    for symbol, rows in seen:
        assert rows == catalog.bar_count(symbol) > 0
    assert all(sector != "UNKNOWN" for sector in catalog.sectors().values())
    # Bar-close stamps inside regular NYSE sessions, five distinct sessions.
    bars = catalog.read_bars("S000")
    opens, closes = nyse_bounds(bars.index)
    ts = bars.index.to_numpy()
    assert ((ts > opens) & (ts <= closes)).all()
    assert bars.index.tz_convert(NY).normalize().nunique() == 5
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()


def test_generate_catalog_again_is_deterministic_and_replaces_with_replace(tmp_path):
    first = generate_catalog(tmp_path / "cat", 2, 5, seed=4)
    before = {s: first.read_bars(s) for s in first.symbols()}
    again = generate_catalog(tmp_path / "cat", 2, 5, seed=4, replace=True)
    for symbol, frame in before.items():
        assert again.bar_count(symbol) == len(frame)  # one copy, not two
        pd.testing.assert_frame_equal(again.read_bars(symbol), frame, check_exact=True)
    other = generate_catalog(tmp_path / "other", 2, 5, seed=5)
    assert not np.array_equal(other.read_bars("S000")["close"], before["S000"]["close"])


def test_generate_over_an_existing_catalog_is_refused_and_changes_nothing(tmp_path):
    old = generate_catalog(tmp_path / "cat", 3, 5, seed=4)
    before = {s: old.read_bars(s) for s in old.symbols()}
    with pytest.raises(CatalogExistsError, match="already holds data.*--replace"):
        generate_catalog(tmp_path / "cat", 2, 6, seed=9)
    kept = MarketCatalog(tmp_path / "cat")
    assert kept.symbols() == sorted(before) and kept.synthetic_origin()["seed"] == 4
    for symbol, frame in before.items():
        pd.testing.assert_frame_equal(kept.read_bars(symbol), frame, check_exact=True)


def test_generate_with_replace_leaves_only_the_new_market(tmp_path):
    generate_catalog(tmp_path / "cat", 3, 5, seed=4)
    MarketCatalog(tmp_path / "cat").write_bars("REAL", generate_catalog(tmp_path / "src", 1, 5, seed=1).read_bars("S000"))
    new = generate_catalog(tmp_path / "cat", 2, 6, seed=9, replace=True)
    fresh = generate_catalog(tmp_path / "fresh", 2, 6, seed=9)
    assert new.symbols() == ["S000", "S001"]  # S002 and REAL belonged to what was replaced
    assert new.synthetic_origin() == fresh.synthetic_origin()
    for symbol in new.symbols():  # no splice: exactly the market a fresh directory gets
        pd.testing.assert_frame_equal(new.read_bars(symbol), fresh.read_bars(symbol), check_exact=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat", "fresh", "src"]  # no staging left


def test_a_replace_interrupted_half_way_keeps_the_old_catalog(tmp_path):
    old = generate_catalog(tmp_path / "cat", 3, 5, seed=4)
    before = {s: old.read_bars(s) for s in old.symbols()}

    def interrupt_after_first(symbol, rows):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_catalog(tmp_path / "cat", 2, 6, seed=9, replace=True, on_symbol=interrupt_after_first)
    kept = MarketCatalog(tmp_path / "cat")
    assert kept.synthetic_origin()["seed"] == 4 and kept.symbols() == sorted(before)
    for symbol, frame in before.items():
        pd.testing.assert_frame_equal(kept.read_bars(symbol), frame, check_exact=True)
    assert [p.name for p in tmp_path.iterdir()] == ["cat"]


# -- import_csv on real data ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def inda_csv() -> Path:
    return real_csv("INDA_1min.csv")


@pytest.fixture(scope="module")
def imported(inda_csv, tmp_path_factory) -> tuple[MarketCatalog, int]:
    root = tmp_path_factory.mktemp("real")
    rows = import_csv(inda_csv, "INDA", root / "cat", sector="Country")
    return MarketCatalog(root / "cat"), rows


def test_import_csv_keeps_only_regular_session_bars_stamped_at_bar_close(inda_csv, imported):
    catalog, rows = imported
    bars = catalog.read_bars("INDA")
    assert rows == len(bars) == catalog.bar_count("INDA")
    assert catalog.symbols() == ["INDA"] and catalog.sectors() == {"INDA": "Country"}
    assert catalog.synthetic_origin() is None

    # Independent oracle: the raw file (window-start stamps) and the NYSE calendar.
    raw = pd.read_csv(inda_csv)
    start = pd.DatetimeIndex(pd.to_datetime(raw["timestamp"], utc=True))
    opens, closes = nyse_bounds(start)
    regular = ((start.to_numpy() >= opens) & (start.to_numpy() < closes)) & (raw["volume"].to_numpy() > 0)
    assert regular.sum() < len(raw)  # the file really has pre/post-market minutes to drop

    # Exactly the regular-session minutes, each stamped one minute after its window start.
    expected_close = start[regular] + pd.Timedelta(minutes=1)
    assert bars.index.equals(pd.DatetimeIndex(expected_close, name="ts"))
    b_opens, b_closes = nyse_bounds(bars.index)
    assert ((bars.index.to_numpy() > b_opens) & (bars.index.to_numpy() <= b_closes)).all()

    # Same prices (to the cent) and volumes as the file's rows.
    kept = raw[regular]
    for column in ("open", "high", "low", "close"):
        assert np.abs(bars[column].to_numpy() - kept[column].to_numpy()).max() <= 0.005 + 1e-9
    np.testing.assert_array_equal(bars["volume"].to_numpy(), kept["volume"].to_numpy())


def test_import_csv_first_bar_of_a_session(imported):
    bars = imported[0].read_bars("INDA")
    # File row "2023-07-10 13:30:00,43.55,43.55,43.48,43.52,35104" is the 09:30-09:31 EDT minute.
    first = bars.loc[bars.index.tz_convert(NY).date == pd.Timestamp("2023-07-10").date()].iloc[0]
    assert first.name == pd.Timestamp("2023-07-10 13:31", tz="UTC")
    assert (first["open"], first["high"], first["low"], first["close"], first["volume"]) == (
        43.55, 43.55, 43.48, 43.52, 35104.0)


def test_import_csv_twice_leaves_one_copy(inda_csv, imported, tmp_path):
    catalog, rows = imported
    again = import_csv(inda_csv, "INDA", catalog.path)
    assert again == rows
    assert catalog.bar_count("INDA") == rows
    assert catalog.sectors() == {"INDA": "Country"}  # a re-import without a sector keeps it


def test_import_csv_all_hours_keeps_pre_and_post_market(inda_csv, imported, tmp_path):
    rows = import_csv(inda_csv, "INDA", tmp_path / "all", regular_session_only=False)
    raw = pd.read_csv(inda_csv)
    assert rows == int((raw["volume"] > 0).sum()) > imported[1]
