"""Multi-timeframe features: 5m, 30m, 1h and 1d bars built from the 1-minute bars.

Higher-timeframe (TF) bars are session-aligned in New York time: the 5m bars of a session are
09:30-09:35, 09:35-09:40, ...; the 1h bars 09:30-10:30, ..., 15:30-16:00 (the last one is
short), and every bar ends no later than the session's real close (13:00 on half days, from the
NYSE calendar), so a half day's last bars complete at 13:00. The 1d bar is the whole session.

Only COMPLETED TF bars are visible: a TF bar becomes visible at the first minute row whose close
time reaches the TF bar's end (the 09:35 row completes 09:30-09:35; if that minute is missing,
the 09:36 row does). Each TF feature is a function of the visible TF bars alone, so a row's value
changes only on the row where a TF bar completes, and truncating the input never changes an
earlier row (bit for bit: every window sum runs oldest to newest over a fixed-length window, so
it does not depend on where the array starts either).

Per timeframe, five columns named ``tf<label>_<feature>`` (e.g. ``tf5m_rsi``), over the last
``WINDOWS[label]`` TF bars: ``ret`` (log return of the last TF bar), ``rsi`` (Cutler's RSI in
[0, 1]), ``range`` (close's position in the window's high-low range), ``vol`` (RMS of the TF log
returns) and ``trend`` (close over the window's simple moving average, minus 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from catalog.sessions import CALENDAR_END, CALENDAR_START, trading_sessions
from models.features import ny_local_ns, window_sum

Timeframe = Literal["5m", "30m", "1h", "1d"]
# Minutes per TF bar; None = the whole session.
TIMEFRAME_MINUTES: dict[str, int | None] = {"5m": 5, "30m": 30, "1h": 60, "1d": None}
# TF bars per window: an hour of 5m bars, a session of 30m and 1h bars, a week of sessions.
WINDOWS: dict[str, int] = {"5m": 12, "30m": 13, "1h": 7, "1d": 5}
TF_FEATURES = ("ret", "rsi", "range", "vol", "trend")

_NS_PER_MINUTE = 60_000_000_000
_NS_PER_DAY = 86_400_000_000_000
_OPEN_MINUTE = 9 * 60 + 30
_REGULAR_SESSION_MINUTES = 390
# Minute bars a full session holds; the unit of the live lookback below.
_BARS_PER_SESSION = _REGULAR_SESSION_MINUTES


def timeframe_names(timeframes: Sequence[str]) -> tuple[str, ...]:
    """Column names of ``timeframes``, in the order ``timeframe_features`` returns them."""
    return tuple(f"tf{tf}_{f}" for tf in timeframes for f in TF_FEATURES)


def timeframe_lookback(timeframes: Sequence[str]) -> int:
    """Minute bars a live buffer must hold so its last row equals the full-history row.

    The last row needs the last ``window + 1`` completed TF bars (returns need one close more
    than the window), and the current TF bar may be unfinished; one more TF bar of margin
    keeps a partial first TF bar of the buffer out of reach. Sessions count as full (390 bars):
    missing minutes and half days only make the buffer reach further back.
    """
    need = [
        (WINDOWS[tf] + 2) * (TIMEFRAME_MINUTES[tf] or _BARS_PER_SESSION) for tf in timeframes
    ]
    return max(need, default=0)


def timeframe_features(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    ts_ns: np.ndarray,
    timeframes: Sequence[str],
) -> np.ndarray:
    """(n, 5 * len(timeframes)) float64 features of the completed TF bars visible at each row.

    Inputs are 1-minute bars (ts_ns: int64 UTC bar-close times, strictly increasing, regular
    session only). Rows before a TF's first full window are NaN.
    """
    n = len(close)
    out = np.full((n, len(TF_FEATURES) * len(timeframes)), np.nan)
    if n == 0:
        return out
    local = ny_local_ns(ts_ns)
    day = local // _NS_PER_DAY
    minute = (local % _NS_PER_DAY) // _NS_PER_MINUTE - _OPEN_MINUTE  # 1..390 on a full day
    length = session_minutes(day)
    for j, tf in enumerate(timeframes):
        block = out[:, j * len(TF_FEATURES) : (j + 1) * len(TF_FEATURES)]
        bars = timeframe_bars(high, low, close, day, minute, length, tf)
        visible = np.searchsorted(bars.done, np.arange(n), side="right") - 1
        seen = visible >= 0
        with np.errstate(divide="ignore", invalid="ignore"):
            values = bar_features(bars.high, bars.low, bars.close, WINDOWS[tf])
        block[seen] = values[visible[seen]]
    return out


class TimeframeBars(NamedTuple):
    """One timeframe's bars built from minute rows: the row each TF bar completes on (``n`` if
    it never does within the input), its day and bucket (the TF bar's key within the session)
    and its high, low, close."""

    done: np.ndarray
    day: np.ndarray
    bucket: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray


def bucket_of(minute: np.ndarray, length: np.ndarray, tf: str) -> tuple[np.ndarray, np.ndarray]:
    """(bucket, bucket's end minute) of rows at ``minute`` of sessions ``length`` minutes long:
    the TF bar a row belongs to, and the minute that completes it (never past the close)."""
    size = TIMEFRAME_MINUTES[tf] or _REGULAR_SESSION_MINUTES
    bucket = np.maximum(minute - 1, 0) // size
    return bucket, np.minimum((bucket + 1) * size, length)


def timeframe_bars(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    day: np.ndarray,
    minute: np.ndarray,
    length: np.ndarray,
    tf: str,
) -> TimeframeBars:
    """The ``tf`` bars of minute rows (New York ``day``, ``minute`` of the session, session
    ``length``): the completion rule in one place, for the batch features and for seeding the
    streaming engine."""
    n = len(close)
    bucket, bucket_end = bucket_of(minute, length, tf)
    start = np.flatnonzero(np.r_[True, (day[1:] != day[:-1]) | (bucket[1:] != bucket[:-1])])
    last = np.r_[start[1:] - 1, n - 1]
    # A TF bar completes on its last row if that row reaches the bar's end, else on the
    # first row of the next TF bar (its end minute was missing); never, if neither exists.
    done = np.where(minute[last] >= bucket_end[last], last, np.r_[start[1:], n])
    return TimeframeBars(done=done, day=day[start], bucket=bucket[start],
                         high=np.maximum.reduceat(high, start), low=np.minimum.reduceat(low, start),
                         close=close[last])


def session_minutes(day: np.ndarray) -> np.ndarray:
    """Each row's session length in minutes from the NYSE calendar (210 on half days); a day
    the calendar has no session for counts as a regular 390-minute day."""
    keys, minutes = _calendar_session_minutes()
    at = np.minimum(np.searchsorted(keys, day), len(keys) - 1)
    return np.where(keys[at] == day, minutes[at], _REGULAR_SESSION_MINUTES)


@cache
def _calendar_session_minutes() -> tuple[np.ndarray, np.ndarray]:
    """(New York day number, session minutes) of every session the pinned calendar holds."""
    sessions = trading_sessions(CALENDAR_START, CALENDAR_END)
    keys = pd.DatetimeIndex(sessions.index).as_unit("ns").asi8 // _NS_PER_DAY
    minutes = (sessions["close"] - sessions["open"]).dt.total_seconds().to_numpy() // 60
    return keys, minutes.astype(np.int64)


def bar_features(high: np.ndarray, low: np.ndarray, close: np.ndarray, w: int) -> np.ndarray:
    """(..., G, 5) features of TF bar series (along the last axis) over windows of ``w`` TF
    bars; the streaming engine passes (symbols, w + 1) windows and reads the last row."""
    out = np.full((*close.shape, len(TF_FEATURES)), np.nan)
    log_close = np.log(close)
    ret = np.full(close.shape, np.nan)
    ret[..., 1:] = np.diff(log_close, axis=-1)
    delta = np.full(close.shape, np.nan)
    delta[..., 1:] = np.diff(close, axis=-1)
    out[..., 0] = ret
    out[..., 1] = window_sum(np.maximum(delta, 0.0), w) / window_sum(np.abs(delta), w)
    top, bottom = _window_reduce(high, w, np.maximum), _window_reduce(low, w, np.minimum)
    out[..., 2] = (close - bottom) / (top - bottom)
    out[..., 3] = np.sqrt(window_sum(np.square(ret), w) / w)
    out[..., 4] = close / (window_sum(close, w) / w) - 1.0
    return out


def _window_reduce(x: np.ndarray, w: int, op: np.ufunc) -> np.ndarray:
    """Trailing max/min of ``w`` values along the last axis (exact, so order does not matter)."""
    out = np.full(x.shape, np.nan)
    m = x.shape[-1] - w + 1
    if m <= 0:
        return out
    total = x[..., :m].copy()
    for k in range(1, w):
        op(total, x[..., k : k + m], out=total)
    out[..., w - 1 :] = total
    return out
