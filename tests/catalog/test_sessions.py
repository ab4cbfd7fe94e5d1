"""NYSE session helpers: half days, DST, holidays and (open, close] bar-close semantics."""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd
import pytest

from catalog.errors import CalendarRangeError
from catalog.sessions import (
    in_regular_session,
    session_bounds,
    session_close_for,
    session_minutes,
    sessions_ending,
    trading_sessions,
)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_trading_sessions_layout_and_holidays() -> None:
    sessions = trading_sessions(date(2024, 11, 25), "2024-12-02")
    assert list(sessions.columns) == ["open", "close"]
    assert sessions.index.tz is None
    assert str(sessions["open"].dt.tz) == "UTC"
    # Thanksgiving (Nov 28) and the weekend are not sessions.
    assert [d.day for d in sessions.index] == [25, 26, 27, 29, 2]


@pytest.mark.parametrize(
    ("day", "close_utc"),
    [
        ("2024-11-29", "2024-11-29 18:00"),
        ("2024-07-03", "2024-07-03 17:00"),
        ("2024-12-24", "2024-12-24 18:00"),
    ],
)
def test_half_days_close_at_13_et(day: str, close_utc: str) -> None:
    session = trading_sessions(day, day)
    assert session["close"].iloc[0] == utc(close_utc)
    assert len(session_minutes(session)) == 210


def test_dst_shifts_the_utc_open() -> None:
    sessions = trading_sessions("2024-03-08", "2024-11-04")
    assert sessions.loc["2024-03-08", "open"] == utc("2024-03-08 14:30")  # EST
    assert sessions.loc["2024-03-11", "open"] == utc("2024-03-11 13:30")  # EDT
    assert sessions.loc["2024-11-01", "close"] == utc("2024-11-01 20:00")
    assert sessions.loc["2024-11-04", "open"] == utc("2024-11-04 14:30")


def test_sessions_ending_counts_back_from_a_non_session_day() -> None:
    sessions = sessions_ending("2024-12-29", 5)  # a Sunday
    assert len(sessions) == 5
    assert sessions.index[-1] == pd.Timestamp("2024-12-27")
    assert pd.Timestamp("2024-12-25") not in sessions.index


def test_invalid_requests_raise() -> None:
    with pytest.raises(ValueError, match="positive"):  # a caller's bug, not a user's date
        sessions_ending("2024-12-31", 0)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: trading_sessions("1999-01-01", "1999-12-31"), "outside the supported calendar range"),
    (lambda: trading_sessions("2024-12-31", "2024-01-02"), "start 2024-12-31 is after end 2024-01-02"),
    (lambda: trading_sessions("2024-13-45", "2024-12-31"), "'2024-13-45' is not a date"),
    (lambda: trading_sessions("yesterday-ish", "2024-12-31"), "'yesterday-ish' is not a date"),
    (lambda: trading_sessions("", "2024-12-31"), "'' is not a date"),
    (lambda: sessions_ending("2000-01-10", 50), "50 sessions requested, but the NYSE calendar holds only 6"),
    (lambda: sessions_ending("2024-12-31", 100_000), "100,000 sessions requested"),
], ids=["before-range", "reversed", "bad-month", "not-a-date", "empty", "too-many-early", "too-many"])
def test_a_date_or_range_the_calendar_cannot_serve_is_a_catalog_error(call, message: str) -> None:
    """What a user typed (dates, --days) is refused with the catalog's own error type, so the
    CLI can print it while a ValueError from a bug keeps its traceback."""
    with pytest.raises(CalendarRangeError, match=re.escape(message)):
        call()


def test_session_minutes_are_bar_close_times() -> None:
    sessions = trading_sessions("2024-11-27", "2024-11-29")
    minutes = session_minutes(sessions)
    assert minutes.name == "ts" and str(minutes.tz) == "UTC"
    assert len(minutes) == 390 + 210
    assert minutes[0] == utc("2024-11-27 14:31")
    assert minutes[389] == utc("2024-11-27 21:00")
    assert minutes[390] == utc("2024-11-29 14:31")
    assert minutes[-1] == utc("2024-11-29 18:00")
    assert minutes.is_monotonic_increasing and minutes.is_unique


def test_session_minutes_of_500_sessions_are_all_regular() -> None:
    """(Its speed is a ``sextant bench`` figure, not a test.)"""
    sessions = sessions_ending("2024-12-31", 500)
    minutes = session_minutes(sessions)
    assert len(minutes) == ((sessions["close"] - sessions["open"]) // pd.Timedelta(minutes=1)).sum()
    assert in_regular_session(minutes).all()


def test_in_regular_session_boundaries() -> None:
    stamps = pd.DatetimeIndex(
        [
            utc("2024-07-10 13:30"),  # bar 09:29-09:30 ET: pre-market
            utc("2024-07-10 13:31"),  # first regular bar
            utc("2024-07-10 20:00"),  # last regular bar
            utc("2024-07-10 20:01"),  # post-market
            utc("2024-11-29 18:00"),  # last bar of a half day
            utc("2024-11-29 18:01"),  # after the early close
            utc("2024-07-13 15:00"),  # Saturday
        ]
    )
    assert in_regular_session(stamps).tolist() == [False, True, True, False, True, False, False]
    eastern = stamps.tz_convert("America/New_York")
    assert np.array_equal(in_regular_session(eastern), in_regular_session(stamps))


def test_in_regular_session_rejects_naive_timestamps() -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        in_regular_session(pd.DatetimeIndex(["2024-07-10 14:00"]))


def test_session_close_for_half_days_and_outside_sessions() -> None:
    assert session_close_for(utc("2024-11-29 15:00")) == utc("2024-11-29 18:00")
    assert session_close_for(pd.Timestamp("2024-07-03 10:00", tz="America/New_York")) == utc(
        "2024-07-03 17:00"
    )
    assert session_close_for(utc("2024-12-16 21:00")) == utc("2024-12-16 21:00")
    assert session_close_for(utc("2024-11-29 18:01")) is None
    assert session_close_for(utc("2024-12-25 15:00")) is None
    with pytest.raises(ValueError, match="tz-aware"):
        session_close_for(pd.Timestamp("2024-11-29 15:00"))


def test_session_bounds_inside_and_between_sessions() -> None:
    half_day = (utc("2024-11-29 14:30"), utc("2024-11-29 18:00"))
    assert session_bounds(utc("2024-11-29 15:00")) == half_day
    assert session_bounds(utc("2024-11-29 18:00")) == half_day  # the last bar's close
    # After a close (and over the weekend) the next session is returned.
    assert session_bounds(utc("2024-11-29 18:01")) == (
        utc("2024-12-02 14:30"),
        utc("2024-12-02 21:00"),
    )
    assert session_bounds(utc("2030-12-31 22:00")) is None
