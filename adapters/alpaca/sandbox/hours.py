"""GET /v2/clock and /v2/calendar from the NYSE calendar, in simulated time.

Alpaca states clock times in New York time with an offset (``2024-12-30T09:30:00-05:00``) and
calendar open/close as New York ``HH:MM``; the sandbox does the same so a client's time
handling is exercised as against the real API.
"""

from datetime import date
from typing import Any

import pandas as pd

from catalog.sessions import CALENDAR_END, CALENDAR_START, session_bounds, trading_sessions

NEW_YORK = "America/New_York"


def _new_york(ts: pd.Timestamp) -> str:
    return ts.tz_convert(NEW_YORK).isoformat()


def clock_json(now_ns: int) -> dict[str, Any]:
    """Open in [session open, session close); outside, the next session's times."""
    now = pd.Timestamp(now_ns, tz="UTC")
    bounds = session_bounds(now)
    if bounds is None:
        raise LookupError(f"{now} is past the end of the NYSE calendar ({CALENDAR_END.date()})")
    open_, close = bounds
    is_open = open_ <= now < close
    if now < open_:
        next_open, next_close = open_, close
    else:  # in the session, or at its close (shut until the next open)
        following = session_bounds(close + pd.Timedelta(1, "ns"))
        if following is None:
            raise LookupError(f"no NYSE session after {close} in the calendar")
        next_open = following[0]
        next_close = close if is_open else following[1]
    return {
        "timestamp": _new_york(now),
        "is_open": bool(is_open),
        "next_open": _new_york(next_open),
        "next_close": _new_york(next_close),
    }


def calendar_json(start: date | None, end: date | None) -> list[dict[str, str]]:
    """Sessions in [start, end] (whole calendar when omitted), clipped to the calendar's span."""
    first = max(pd.Timestamp(start) if start else CALENDAR_START, CALENDAR_START)
    last = min(pd.Timestamp(end) if end else CALENDAR_END, CALENDAR_END)
    if first > last:
        return []
    sessions = trading_sessions(first, last)
    opens = pd.DatetimeIndex(sessions["open"]).tz_convert(NEW_YORK)
    closes = pd.DatetimeIndex(sessions["close"]).tz_convert(NEW_YORK)
    return [
        {
            "date": day.strftime("%Y-%m-%d"),
            "open": o.strftime("%H:%M"),
            "close": c.strftime("%H:%M"),
            "session_open": "0400",
            "session_close": "2000",
        }
        for day, o, c in zip(sessions.index, opens, closes, strict=True)
    ]
