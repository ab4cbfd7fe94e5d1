"""Catalog 1-minute bars -> Polygon aggregates (pure numpy, no I/O).

The catalog stamps a bar with its CLOSE; Polygon stamps an aggregate with its window START
(``t``). Windows of 5m/15m/1h are aligned on New York wall-clock time, and a 1-minute bar
closing at C belongs to the window containing C - 1 minute, so the 09:00-10:00 ET hour holds
the 09:31..10:00 closes. A daily aggregate holds the bars of one New York calendar date and
is stamped 00:00 America/New_York of that date, as Polygon does.

Two fields Polygon computes from trades are derived here, because the catalog has no trades:
``vw`` is the volume-weighted average of the 1-minute bars' typical price (h+l+c)/3, and
``n`` is the number of 1-minute bars in the window. Minutes missing from the catalog stay
missing (a window with no bars is not emitted), like real sparse minute data.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from adapters.polygon.common import NANOS_PER_MILLI, Timeframe
from catalog.sessions import trading_sessions

NEW_YORK = "America/New_York"
MINUTE_NS = 60_000_000_000
DAY_NS = 86_400_000_000_000
VWAP_DECIMALS = 4


@dataclass(frozen=True)
class AggSeries:
    """Aggregates of one symbol and timeframe, sorted by window start."""

    start_ms: np.ndarray  # int64, Polygon ``t``
    end_ns: np.ndarray  # int64, when the window is complete (bar close; daily: session close)
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    vwap: np.ndarray
    trades: np.ndarray  # int64, Polygon ``n``

    def __len__(self) -> int:
        return len(self.start_ms)

    @property
    def integral_volume(self) -> bool:
        """Whole-share volumes are sent as JSON integers, like Polygon's stock aggregates."""
        return bool(np.all(self.volume == np.floor(self.volume)))


def typical_price(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    return (high + low + close) / 3.0


def minute_aggregates(bars: pd.DataFrame) -> AggSeries:
    """A catalog 1m bars frame (index = close, UTC) as Polygon minute aggregates."""
    close_ns = pd.DatetimeIndex(bars.index).as_unit("ns").asi8.astype(np.int64)
    high, low, close = (bars[c].to_numpy(np.float64) for c in ("high", "low", "close"))
    return AggSeries(
        start_ms=(close_ns - MINUTE_NS) // NANOS_PER_MILLI,
        end_ns=close_ns,
        open=bars["open"].to_numpy(np.float64),
        high=high,
        low=low,
        close=close,
        volume=bars["volume"].to_numpy(np.float64),
        vwap=np.round(typical_price(high, low, close), VWAP_DECIMALS),
        trades=np.ones(len(close_ns), dtype=np.int64),
    )


def resample(minutes: AggSeries, timeframe: Timeframe) -> AggSeries:
    """Aggregate minute aggregates into ``timeframe`` windows (see the module docstring)."""
    if timeframe.timespan == "minute" and timeframe.multiplier == 1:
        return minutes
    close_ns = minutes.end_ns
    if len(close_ns) == 0:
        return minutes
    if timeframe.is_daily:
        keys = new_york_day_start_ns(close_ns - MINUTE_NS)
    else:
        keys = _window_start_ns(close_ns - MINUTE_NS, timeframe.interval_ns)
    first = np.concatenate(([0], np.flatnonzero(np.diff(keys)) + 1))
    last = np.concatenate((first[1:], [len(keys)])) - 1
    starts_ns = keys[first]
    tp = typical_price(minutes.high, minutes.low, minutes.close)
    volume = np.add.reduceat(minutes.volume, first)
    trades = last - first + 1
    weighted = np.add.reduceat(tp * minutes.volume, first)
    plain = np.add.reduceat(tp, first) / trades
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = np.where(volume > 0, weighted / np.where(volume > 0, volume, 1.0), plain)
    if timeframe.is_daily:
        end_ns = np.maximum(_session_close_ns(starts_ns), close_ns[last])
    else:
        end_ns = starts_ns + timeframe.interval_ns
    return AggSeries(
        start_ms=starts_ns // NANOS_PER_MILLI,
        end_ns=end_ns,
        open=minutes.open[first],
        high=np.maximum.reduceat(minutes.high, first),
        low=np.minimum.reduceat(minutes.low, first),
        close=minutes.close[last],
        volume=volume,
        vwap=np.round(vwap, VWAP_DECIMALS),
        trades=trades.astype(np.int64),
    )


def new_york_day_start_ns(ts_ns: np.ndarray) -> np.ndarray:
    """00:00 America/New_York (as UTC ns) of the New York date of each timestamp."""
    local = _new_york_wall_ns(ts_ns)
    days, inverse = np.unique(local // DAY_NS, return_inverse=True)
    midnights = pd.DatetimeIndex((days * DAY_NS).astype("datetime64[ns]")).tz_localize(NEW_YORK)
    return midnights.as_unit("ns").asi8[inverse]


def session_running(minutes: AggSeries) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per 1m bar: accumulated session volume, the session's first open and the session
    VWAP so far (typical-price based), the ``av``/``op``/``a`` fields of an AM message.
    A session is a New York calendar date."""
    n = len(minutes)
    if n == 0:
        empty = np.empty(0, dtype=np.float64)
        return empty, empty, empty
    days = new_york_day_start_ns(minutes.end_ns - MINUTE_NS)
    first = np.concatenate(([0], np.flatnonzero(np.diff(days)) + 1))
    group_first = np.repeat(first, np.diff(np.concatenate((first, [n]))))
    tp = typical_price(minutes.high, minutes.low, minutes.close)
    cum_v = np.cumsum(minutes.volume)
    cum_pv = np.cumsum(tp * minutes.volume)
    cum_tp = np.cumsum(tp)
    before_v = np.where(group_first > 0, cum_v[group_first - 1], 0.0)
    before_pv = np.where(group_first > 0, cum_pv[group_first - 1], 0.0)
    before_tp = np.where(group_first > 0, cum_tp[group_first - 1], 0.0)
    session_v = cum_v - before_v
    counts = np.arange(n) - group_first + 1
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = np.where(
            session_v > 0,
            (cum_pv - before_pv) / np.where(session_v > 0, session_v, 1.0),
            (cum_tp - before_tp) / counts,
        )
    return session_v, minutes.open[group_first], np.round(vwap, VWAP_DECIMALS)


def _new_york_wall_ns(ts_ns: np.ndarray) -> np.ndarray:
    index = pd.DatetimeIndex(ts_ns.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(NEW_YORK)
    return index.tz_localize(None).as_unit("ns").asi8


def _window_start_ns(ts_ns: np.ndarray, interval_ns: int) -> np.ndarray:
    """Start (UTC ns) of the New-York-aligned window of ``interval_ns`` holding each instant."""
    offset = _new_york_wall_ns(ts_ns) - ts_ns
    return ((ts_ns + offset) // interval_ns) * interval_ns - offset


def _session_close_ns(day_starts_ns: np.ndarray) -> np.ndarray:
    """Close of the NYSE session on each New York date (its midnight) or 0 for non-sessions."""
    dates = (
        pd.DatetimeIndex(day_starts_ns.astype("datetime64[ns]"))
        .tz_localize("UTC")
        .tz_convert(NEW_YORK)
    )
    naive = dates.tz_localize(None).normalize()
    sessions = trading_sessions(naive.min(), naive.max())
    closes = pd.Series(pd.DatetimeIndex(sessions["close"]).as_unit("ns").asi8, index=sessions.index)
    return closes.reindex(naive).fillna(0).to_numpy(np.int64)
