"""Reader for real one-minute OHLCV CSV files into a bars frame.

Input: columns ``timestamp,open,high,low,close,volume`` (extra columns are ignored), one row
per traded minute, timestamps in UTC marking the START of the minute. The bars-frame
convention stamps a bar with its CLOSE, so every timestamp is shifted by one minute.

Minutes without trades are simply absent in such files and stay absent: filling them would
invent prices and volume that never traded.

The reader is strict because silently repairing a file hides vendor problems that would
later surface as impossible fills in a backtest: any malformed value, ordering problem or
inconsistent bar raises ``CsvFormatError`` naming the file, the 1-based data row (row 1 is
the first line after the header) and the offending value. Prices keep the decimals the file
carries (sub-penny averages such as 17.921 included): the catalog stores them at its
instruments' precision (4 decimals for a new catalog). One normalisation is applied on
purpose: zero-volume rows are dropped (a minute without trades is represented by its absence
everywhere else in these files).
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from catalog.errors import CatalogError
from catalog.sessions import CALENDAR_END, CALENDAR_START, in_regular_session, outside_calendar

COLUMNS = ["open", "high", "low", "close", "volume"]
_REQUIRED = ["timestamp", *COLUMNS]
_ONE_MINUTE = pd.Timedelta(minutes=1)


class CsvFormatError(CatalogError, ValueError):
    """A minute-bar CSV file does not satisfy the expected format."""


def read_minute_csv(path: str | Path, regular_session_only: bool = True) -> pd.DataFrame:
    """Read a minute-bar CSV into a bars frame (index "ts" = UTC bar close time).

    With ``regular_session_only`` only bars closing inside a regular NYSE session
    (``(open, close]``, early closes respected) are kept; pre- and post-market bars are
    dropped because the strategies only trade the regular session.
    """
    raw = _read_text_table(Path(path))
    starts = _parse_timestamps(raw["timestamp"], path)
    _check_in_calendar(starts, raw["timestamp"], path)
    values = {name: _parse_numbers(raw[name], name, path) for name in COLUMNS}
    _check_strictly_increasing(starts, path)
    _check_bars(values, path)

    frame = pd.DataFrame(values, index=pd.DatetimeIndex(starts + _ONE_MINUTE, name="ts"))
    traded = frame[frame["volume"] > 0]
    kept = traded[in_regular_session(traded.index)] if regular_session_only else traded
    if kept.empty:  # a file of only pre-market or weekend rows is a mistake, not "imported 0 bars"
        outside = f", {len(traded)} outside the regular session (--all-hours keeps them)" if regular_session_only else ""
        raise CsvFormatError(
            f"{path}: none of its {len(frame)} rows is a bar to import ({len(frame) - len(traded)} with zero "
            f"volume{outside})"
        )
    return kept


def _read_text_table(path: Path) -> pd.DataFrame:
    """Load every cell as text so bad values can be reported verbatim with their row."""
    if path.is_dir():
        raise CsvFormatError(f"{path} is a directory, not a CSV file")
    if not path.exists():
        raise CsvFormatError(f"{path}: file not found")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CsvFormatError(
            f"{path}: not UTF-8 text (line {line}, byte {exc.start} is {data[exc.start:exc.start + 1]!r}); "
            "save it as UTF-8 CSV"
        ) from exc
    header = [name.strip().lower() for name in next(csv.reader(io.StringIO(text.lstrip("\ufeff"))), [])]
    if duplicated := sorted({name for name in header if name and header.count(name) > 1}):
        raise CsvFormatError(f"{path}: column(s) {', '.join(duplicated)} appear more than once in the header")
    try:
        with warnings.catch_warnings():  # a row with more fields than the header would lose its last ones
            warnings.simplefilter("error", pd.errors.ParserWarning)
            raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True,
                              index_col=False)
    except pd.errors.EmptyDataError as exc:
        raise CsvFormatError(f"{path}: file is empty") from exc
    except pd.errors.ParserWarning as exc:
        raise CsvFormatError(f"{path}: a row has more fields than the header's {len(header)} "
                             "(a comma inside a value, e.g. a decimal comma?)") from exc
    except pd.errors.ParserError as exc:
        raise CsvFormatError(f"{path}: malformed CSV: {exc}") from exc
    raw.columns = [str(name).strip().lower() for name in raw.columns]  # Timestamp,Open,... as well
    missing = [name for name in _REQUIRED if name not in raw.columns]
    if missing:
        separator = next((f" (the header is separated by {sep!r}: save the file with commas)"
                          for sep in (";", "\t", "|") if len(header) == 1 and sep in header[0]), "")
        raise CsvFormatError(
            f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(raw.columns)}){separator}"
        )
    if raw.empty:
        raise CsvFormatError(f"{path}: file has a header but no data rows")
    return raw


def _row(position: int) -> str:
    return f"row {position + 1} (line {position + 2})"


def _parse_timestamps(text: pd.Series, path: str | Path) -> pd.DatetimeIndex:
    """Parse ISO timestamps as UTC (naive ones are taken to be UTC already)."""
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        value = text.iloc[bad[0]]
        try:
            pd.to_datetime(value, format="ISO8601")
        except pd.errors.OutOfBoundsDatetime as exc:  # a valid date far away (2999-12-02)
            raise CsvFormatError(
                f"{path}: {_row(bad[0])}: timestamp {value!r} is outside the supported calendar range "
                f"{CALENDAR_START.date()}..{CALENDAR_END.date()}"
            ) from exc
        except ValueError:
            pass
        raise CsvFormatError(f"{path}: {_row(bad[0])}: unparsable timestamp {value!r}")
    dates_only = np.flatnonzero(~text.str.contains(r"[T ]\d", regex=True).to_numpy())
    if len(dates_only):  # a daily file would land every bar at midnight UTC
        raise CsvFormatError(
            f"{path}: {_row(dates_only[0])}: timestamp {text.iloc[dates_only[0]]!r} has no time of day; "
            "this importer reads one-minute bars stamped with the minute's start (e.g. 2024-12-02 14:31:00)"
        )
    stamps = pd.DatetimeIndex(parsed).as_unit("ns")
    off_minute = np.flatnonzero(stamps.asi8 % _ONE_MINUTE.value)
    if len(off_minute):
        raise CsvFormatError(
            f"{path}: {_row(off_minute[0])}: timestamp {text.iloc[off_minute[0]]!r} "
            "is not on a minute boundary"
        )
    return stamps


def _check_in_calendar(starts: pd.DatetimeIndex, text: pd.Series, path: str | Path) -> None:
    """Bars the NYSE calendar cannot place (it is pinned to a fixed range) are refused by row."""
    bad = np.flatnonzero(outside_calendar(starts + _ONE_MINUTE))
    if len(bad):
        raise CsvFormatError(
            f"{path}: {_row(bad[0])}: timestamp {text.iloc[bad[0]]!r} is outside the supported calendar "
            f"range {CALENDAR_START.date()}..{CALENDAR_END.date()}"
        )


def _parse_numbers(text: pd.Series, column: str, path: str | Path) -> np.ndarray:
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise CsvFormatError(
            f"{path}: {_row(bad[0])}: unparsable {column} value {text.iloc[bad[0]]!r}"
        )
    return values


def _check_strictly_increasing(stamps: pd.DatetimeIndex, path: str | Path) -> None:
    ns = stamps.asi8
    bad = np.flatnonzero(ns[1:] <= ns[:-1])
    if len(bad):
        first = bad[0]
        kind = "duplicate" if ns[first + 1] == ns[first] else "out-of-order"
        raise CsvFormatError(
            f"{path}: {_row(first + 1)}: {kind} timestamp {stamps[first + 1]} "
            f"is not after {stamps[first]} on {_row(first)}"
        )


def _check_bars(values: dict[str, np.ndarray], path: str | Path) -> None:
    """Reject rows that no real trade could produce; report the earliest one."""
    o, h, lo, c, v = (values[name] for name in COLUMNS)
    problems = [
        (np.minimum.reduce([o, h, lo, c]) <= 0, "non-positive price"),
        (v < 0, "negative volume"),
        (v != np.round(v), "non-integral volume"),
        (h < lo, "high < low"),
        ((h < np.maximum(o, c)) | (lo > np.minimum(o, c)), "high/low do not bracket open/close"),
    ]
    first_bad = [(np.flatnonzero(mask)[0], reason) for mask, reason in problems if mask.any()]
    if first_bad:
        position, reason = min(first_bad, key=lambda item: item[0])
        bar = ", ".join(f"{name}={values[name][position]:g}" for name in COLUMNS)
        raise CsvFormatError(f"{path}: {_row(position)}: {reason} ({bar})")
