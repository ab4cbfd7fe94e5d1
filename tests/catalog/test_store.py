"""MarketCatalog: exact bar round trips, merging and crash-safe writes, damaged files, listings."""

import resource
import signal
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from catalog.errors import DamagedCatalogError, InvalidBarsError, UnknownTimeframeError
from catalog.instruments import bar_type, equity
from catalog.store import EmptyCatalogError, MarketCatalog


def bars(start: str, n: int, seed: int = 0, base: float = 50.0) -> pd.DataFrame:
    """n one-minute bars closing at start, start+1min, ... (UTC), cent prices, whole volumes."""
    rng = np.random.default_rng(seed)
    close = np.round(base + np.cumsum(rng.normal(0, 0.05, n)), 2)
    open_ = np.round(np.r_[base, close[:-1]], 2)
    high = np.round(np.maximum(open_, close) + rng.integers(0, 4, n) / 100, 2)
    low = np.round(np.minimum(open_, close) - rng.integers(0, 4, n) / 100, 2)
    volume = rng.integers(1, 50_000, n).astype(float)
    index = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=n, freq="1min", name="ts")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index)


def day(date: str, n: int = 30, seed: int = 0, base: float = 50.0) -> pd.DataFrame:
    """The first n bars of a winter NYSE session (open 14:30 UTC, first bar closes 14:31)."""
    return bars(f"{date} 14:31", n, seed, base)


def files_on_disk(catalog: MarketCatalog, symbol: str) -> int:
    """Rows physically stored for the symbol's bars (duplicates would show up here)."""
    return sum(pq.ParquetFile(f).metadata.num_rows for f in catalog._bar_files(symbol))


def test_write_then_read_round_trips_exactly(tmp_path: Path):
    catalog = MarketCatalog(tmp_path / "cat")
    frame = pd.concat([day("2024-01-02", 200, seed=1), day("2024-01-03", 200, seed=2, base=51.0)])
    assert catalog.write_bars("ABC", frame, sector="Tech") == 400
    back = catalog.read_bars("ABC")
    pd.testing.assert_frame_equal(back, frame, check_exact=True, check_freq=False)
    assert str(back.index.tz) == "UTC" and back.index.name == "ts"
    assert catalog.bar_count("ABC") == 400


def test_read_bars_window_is_inclusive(tmp_path: Path):
    catalog = MarketCatalog(tmp_path)
    frame = day("2024-01-02", 30)
    catalog.write_bars("ABC", frame)
    start, end = frame.index[5], frame.index[9]
    window = catalog.read_bars("ABC", start=start, end=end)
    pd.testing.assert_frame_equal(window, frame.iloc[5:10], check_exact=True, check_freq=False)
    assert catalog.read_bars("ABC", start=frame.index[-1]).index.tolist() == [frame.index[-1]]
    assert catalog.read_bars("ABC", end=frame.index[0] - pd.Timedelta(minutes=1)).empty


def test_writing_the_same_range_twice_leaves_one_copy(tmp_path: Path):
    catalog = MarketCatalog(tmp_path)
    frame = pd.concat([day("2024-01-02", 50, seed=3), day("2024-01-03", 50, seed=4)])
    catalog.write_bars("ABC", frame)
    catalog.write_bars("ABC", frame)
    assert files_on_disk(catalog, "ABC") == 100
    # The same range again, delivered in two pieces (different file boundaries).
    catalog.write_bars("ABC", frame.iloc[:50])
    catalog.write_bars("ABC", frame.iloc[50:])
    assert files_on_disk(catalog, "ABC") == 100
    assert catalog.bar_count("ABC") == 100
    back = catalog.read_bars("ABC")
    assert not back.index.duplicated().any()
    pd.testing.assert_frame_equal(back, frame, check_exact=True, check_freq=False)


def test_overlapping_rewrite_replaces_only_the_overlap(tmp_path: Path):
    catalog = MarketCatalog(tmp_path)
    first = pd.concat([day("2024-01-02", 40, seed=5), day("2024-01-03", 40, seed=6)])
    catalog.write_bars("ABC", first)
    # New data for the second day and a third day, at clearly different prices.
    second = pd.concat([day("2024-01-03", 40, seed=7, base=80.0), day("2024-01-04", 40, seed=8, base=81.0)])
    catalog.write_bars("ABC", second)
    back = catalog.read_bars("ABC")
    assert len(back) == files_on_disk(catalog, "ABC") == 120
    expected = pd.concat([first.iloc[:40], second])
    pd.testing.assert_frame_equal(back, expected, check_exact=True, check_freq=False)


def test_rewriting_a_middle_slice_keeps_both_ends(tmp_path: Path):
    catalog = MarketCatalog(tmp_path)
    original = day("2024-01-02", 60, seed=9)
    catalog.write_bars("ABC", original)
    patch = day("2024-01-02", 60, seed=10, base=70.0).iloc[20:40]
    catalog.write_bars("ABC", patch)
    back = catalog.read_bars("ABC")
    assert len(back) == files_on_disk(catalog, "ABC") == 60
    expected = pd.concat([original.iloc[:20], patch, original.iloc[40:]])
    pd.testing.assert_frame_equal(back, expected, check_exact=True, check_freq=False)


def test_symbols_and_sectors(tmp_path: Path):
    catalog = MarketCatalog(tmp_path)
    assert catalog.symbols() == [] and catalog.sectors() == {} and catalog.instruments() == []
    catalog.write_bars("ZZZ", day("2024-01-02", 5), sector="Energy")
    catalog.write_bars("AAA", day("2024-01-02", 5), sector="Tech")
    # An instrument without bars is known (sector) but not tradeable (symbols).
    catalog.nautilus.write_data([equity("NOBARS", "Utilities")])
    assert catalog.symbols() == ["AAA", "ZZZ"]
    assert catalog.sectors() == {"AAA": "Tech", "ZZZ": "Energy", "NOBARS": "Utilities"}
    # A later write without a sector keeps the instrument's sector.
    catalog.write_bars("AAA", day("2024-01-03", 5))
    assert catalog.sectors()["AAA"] == "Tech"
    assert catalog.bar_count("AAA") == 10
    # Without any sector the instrument is UNKNOWN.
    catalog.write_bars("BBB", day("2024-01-02", 5))
    assert catalog.sectors()["BBB"] == "UNKNOWN"


def test_empty_frame_writes_nothing(tmp_path: Path):
    catalog = MarketCatalog(tmp_path)
    assert catalog.write_bars("ABC", day("2024-01-02", 5).iloc[:0]) == 0
    assert catalog.symbols() == []
    with pytest.raises(EmptyCatalogError):
        catalog.read_bars("ABC")


def test_read_bars_of_a_missing_symbol_raises(tmp_path: Path):
    missing_dir = MarketCatalog(tmp_path / "does-not-exist")
    with pytest.raises(EmptyCatalogError, match="no 1m bars for 'ABC'"):
        missing_dir.read_bars("ABC")
    catalog = MarketCatalog(tmp_path / "cat")
    catalog.write_bars("ABC", day("2024-01-02", 5))
    with pytest.raises(EmptyCatalogError, match="no 1m bars for 'XYZ'") as err:
        catalog.read_bars("XYZ")
    assert str(tmp_path / "cat") in str(err.value)
    assert isinstance(err.value, LookupError)


def test_synthetic_marker(tmp_path: Path):
    catalog = MarketCatalog(tmp_path / "cat")
    assert catalog.synthetic_origin() is None
    catalog.mark_synthetic({"seed": 3, "signal_strength": 0.2})
    assert MarketCatalog(tmp_path / "cat").synthetic_origin() == {"seed": 3, "signal_strength": 0.2}


def test_bars_written_column_wise_equal_nautilus_own_bars(tmp_path: Path):
    """The column encoder is NautilusTrader's layout: the engine's reader sees the same Bar
    objects its own wrangler would build, including prices and volumes above 2**64 raw units."""
    from nautilus_trader.persistence.wranglers import BarDataWrangler

    from catalog.instruments import bar_type

    frame = day("2024-01-02", 50, seed=3)
    frame.iloc[7, frame.columns.get_loc("high")] = 987_654.32
    frame.iloc[8, frame.columns.get_loc("volume")] = 4_000_000_000.0
    catalog = MarketCatalog(tmp_path / "cat")
    catalog.write_bars("ABC", frame)
    expected = BarDataWrangler(bar_type("ABC"), equity("ABC")).process(frame)
    got = catalog.nautilus.bars([str(bar_type("ABC"))])
    assert [(b.open, b.high, b.low, b.close, b.volume, b.ts_event, b.ts_init) for b in got] == [
        (b.open, b.high, b.low, b.close, b.volume, b.ts_event, b.ts_init) for b in expected
    ]


def test_timeframes_are_stored_apart(tmp_path: Path):
    catalog = MarketCatalog(tmp_path / "cat")
    catalog.write_bars("ABC", day("2024-01-02", 30))
    five = day("2024-01-02", 30).resample("5min", label="right", closed="right").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    ).dropna()
    catalog.write_bars("ABC", five, timeframe="5m")
    assert catalog.bar_count("ABC") == 30
    assert catalog.bar_count("ABC", "5m") == len(five)
    pd.testing.assert_frame_equal(catalog.read_bars("ABC", timeframe="5m"), five, check_freq=False)
    with pytest.raises(UnknownTimeframeError, match="unknown timeframe '2m'"):
        catalog.read_bars("ABC", timeframe="2m")


def test_unsorted_non_finite_or_negative_bars_are_refused(tmp_path: Path):
    catalog = MarketCatalog(tmp_path / "cat")
    frame = day("2024-01-02", 10)
    with pytest.raises(InvalidBarsError, match="not strictly increasing"):
        catalog.write_bars("ABC", frame.iloc[::-1])
    negative = frame.copy()
    negative.iloc[5, 4] = -1.0
    with pytest.raises(InvalidBarsError, match="negative"):
        catalog.write_bars("ABC", negative)
    frame.iloc[3, 0] = np.nan
    with pytest.raises(InvalidBarsError, match="NaN"):
        catalog.write_bars("ABC", frame)
    assert catalog.instruments() == []  # nothing of a refused frame is written, not even its instrument


# -- merge rule: a new bar replaces the stored bar at its timestamp, nothing else ------------------


def test_sparse_write_across_stored_bars_replaces_only_its_own_timestamps(tmp_path: Path):
    catalog = MarketCatalog(tmp_path / "cat")
    week = pd.concat([day(d, 60, seed=i) for i, d in enumerate(
        ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"])])
    catalog.write_bars("ABC", week)
    # Two bars at the first and last stored minutes plus one minute nothing held before.
    new_minute = pd.Timestamp("2024-01-04 16:00", tz="UTC")
    patch = day("2024-01-02", 3, seed=99, base=90.0).set_axis(
        pd.DatetimeIndex([week.index[0], new_minute, week.index[-1]], name="ts"))
    assert catalog.write_bars("ABC", patch) == 3
    back = catalog.read_bars("ABC")
    expected = pd.concat([week.drop([week.index[0], week.index[-1]]), patch]).sort_index()
    assert len(back) == files_on_disk(catalog, "ABC") == len(week) + 1
    pd.testing.assert_frame_equal(back, expected, check_exact=True, check_freq=False)


@contextmanager
def file_size_limit(nbytes: int):
    """A real failing write: the kernel refuses to grow any file past ``nbytes`` (EFBIG), as a
    full disk refuses to grow it (ENOSPC); SIGXFSZ is ignored so the write returns the error."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_a_write_failing_half_way_leaves_the_stored_bars_as_they_were(tmp_path: Path):
    catalog = MarketCatalog(tmp_path / "cat")
    stored = pd.concat([day("2024-01-02", 300, seed=1), day("2024-01-03", 300, seed=2)])
    catalog.write_bars("ABC", stored)
    files_before = sorted(p.name for p in Path(catalog._bar_files("ABC")[0]).parent.iterdir())
    rewrite = pd.concat([day("2024-01-02", 300, seed=3, base=60.0), day("2024-01-03", 300, seed=4)])
    with file_size_limit(4096), pytest.raises(OSError):
        catalog.write_bars("ABC", rewrite)
    pd.testing.assert_frame_equal(catalog.read_bars("ABC"), stored, check_exact=True, check_freq=False)
    # No half-written or temporary file is left beside the stored one.
    assert sorted(p.name for p in Path(catalog._bar_files("ABC")[0]).parent.iterdir()) == files_before
    catalog.write_bars("ABC", rewrite)  # with room again, the same write goes through
    pd.testing.assert_frame_equal(catalog.read_bars("ABC"), rewrite, check_exact=True, check_freq=False)


# -- damaged files are named, never handed to the engine ---------------------------------------------


DAMAGE = ["truncated", "page-header", "bit-flipped"]


def damage(path: str, how: str) -> None:
    data = bytearray(Path(path).read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "page-header":  # the first page header follows the 4-byte magic: DataFusion panics
        data[4] ^= 0xFF
    else:  # one flipped bit in the middle of the column data: a silently wrong price without checksums
        data[len(data) // 2] ^= 0x01
    Path(path).write_bytes(bytes(data))


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_bar_file_is_named_by_reads_and_verify(tmp_path: Path, how: str):
    catalog = MarketCatalog(tmp_path / "cat")
    catalog.write_bars("ABC", day("2024-01-02", 300, seed=1))
    catalog.write_bars("XYZ", day("2024-01-02", 300, seed=2))
    file = catalog._bar_files("ABC")[0]
    damage(file, how)
    with pytest.raises(DamagedCatalogError, match="damaged") as read_error:
        catalog.read_bars("ABC")
    with pytest.raises(DamagedCatalogError) as verify_error:
        catalog.verify(["XYZ", "ABC"])
    assert file in str(read_error.value) and file in str(verify_error.value)
    catalog.verify(["XYZ"])  # the intact symbol still reads
    assert len(catalog.read_bars("XYZ")) == 300


def test_a_damaged_instrument_file_is_named(tmp_path: Path):
    catalog = MarketCatalog(tmp_path / "cat")
    catalog.write_bars("ABC", day("2024-01-02", 5))
    file = next((tmp_path / "cat" / "data" / "equity").glob("*/*.parquet"))
    damage(str(file), "truncated")
    with pytest.raises(DamagedCatalogError, match=str(file)):
        catalog.symbols()


# -- a crash between the rename and the removal of superseded files ------------------------------


def crash_after_rename(catalog: MarketCatalog, symbol: str, frame: pd.DataFrame) -> list[Path]:
    """Write ``frame`` and put back the files it superseded, as a crash between the merged
    file's rename and the removal of the old ones leaves them. Returns the restored files."""
    old = {Path(f): Path(f).read_bytes() for f in catalog._bar_files(symbol)}
    catalog.write_bars(symbol, frame)
    for path, data in old.items():
        path.write_bytes(data)
    return list(old)


def test_files_left_by_a_crash_after_the_rename_are_never_read_twice(tmp_path: Path):
    catalog = MarketCatalog(tmp_path / "cat")
    monday, tuesday = day("2024-01-08", 60, seed=1), day("2024-01-09", 60, seed=2)
    catalog.write_bars("ABC", monday)
    catalog.write_bars("ABC", tuesday)
    patch = day("2024-01-08", 2, seed=9, base=70.0).set_axis(
        pd.DatetimeIndex([monday.index[-1], tuesday.index[0]], name="ts"))  # spans both files
    leftovers = crash_after_rename(catalog, "ABC", patch)
    directory = leftovers[0].parent
    assert len(list(directory.glob("*.parquet"))) == 3  # the crash state: rows on disk twice
    expected = pd.concat([monday.iloc[:-1], patch, tuesday.iloc[1:]])

    back = catalog.read_bars("ABC")
    pd.testing.assert_frame_equal(back, expected, check_exact=True, check_freq=False)
    assert catalog.bar_count("ABC") == len(catalog.bar_times("ABC")) == len(expected)
    assert [p.exists() for p in leftovers] == [False, False]
    # What the engine reads: NautilusTrader's own reader over the settled directory.
    assert len(catalog.nautilus.bars(bar_types=[str(bar_type("ABC"))])) == len(expected)


def test_a_write_after_a_crash_keeps_one_copy_of_every_bar(tmp_path: Path):
    catalog = MarketCatalog(tmp_path / "cat")
    stored = day("2024-01-08", 60, seed=1)
    catalog.write_bars("ABC", stored)
    extension = day("2024-01-08", 90, seed=3).iloc[55:]  # overlaps the last 5 bars, adds 30
    crash_after_rename(catalog, "ABC", extension)
    later = day("2024-01-09", 10, seed=4)
    catalog.write_bars("ABC", later)
    expected = pd.concat([stored.iloc[:55], extension, later])
    pd.testing.assert_frame_equal(catalog.read_bars("ABC"), expected, check_exact=True, check_freq=False)
    assert files_on_disk(catalog, "ABC") == len(expected)


def test_files_overlapping_without_containment_are_named(tmp_path: Path):
    catalog = MarketCatalog(tmp_path / "cat")
    catalog.write_bars("ABC", day("2024-01-08", 60, seed=1))
    (first,) = catalog._bar_files("ABC")
    foreign = tmp_path / "foreign"
    MarketCatalog(foreign).write_bars("ABC", day("2024-01-08", 90, seed=2).iloc[30:])
    (other,) = MarketCatalog(foreign)._bar_files("ABC")
    Path(other).rename(Path(first).parent / Path(other).name)
    with pytest.raises(DamagedCatalogError, match="overlap"):
        catalog.read_bars("ABC")
