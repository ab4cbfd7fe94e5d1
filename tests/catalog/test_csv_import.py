"""Minute CSV import: start->close shift, sparsity, session filter and precise errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catalog.csv_import import CsvFormatError, read_minute_csv
from catalog.sessions import in_regular_session
from tests.real_data import real_csv

HEADER = "timestamp,open,high,low,close,volume"


def write_csv(
    tmp_path: Path, lines: list[str], header: str = HEADER, name: str = "bars.csv"
) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_start_times_become_close_times_and_sparse_stays_sparse(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        [
            "2023-07-10 13:30:00,17.90,17.91,17.90,17.91,3057",
            "2023-07-10 13:34:00,17.921,17.921,17.921,17.921,602",
            "2023-07-10 13:44:00,17.95,17.95,17.95,17.95,101.0",
        ],
    )
    frame = read_minute_csv(path)
    assert list(frame.index) == [
        utc("2023-07-10 13:31"),
        utc("2023-07-10 13:35"),
        utc("2023-07-10 13:45"),
    ]
    assert frame.index.name == "ts" and str(frame.index.tz) == "UTC"
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert (frame.dtypes == np.float64).all()
    assert frame["close"].tolist() == [17.91, 17.921, 17.95]  # sub-penny kept: the catalog stores 4 decimals
    assert frame["volume"].tolist() == [3057.0, 602.0, 101.0]


def test_pre_and_post_market_are_filtered(tmp_path: Path) -> None:
    starts = [
        "2023-07-10 10:10:00",  # pre-market
        "2023-07-10 13:29:00",  # closes at the 09:30 ET open: still pre-market
        "2023-07-10 13:30:00",  # first regular minute
        "2023-07-10 19:59:00",  # last regular minute (closes 16:00 ET)
        "2023-07-10 20:00:00",  # post-market
        "2024-11-29 17:59:00",  # last minute of a half day
        "2024-11-29 18:00:00",  # after the 13:00 ET early close
    ]
    path = write_csv(tmp_path, [f"{ts},10,10,10,10,100" for ts in starts])
    regular = read_minute_csv(path)
    assert list(regular.index) == [
        utc("2023-07-10 13:31"),
        utc("2023-07-10 20:00"),
        utc("2024-11-29 18:00"),
    ]
    everything = read_minute_csv(path, regular_session_only=False)
    assert len(everything) == len(starts)


def test_zero_volume_minutes_are_dropped(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        ["2023-07-10 13:30:00,10,10,10,10,0", "2023-07-10 13:31:00,10,10,10,10,5"],
    )
    assert list(read_minute_csv(path).index) == [utc("2023-07-10 13:32")]


GOOD = "2023-07-10 13:30:00,10,10.5,9.5,10,100"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            [GOOD, "2023-07-1x 13:31:00,10,10,10,10,1"],
            r"row 2 \(line 3\): unparsable timestamp '2023-07-1x 13:31:00'",
        ),
        ([GOOD, "2023-07-10 13:31:00,10,abc,10,10,1"], r"row 2 .*unparsable high value 'abc'"),
        ([GOOD, GOOD, "2023-07-10 13:32:00,10,10,10,10,"], r"row 3 .*unparsable volume value ''"),
        ([GOOD, "2023-07-10 13:31:30,10,10,10,10,1"], r"row 2 .*not on a minute boundary"),
        (
            [GOOD, GOOD],
            (
                r"row 2 .*duplicate timestamp 2023-07-10 13:30:00\+00:00 "
                r"is not after 2023-07-10 13:30:00\+00:00 on row 1"
            ),
        ),
        (
            ["2023-07-10 13:35:00,10,10,10,10,1", "2023-07-10 13:31:00,10,10,10,10,1"],
            (
                r"row 2 .*out-of-order timestamp 2023-07-10 13:31:00\+00:00 "
                r"is not after 2023-07-10 13:35:00\+00:00 on row 1"
            ),
        ),
        ([GOOD, "2023-07-10 13:31:00,10,9,11,10,1"], r"row 2 .*high < low"),
        (
            [GOOD, "2023-07-10 13:31:00,10,10.2,9.9,10.5,1"],
            r"row 2 .*high/low do not bracket open/close",
        ),
        ([GOOD, "2023-07-10 13:31:00,-10,10,-11,10,1"], r"row 2 .*non-positive price"),
        ([GOOD, "2023-07-10 13:31:00,10,10,10,10,-5"], r"row 2 .*negative volume"),
        ([GOOD, "2023-07-10 13:31:00,10,10,10,10,2.5"], r"row 2 .*non-integral volume"),
    ],
)
def test_bad_rows_are_reported_with_file_and_row(
    tmp_path: Path, lines: list[str], expected: str
) -> None:
    path = write_csv(tmp_path, lines)
    with pytest.raises(CsvFormatError, match=expected) as error:
        read_minute_csv(path)
    assert str(path) in str(error.value)


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["2023-07-10 13:30:00,10,10,10"], header="timestamp,open,low,close")
    with pytest.raises(CsvFormatError, match=r"missing column\(s\) high, volume") as error:
        read_minute_csv(path)
    assert str(path) in str(error.value)


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CsvFormatError, match=r"empty\.csv: file is empty"):
        read_minute_csv(empty)
    header_only = write_csv(tmp_path, [], name="header_only.csv")
    with pytest.raises(CsvFormatError, match=r"header_only\.csv: .*no data rows"):
        read_minute_csv(header_only)


def test_a_directory_or_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CsvFormatError, match="is a directory, not a CSV file"):
        read_minute_csv(tmp_path)
    with pytest.raises(CsvFormatError, match=r"nope\.csv: file not found"):
        read_minute_csv(tmp_path / "nope.csv")


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(f"{HEADER}\n2023-07-10 13:30:00,10,10,10,10,1 # caf\xe9\n".encode("latin-1"))
    with pytest.raises(CsvFormatError, match=r"latin1\.csv: not UTF-8 text \(line 2, byte 76 is b'\\xe9'\)"):
        read_minute_csv(path)
    binary = tmp_path / "bars.parquet.csv"
    binary.write_bytes(b"PAR1\x15\x04\x15\xc8\x01\xff\xfe")
    with pytest.raises(CsvFormatError, match="not UTF-8 text"):
        read_minute_csv(binary)


@pytest.mark.parametrize("regular_session_only", [True, False])
def test_a_row_outside_the_calendar_range_is_named(tmp_path: Path, regular_session_only: bool) -> None:
    path = write_csv(tmp_path, ["2023-07-10 13:30:00,10,10,10,10,1", "2031-01-02 14:30:00,10,10,10,10,1"])
    with pytest.raises(CsvFormatError, match=r"row 2 \(line 3\): timestamp '2031-01-02 14:30:00' is outside "
                                             r"the supported calendar range 2000-01-01..2030-12-31"):
        read_minute_csv(path, regular_session_only=regular_session_only)
    early = write_csv(tmp_path, ["1999-12-31 14:30:00,10,10,10,10,1"], name="early.csv")
    with pytest.raises(CsvFormatError, match=r"early\.csv: row 1 \(line 2\): timestamp '1999-12-31 14:30:00'"):
        read_minute_csv(early)


def test_error_is_a_value_error() -> None:
    assert issubclass(CsvFormatError, ValueError)


@pytest.fixture(scope="module")
def real_fxy() -> Path:
    return real_csv("FXY_1min.csv")


def test_real_file_reads_into_a_valid_bars_frame(real_fxy: Path) -> None:
    """(Its speed is a ``sextant bench`` figure, not a test.)"""
    frame = read_minute_csv(real_fxy)
    everything = read_minute_csv(real_fxy, regular_session_only=False)
    assert 0 < len(frame) < len(everything) < 100_000
    assert frame.index.is_monotonic_increasing and frame.index.is_unique
    assert in_regular_session(frame.index).all()
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
    assert (frame["volume"] > 0).all()
    # The file's first row starts at 13:05 UTC (pre-market); 13:30 is the first regular one.
    assert everything.index[0] == utc("2023-07-10 13:06")
    assert frame.index[0] == utc("2023-07-10 13:31")
    # Thin ETF: minutes without trades are missing, not filled.
    assert len(frame) < 390 * frame.index.normalize().nunique()


# -- hostile-input sweep: each case below was a silent loss, a misleading message or a traceback --


def test_a_far_future_date_is_outside_the_calendar_not_unparsable(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [GOOD, "2999-12-02 14:31:00,10,10,10,10,1"])
    with pytest.raises(CsvFormatError, match=r"row 2 \(line 3\): timestamp '2999-12-02 14:31:00' is outside the "
                                             r"supported calendar range"):
        read_minute_csv(path)


def test_date_only_timestamps_are_refused_not_stored_at_midnight(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["2023-07-10,10,10,10,10,1"])
    with pytest.raises(CsvFormatError, match=r"row 1 \(line 2\): timestamp '2023-07-10' has no time of day"):
        read_minute_csv(path, regular_session_only=False)


def test_a_row_with_more_fields_than_the_header_is_refused_not_shifted(tmp_path: Path) -> None:
    # pandas took the first field as an index and read the row shifted by one column
    path = write_csv(tmp_path, ["2023-07-10 13:30:00;10,5;10,5;10,5;10,5;100"], header=HEADER.replace(",", ";"))
    with pytest.raises(CsvFormatError, match="more fields than the header"):
        read_minute_csv(path)
    shifted = write_csv(tmp_path, [GOOD, "2023-07-10 13:31:00,10,10,10,10,1,99"], name="extra.csv")
    with pytest.raises(CsvFormatError, match=r"extra\.csv: malformed CSV: .*Expected 6 fields in line 3, saw 7"):
        read_minute_csv(shifted)


def test_a_trailing_comma_reads_the_row_unshifted(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [GOOD + ","])
    assert read_minute_csv(path)["open"].tolist() == [10.0]


def test_a_duplicated_column_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [GOOD + ",11"], header=HEADER + ",open")
    with pytest.raises(CsvFormatError, match=r"column\(s\) open appear more than once"):
        read_minute_csv(path)


def test_capitalised_headers_and_a_bom_are_read(tmp_path: Path) -> None:
    path = tmp_path / "caps.csv"
    path.write_text("\ufeffTimestamp,Open,High,Low,Close,Volume\r\n" + GOOD + "\r\n", encoding="utf-8")
    assert read_minute_csv(path)["volume"].tolist() == [100.0]


@pytest.mark.parametrize(("separator", "shown"), [(";", "';'"), ("\t", r"'\\t'")])
def test_another_separator_is_named(tmp_path: Path, separator: str, shown: str) -> None:
    path = write_csv(tmp_path, [GOOD.replace(",", separator)], header=HEADER.replace(",", separator))
    with pytest.raises(CsvFormatError, match=f"separated by {shown}"):
        read_minute_csv(path)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["2023-07-08 14:30:00,10,10,10,10,1"], (r"none of its 1 rows is a bar to import \(0 with zero volume, "
                                                 r"1 outside the regular session \(--all-hours keeps them\)\)")),
        (["2023-07-10 13:30:00,10,10,10,10,0"], r"none of its 1 rows .*\(1 with zero volume"),
    ],
)
def test_a_file_with_nothing_to_import_says_why(tmp_path: Path, lines: list[str], expected: str) -> None:
    with pytest.raises(CsvFormatError, match=expected):
        read_minute_csv(write_csv(tmp_path, lines))
