"""Multi-timeframe features: only completed 5m/30m/1h/1d bars are visible, per timeframe.

Truncation proves the causality bit for bit (the rows before a cut never change); the
completion test proves the stronger rule: a row's value changes only on the row where one of
that timeframe's bars completes (session-aligned, half days closing at 13:00 New York).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from models import timeframes as T
from models.features import NY_TZ, ny_local_ns
from tests.models.test_features import make_bars

TIMEFRAMES = tuple(T.TIMEFRAME_MINUTES)
K = len(T.TF_FEATURES)


def _arrays(bars: pd.DataFrame) -> tuple[np.ndarray, ...]:
    return bars["high"].to_numpy(), bars["low"].to_numpy(), bars["close"].to_numpy(), bars.index.asi8


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return make_bars(n_sessions=9, seed=3, drop_frac=0.05)


def _half_day_bars() -> pd.DataFrame:
    """A full session, the 2024-11-29 half day (09:31..13:00) and another full session, no
    minute missing."""
    days = [("2024-11-27", 390), ("2024-11-29", 210), ("2024-12-02", 390)]
    index = pd.DatetimeIndex(np.concatenate([
        pd.date_range(pd.Timestamp(f"{d} 09:31", tz=NY_TZ), periods=n, freq="1min").tz_convert("UTC")
        for d, n in days
    ]))
    rng = np.random.default_rng(5)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, len(index))))
    return pd.DataFrame({"high": close * 1.001, "low": close * 0.999, "close": close}, index=index)


@pytest.mark.parametrize("tf", TIMEFRAMES)
def test_truncation_never_changes_earlier_rows(bars: pd.DataFrame, tf: str) -> None:
    h, low, c, ts = _arrays(bars)
    full = T.timeframe_features(h, low, c, ts, (tf,))
    assert np.isfinite(full[-1]).all()
    n = len(c)
    for t in (0, 3, 4, 5, 29, 30, 389, 390, 391, 1000, n // 2, n - 2):
        cut = T.timeframe_features(h[: t + 1], low[: t + 1], c[: t + 1], ts[: t + 1], (tf,))
        np.testing.assert_array_equal(cut, full[: t + 1], err_msg=f"{tf} cut at {t}")


@pytest.mark.parametrize("tf", TIMEFRAMES)
def test_values_change_only_where_a_bar_completes(tf: str) -> None:
    bars = _half_day_bars()
    h, low, c, ts = _arrays(bars)
    values = T.timeframe_features(h, low, c, ts, (tf,))
    local = ny_local_ns(ts)
    minute = (local % 86_400_000_000_000) // 60_000_000_000 - 570
    day = local // 86_400_000_000_000
    session_length = np.where(day == day[390], 210, 390)  # the second session is the half day
    size = T.TIMEFRAME_MINUTES[tf] or 390
    completes = (minute % size == 0) | (minute == session_length)
    a, b = values[1:], values[:-1]
    changed = np.r_[False, ~((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)]
    assert changed.any()
    assert not (changed & ~completes).any(), np.flatnonzero(changed & ~completes)[:5]
    # tf_ret on a completing row is the log return of the TF bar it completes.
    ret = values[:, 0]
    done = np.flatnonzero(completes)
    for prev, cur in pairwise(done):
        if np.isfinite(ret[cur]):
            assert ret[cur] == pytest.approx(np.log(c[cur] / c[prev]), rel=1e-12)


def test_the_first_5m_bar_is_visible_from_the_row_that_closes_it() -> None:
    bars = _half_day_bars()
    h, low, c, ts = _arrays(bars)
    rsi = T.timeframe_features(h, low, c, ts, ("5m",))[:, 1]
    # Day 1 09:31..09:35 are rows 0..4: the 09:30-09:35 bar completes on row 4 (09:35 close).
    # Its RSI needs 12 returns, i.e. 13 5m bars: first visible on the row closing bar 13.
    first = np.flatnonzero(np.isfinite(rsi))[0]
    assert first == 13 * 5 - 1
    local = pd.Timestamp(ts[first], tz="UTC").tz_convert(NY_TZ)
    assert (local.hour, local.minute) == (10, 35)


def test_half_day_daily_bar_completes_at_the_early_close() -> None:
    bars = _half_day_bars()
    h, low, c, ts = _arrays(bars)
    daily_ret = T.timeframe_features(h, low, c, ts, ("1d",))[:, 0]
    # Day 1 completes on row 389; the half day on its 13:00 row (389 + 210) with its close.
    assert np.isnan(daily_ret[:599]).all()
    assert daily_ret[599] == pytest.approx(np.log(c[599] / c[389]), rel=1e-12)
    assert (daily_ret[599:-1] == daily_ret[599]).all()
    assert daily_ret[-1] == pytest.approx(np.log(c[-1] / c[599]), rel=1e-12)  # 16:00, day 3


def test_a_missing_closing_minute_completes_the_bar_on_the_next_row() -> None:
    bars = _half_day_bars()
    dropped = bars.drop(bars.index[[4, 9]])  # 09:35 and 09:40 of day 1 missing
    h, low, c, ts = _arrays(dropped)
    full = T.timeframe_features(*_arrays(bars), ("5m",))
    gap = T.timeframe_features(h, low, c, ts, ("5m",))
    # 09:36 (row 4 after the drop) sees the 09:30-09:35 bar, closed at 09:34's close.
    assert gap[4, 0] != gap[3, 0] or np.isnan(gap[3, 0])
    np.testing.assert_array_equal(gap[200:], full[202:])  # later rows re-align exactly


def test_a_live_window_reproduces_the_last_row_bit_for_bit(bars: pd.DataFrame) -> None:
    h, low, c, ts = _arrays(bars)
    lookback = T.timeframe_lookback(TIMEFRAMES)
    assert lookback == (T.WINDOWS["1d"] + 2) * 390
    full = T.timeframe_features(h, low, c, ts, TIMEFRAMES)
    for end in (len(c) - 1, len(c) - 200, len(c) - 391):
        window = slice(end - lookback + 1, end + 1)
        live = T.timeframe_features(h[window], low[window], c[window], ts[window], TIMEFRAMES)
        np.testing.assert_array_equal(live[-1], full[end])


def test_names_and_shape() -> None:
    names = T.timeframe_names(TIMEFRAMES)
    assert len(names) == K * len(TIMEFRAMES) == len(set(names))
    assert names[:K] == ("tf5m_ret", "tf5m_rsi", "tf5m_range", "tf5m_vol", "tf5m_trend")
