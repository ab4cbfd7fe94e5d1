"""NYSE regular-session calendar helpers.

Every component that reasons about "the trading day" (the synthetic generator, the CSV
importer, the strategy that must flatten before the close) goes through this module so they
all agree on one source of truth: the ``exchange_calendars`` "XNYS" calendar, early closes
(13:00 ET half days) included.

Timestamps follow the bars-frame convention: a 1-minute bar is stamped with its CLOSE time,
so the bars of a session are the minutes in ``(open, close]``.
"""

from __future__ import annotations

from datetime import date
from functools import cache

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from catalog.errors import CalendarRangeError

# The library's default bounds roll with today's date (about 20 years back, 1 year ahead),
# which would make results depend on when the code runs; pin them explicitly.
CALENDAR_START = pd.Timestamp("2000-01-01")
CALENDAR_END = pd.Timestamp("2030-12-31")

_MINUTE = np.timedelta64(60_000_000_000, "ns")


@cache
def _schedule() -> pd.DataFrame:
    """Build the XNYS calendar once (≈0.4 s) and keep only the open/close columns."""
    calendar = xcals.get_calendar("XNYS", start=CALENDAR_START, end=CALENDAR_END)
    schedule = calendar.schedule.loc[:, ["open", "close"]].copy()
    schedule.index = pd.DatetimeIndex(schedule.index, freq=None, name="session")
    return schedule


@cache
def _bounds_ns() -> tuple[np.ndarray, np.ndarray]:
    """Session opens and closes as sorted int64 nanoseconds, for searchsorted lookups."""
    schedule = _schedule()
    return (
        pd.DatetimeIndex(schedule["open"]).as_unit("ns").asi8,
        pd.DatetimeIndex(schedule["close"]).as_unit("ns").asi8,
    )


def load_calendar() -> None:
    """Build the cached NYSE schedule now (about 0.5 s) rather than on first use.

    Components that need the calendar inside a timed or latency-sensitive loop (a strategy in
    a backtest or on a live node) call this at construction.
    """
    _bounds_ns()


def _as_date(value: date | str | pd.Timestamp) -> pd.Timestamp:
    """A session date from what a user typed (YYYY-MM-DD) or a date object."""
    try:
        day = pd.Timestamp(value)
    except ValueError:  # pandas' date parser: text that is no date (also too large a year)
        raise CalendarRangeError(f"{value!r} is not a date (expected YYYY-MM-DD)") from None
    if day is pd.NaT:
        raise CalendarRangeError(f"{value!r} is not a date (expected YYYY-MM-DD)")
    if day.tzinfo is not None:
        raise ValueError(f"expected a calendar date, got tz-aware timestamp {value!r}")
    day = day.normalize()
    if not CALENDAR_START <= day <= CALENDAR_END:
        raise CalendarRangeError(
            f"{day.date()} is outside the supported calendar range "
            f"{CALENDAR_START.date()}..{CALENDAR_END.date()}"
        )
    return day


def trading_sessions(start: date | str, end: date | str) -> pd.DataFrame:
    """Regular sessions with ``start <= session <= end`` (both inclusive).

    Returns a frame indexed by the naive session date with tz-aware UTC "open" and "close"
    columns; half days carry their early close (e.g. 2024-11-29 closes at 18:00 UTC).
    """
    first, last = _as_date(start), _as_date(end)
    if first > last:
        raise CalendarRangeError(f"start {first.date()} is after end {last.date()}")
    return _schedule().loc[first:last].copy()


def sessions_ending(end: date | str, n: int) -> pd.DataFrame:
    """The last ``n`` sessions on or before ``end`` (same layout as ``trading_sessions``)."""
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    available = _schedule().loc[: _as_date(end)]
    if len(available) < n:
        raise CalendarRangeError(
            f"{n:,} sessions requested, but the NYSE calendar holds only {len(available):,} from "
            f"{CALENDAR_START.date()} to {_as_date(end).date()}"
        )
    return available.iloc[-n:].copy()


def session_minutes(sessions: pd.DataFrame) -> pd.DatetimeIndex:
    """All 1-minute bar close times of ``sessions``: open+1min .. close inclusive, UTC.

    Built with one ``np.repeat`` instead of a per-session ``date_range`` so that hundreds of
    sessions cost milliseconds.
    """
    opens = sessions["open"].to_numpy(dtype="datetime64[ns]")
    closes = sessions["close"].to_numpy(dtype="datetime64[ns]")
    lengths = ((closes - opens) // _MINUTE).astype(np.int64)
    starts = np.cumsum(lengths) - lengths
    minute_in_session = np.arange(lengths.sum()) - np.repeat(starts, lengths) + 1
    stamps = np.repeat(opens, lengths) + minute_in_session * _MINUTE
    return pd.DatetimeIndex(stamps, name="ts").tz_localize("UTC")


def _outside_calendar_ns(ts_ns: np.ndarray) -> np.ndarray:
    lo = pd.Timestamp(CALENDAR_START, tz="UTC").value
    hi = pd.Timestamp(CALENDAR_END + pd.Timedelta(days=1), tz="UTC").value
    return (ts_ns < lo) | (ts_ns >= hi)


def outside_calendar(ts: pd.DatetimeIndex) -> np.ndarray:
    """Boolean mask: which tz-aware timestamps the pinned calendar range cannot place."""
    return _outside_calendar_ns(_to_utc_ns(pd.DatetimeIndex(ts)))


def _session_positions(ts_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each timestamp, the index of the first session whose close is >= it, and
    whether the timestamp actually lies in that session's ``(open, close]``."""
    opens, closes = _bounds_ns()
    if _outside_calendar_ns(ts_ns).any():
        raise CalendarRangeError(
            "timestamps outside the supported calendar range "
            f"{CALENDAR_START.date()}..{CALENDAR_END.date()}"
        )
    pos = np.searchsorted(closes, ts_ns, side="left")
    clipped = np.minimum(pos, len(closes) - 1)
    inside = (pos < len(closes)) & (opens[clipped] < ts_ns)
    return clipped, inside


def _to_utc_ns(ts: pd.DatetimeIndex) -> np.ndarray:
    if ts.tz is None:
        raise ValueError("timestamps must be tz-aware (UTC bar close times)")
    return ts.tz_convert("UTC").as_unit("ns").asi8


def in_regular_session(ts: pd.DatetimeIndex) -> np.ndarray:
    """Boolean mask: does each bar-close timestamp fall in ``(open, close]`` of a session?

    The open itself is excluded because a bar closing at the open covers the last
    pre-market minute; the close is included because that bar covers the final minute.
    """
    _, inside = _session_positions(_to_utc_ns(pd.DatetimeIndex(ts)))
    return inside


def session_close_for(ts: pd.Timestamp) -> pd.Timestamp | None:
    """Close (UTC) of the session whose ``(open, close]`` contains ``ts``, else None.

    Lets a strategy flatten relative to the real close, which is 13:00 ET on half days
    such as 2024-07-03 and 2024-11-29 rather than the usual 16:00 ET.
    """
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        raise ValueError(f"timestamp must be tz-aware, got {ts!r}")
    pos, inside = _session_positions(np.array([stamp.tz_convert("UTC").value], dtype=np.int64))
    if not inside[0]:
        return None
    return _schedule()["close"].iloc[pos[0]]


def session_bounds(ts: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """(open, close) of the session containing ``ts`` or, outside sessions, the next one.

    The strategy calls this once per session to learn when entries stop and when to flatten;
    None past the end of the calendar.
    """
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        raise ValueError(f"timestamp must be tz-aware, got {ts!r}")
    _, closes = _bounds_ns()
    pos = int(np.searchsorted(closes, stamp.tz_convert("UTC").value, side="left"))
    if pos >= len(closes):
        return None
    schedule = _schedule()
    return schedule["open"].iloc[pos], schedule["close"].iloc[pos]
