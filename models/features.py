"""Causal, vectorised feature set shared by backtests and live inference.

The same `feature_matrix` runs over a whole backtest window and over the last
`LOOKBACK_BARS` rows of a live rolling buffer, so train/serve skew can only come
from the data, never from two implementations drifting apart.

Design rules (each one is what makes the live == backtest guarantee hold):

* Causal: row t uses only rows <= t, so truncating the input never changes
  earlier rows (bit-for-bit: every kernel is a sequential scan, an elementwise
  op or a fixed-length window reduction).
* Finite memory wherever possible: rolling sums are computed block-wise (see
  `_rolling_sum`) so their rounding error depends on the window, not on how much
  history precedes it; the OBV *level* is never a feature, only its windowed change.
* The only infinite-memory kernels are TA-Lib-style exponential smoothers
  (EMA, Wilder). Their seed's weight decays geometrically; `LOOKBACK_BARS` is
  chosen so it is far below float64 resolution by the last row of a live window.
* No Python loops over rows: recursions use `scipy.signal.lfilter`, windows use
  cumulative sums, van Herk max/min filters or a loop over window *offsets*.

Rows before `WARMUP_BARS` are NaN for every feature; rows after it are finite
unless the input is degenerate (e.g. a zero-volume window makes a volume ratio
0/0 = NaN).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import maximum_filter1d, minimum_filter1d
from scipy.signal import lfilter

NY_TZ = "America/New_York"
_NS_PER_MINUTE = 60_000_000_000
_NS_PER_DAY = 86_400_000_000_000
_SESSION_OPEN_MINUTE = 9 * 60 + 30  # 09:30 New York
_SESSION_MINUTES = 390
# TA-Lib's TA_IS_ZERO threshold (ta_utility.h, TA-Lib >= 0.6): RSI is 0 below it.
_TA_EPSILON = 1e-14

RSI_PERIOD = 14
# Multi-timeframe RSI: 14 periods of 5-minute and 15-minute bars, measured on
# 1-minute bars with Cutler's (simple-average) RSI so memory stays finite.
RSI_SMA_WINDOWS = (14 * 5, 14 * 15)
MACD_PERIODS = (12, 26, 9)
BB_PERIOD, BB_NBDEV = 20, 2.0
ATR_PERIOD = 14
OBV_WINDOWS = (15, 60)
EMA_PERIODS = (9, 21, 50)
SMA_PERIODS = (20, 60, 200)
RETURN_LAGS = (1, 5, 15, 30, 60, 120)
RV_WINDOWS = (15, 60, 390)
VOLUME_WINDOWS = (15, 60, 390)
RANGE_WINDOW = 60
ZSCORE_LAGS = (15, 60)

FEATURE_NAMES: tuple[str, ...] = (
    f"rsi_{RSI_PERIOD}",
    *(f"rsi_{w}" for w in RSI_SMA_WINDOWS),
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_pctb",
    "bb_width",
    f"atr_{ATR_PERIOD}",
    *(f"obv_slope_{w}" for w in OBV_WINDOWS),
    "vwap_dev",
    *(f"close_ema_{p}" for p in EMA_PERIODS),
    f"ema_{EMA_PERIODS[0]}_{EMA_PERIODS[1]}",
    *(f"close_sma_{p}" for p in SMA_PERIODS),
    *(f"ret_{k}" for k in RETURN_LAGS),
    *(f"rv_{w}" for w in RV_WINDOWS),
    f"rv_ratio_{RV_WINDOWS[0]}_{RV_WINDOWS[-1]}",
    *(f"vol_ratio_{w}" for w in VOLUME_WINDOWS),
    "hl_range",
    "bar_body",
    f"range_{RANGE_WINDOW}",
    f"stoch_{RANGE_WINDOW}",
    *(f"ret_z_{k}" for k in ZSCORE_LAGS),
    "tod",
    "tod_sin",
    "tod_cos",
    "dow",
)

# The longest finite window: rv_390 needs 390 one-bar returns, i.e. 391 rows, so
# rows 0..389 are warm-up. This also covers a partial first session (<= 390
# bars) for the session VWAP. By then the slowest smoother (EMA 50) retains
# (49/51)**341 ~ 1e-6 of its seed, negligible for modelling.
WARMUP_BARS: int = max(RV_WINDOWS)

# Trailing rows live inference must pass so the last row equals the
# full-history row: after 1000 rows the EMA-50 seed weight is
# (49/51)**950 ~ 3e-17 and every finite window (<= 390) plus the current
# session (<= 390 bars) is inside the buffer. Verified by the live-window test.
LOOKBACK_BARS: int = 1000


# --------------------------------------------------------------------------- time


def ny_local_ns(ts_ns: np.ndarray) -> np.ndarray:
    """UTC epoch ns -> New York wall-clock ns (as if the wall clock were UTC).

    Sessions, time of day and weekday are New York concepts; converting once,
    vectorised, lets everything downstream use plain integer arithmetic.
    """
    idx = pd.DatetimeIndex(np.asarray(ts_ns, dtype=np.int64).view("M8[ns]"))
    return idx.tz_localize("UTC").tz_convert(NY_TZ).tz_localize(None).asi8


def ny_day(ts_ns: np.ndarray) -> np.ndarray:
    """New York calendar date of each timestamp, as int64 days since 1970-01-01.

    Used as the trading-session key: labels, VWAP and walk-forward splits must
    never straddle the overnight gap.
    """
    return ny_local_ns(ts_ns) // _NS_PER_DAY


# ------------------------------------------------------------------ primitives


def _lag_diff(x: np.ndarray, k: int) -> np.ndarray:
    """x[t] - x[t-k], NaN for t < k."""
    out = np.full(len(x), np.nan)
    if len(x) > k:
        out[k:] = x[k:] - x[:-k]
    return out


def _rolling_sum(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing sum of w values (NaN for t < w-1), with history-independent error.

    A global cumsum makes the error of cs[t] - cs[t-w] grow with |cs|, i.e. with
    how much history precedes t, which breaks live == backtest. Here cumulative
    sums restart every w rows, so each window is (tail of block b-1) + (head of
    block b) and only O(w) values are ever accumulated. For non-negative x the
    result is non-negative (cumsum is monotone in floating point).
    """
    n = len(x)
    if n < w:
        return np.full(n, np.nan)
    n_blocks = -(-n // w)
    padded = np.zeros(n_blocks * w)
    padded[:n] = x
    head = np.cumsum(padded.reshape(n_blocks, w), axis=1)
    out = np.empty((n_blocks, w))
    out[0, :-1] = np.nan
    out[0, -1] = head[0, -1]
    # Row b holds the windows ending in block b: tail of block b-1 plus head of b.
    np.subtract(head[:-1, -1:], head[:-1], out=out[1:])
    out[1:] += head[1:]
    return out.ravel()[:n]


def window_sum(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing sum of w values along the last axis, added oldest to newest (NaN for t < w-1,
    and for any window holding a NaN), O(n*w).

    Unlike `_rolling_sum`, whose blocks start at the array's first row, every window here is
    summed in the same order whatever precedes it, so a live buffer starting anywhere gets the
    batch path's bits. For the short series it serves (higher-timeframe bars, risk windows);
    a 2-D input sums many series at once (the streaming engine's per-symbol windows).
    """
    out = np.full(x.shape, np.nan)
    m = x.shape[-1] - w + 1
    if m > 0:
        total = x[..., :m].copy()
        for k in range(1, w):
            total += x[..., k : k + m]
        out[..., w - 1 :] = total
    return out


def _rolling_max(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing max over w rows (NaN for t < w-1); van Herk filter, O(n)."""
    out = maximum_filter1d(x, w, origin=(w - 1) // 2)
    out[: w - 1] = np.nan
    return out


def _rolling_min(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing min over w rows (NaN for t < w-1); van Herk filter, O(n)."""
    out = minimum_filter1d(x, w, origin=(w - 1) // 2)
    out[: w - 1] = np.nan
    return out


def _window_mean_std(x: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing mean and population std over w values along the last axis, two-pass (centred).

    Bollinger bands need the std of ~100-dollar prices that move cents per bar;
    the E[x^2] - E[x]^2 shortcut loses ~6 digits there, so the variance is
    summed from centred values, looping over the w window offsets (not rows).
    """
    n = x.shape[-1]
    mean, std = np.full(x.shape, np.nan), np.full(x.shape, np.nan)
    if n < w:
        return mean, std
    m = n - w + 1
    total = x[..., :m].copy()
    for j in range(1, w):
        total += x[..., j : j + m]
    mu = total / w
    sq = np.square(x[..., :m] - mu)
    for j in range(1, w):
        sq += np.square(x[..., j : j + m] - mu)
    mean[..., w - 1 :] = mu
    std[..., w - 1 :] = np.sqrt(sq / w)
    return mean, std


def ema_alpha(period: int) -> float:
    """EMA weight of the newest value (TA-Lib's k = 2/(period+1))."""
    return 2.0 / (period + 1)


def wilder_alpha(period: int) -> float:
    """Wilder's smoothing weight of the newest value (RSI, ATR)."""
    return 1.0 / period


def smooth_step(x: np.ndarray, previous: np.ndarray, alpha: float) -> np.ndarray:
    """One step of `_smooth`'s recursion, alpha*x + (1-alpha)*previous, in lfilter's order of
    operations, so carrying the last value forward bar by bar gives the batch path's bits."""
    return alpha * x + (1.0 - alpha) * previous


def _smooth(x: np.ndarray, alpha: float, period: int, seed_idx: int) -> np.ndarray:
    """TA-Lib-seeded exponential smoother y[t] = alpha*x[t] + (1-alpha)*y[t-1].

    y[seed_idx] is the plain mean of the `period` values ending at seed_idx (how
    TA-Lib seeds EMA, RSI and ATR); earlier rows are NaN. The recursion runs in
    `lfilter` with the seed injected as its initial state.
    """
    n = len(x)
    out = np.full(n, np.nan)
    if n <= seed_idx:
        return out
    seed = x[seed_idx - period + 1 : seed_idx + 1].sum() / period
    out[seed_idx] = seed
    if n > seed_idx + 1:
        decay = 1.0 - alpha
        out[seed_idx + 1 :], _ = lfilter(
            [alpha], [1.0, -decay], x[seed_idx + 1 :], zi=[decay * seed]
        )
    return out


# ------------------------------------------------- TA-Lib compatible indicators


def ema(x: np.ndarray, period: int) -> np.ndarray:
    """EMA with k = 2/(period+1), SMA-seeded at row period-1 exactly like TA-Lib EMA."""
    return _smooth(x, ema_alpha(period), period, period - 1)


def wilder_gain_loss(close: np.ndarray, period: int = RSI_PERIOD) -> tuple[np.ndarray, np.ndarray]:
    """Wilder-smoothed average gain and loss per bar: the state RSI is the ratio of (a
    streaming engine carries them and applies `rsi_from_averages`)."""
    delta = _lag_diff(close, 1)
    gain = _smooth(np.maximum(delta, 0.0), wilder_alpha(period), period, period)
    loss = _smooth(np.maximum(-delta, 0.0), wilder_alpha(period), period, period)
    return gain, loss


def rsi_from_averages(gain: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """RSI on the 0-100 scale from the average gain and loss (0 where both vanish, as TA-Lib)."""
    total = gain + loss
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total < _TA_EPSILON, 0.0, 100.0 * gain / total)


def rsi(close: np.ndarray, period: int = RSI_PERIOD) -> np.ndarray:
    """Wilder RSI on the 0-100 scale, matching talib.RSI (first value at row `period`)."""
    return rsi_from_averages(*wilder_gain_loss(close, period))


def macd_averages(
    close: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fast EMA, slow EMA, signal EMA of their difference): the smoothers MACD is made of,
    i.e. the state a streaming engine carries.

    TA-Lib starts both EMAs at row slow-1: the slow one seeded with the mean of
    rows 0..slow-1, the fast one with the mean of only its last `fast` rows. The
    signal EMA is seeded on the first `signal` line values.
    """
    start = slow - 1
    fast_ema = _smooth(close, ema_alpha(fast), fast, start)
    slow_ema = _smooth(close, ema_alpha(slow), slow, start)
    sig = _smooth(fast_ema - slow_ema, ema_alpha(signal), signal, start + signal - 1)
    return fast_ema, slow_ema, sig


def macd(
    close: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(line, signal, hist) matching talib.MACD, raw price units; all three outputs begin at
    row slow + signal - 2."""
    fast_ema, slow_ema, sig = macd_averages(close, fast, slow, signal)
    line = fast_ema - slow_ema
    line[: slow + signal - 2] = np.nan
    return line, sig, line - sig


def bbands(
    close: np.ndarray, period: int = BB_PERIOD, nbdev: float = BB_NBDEV
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(upper, middle, lower) matching talib.BBANDS with an SMA middle band (along the last
    axis: the streaming engine passes every symbol's last `period` closes at once)."""
    middle, std = _window_mean_std(close, period)
    return middle + nbdev * std, middle, middle - nbdev * std


def atr(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = ATR_PERIOD
) -> np.ndarray:
    """Wilder ATR matching talib.ATR: seeded with the mean true range of rows 1..period."""
    true_range = np.full(len(close), np.nan)
    prev_close = close[:-1]
    true_range[1:] = np.maximum(high[1:], prev_close) - np.minimum(low[1:], prev_close)
    return _smooth(true_range, wilder_alpha(period), period, period)


def obv(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """Cumulative on-balance volume matching talib.OBV (starts at volume[0]).

    Infinite memory, so it is exposed for validation only; features use its
    windowed change (`obv_slope_*`).
    """
    signed = np.empty(len(close))
    signed[:1] = volume[:1]
    signed[1:] = np.sign(np.diff(close)) * volume[1:]
    return np.cumsum(signed)


# -------------------------------------------------------------------- features


def feature_matrix(
    open: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    ts_ns: np.ndarray,
) -> np.ndarray:
    """Compute every feature in FEATURE_NAMES for 1-minute bars.

    Inputs are equal-length float64 arrays (ts_ns: int64 UTC bar-close times,
    strictly increasing, regular session only). Returns float64 of shape
    (n, len(FEATURE_NAMES)), column-major so each feature is contiguous; rows
    < WARMUP_BARS are NaN.
    """
    n = len(close)
    out = np.full((len(FEATURE_NAMES), n), np.nan)
    col = dict(zip(FEATURE_NAMES, out, strict=True))
    local_ns = ny_local_ns(ts_ns)
    with np.errstate(divide="ignore", invalid="ignore"):
        _momentum(col, high, low, close)
        _trend(col, close)
        _returns_volatility(col, open, high, low, close)
        _volume(col, high, low, close, volume, local_ns // _NS_PER_DAY)
        calendar_columns(col, local_ns)
    out[:, :WARMUP_BARS] = np.nan
    return out.T


def compute_features(bars: pd.DataFrame) -> pd.DataFrame:
    """Bars frame (tz-aware UTC bar-close index) -> feature frame, same index."""
    index = bars.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise ValueError("bars must be indexed by a tz-aware DatetimeIndex")
    arrays = [bars[c].to_numpy(np.float64) for c in ("open", "high", "low", "close", "volume")]
    values = feature_matrix(*arrays, ts_ns=index.as_unit("ns").asi8)
    return pd.DataFrame(values, index=index, columns=list(FEATURE_NAMES))


def _momentum(
    col: dict[str, np.ndarray], high: np.ndarray, low: np.ndarray, close: np.ndarray
) -> None:
    """Oscillators: RSI (Wilder and multi-timeframe Cutler), MACD, Bollinger, ATR."""
    col[f"rsi_{RSI_PERIOD}"][:] = rsi(close) / 100.0
    delta = np.diff(close)
    for w in RSI_SMA_WINDOWS:
        col[f"rsi_{w}"][1:] = _rolling_sum(np.maximum(delta, 0.0), w) / _rolling_sum(
            np.abs(delta), w
        )
    line, sig, hist = macd(close, *MACD_PERIODS)
    col["macd"][:] = line / close
    col["macd_signal"][:] = sig / close
    col["macd_hist"][:] = hist / close
    upper, middle, lower = bbands(close)
    col["bb_pctb"][:] = (close - lower) / (upper - lower)
    col["bb_width"][:] = (upper - lower) / middle
    col[f"atr_{ATR_PERIOD}"][:] = atr(high, low, close) / close


def _trend(col: dict[str, np.ndarray], close: np.ndarray) -> None:
    """Price relative to exponential and simple moving averages."""
    emas = {p: ema(close, p) for p in EMA_PERIODS}
    for p, values in emas.items():
        col[f"close_ema_{p}"][:] = close / values - 1.0
    fast, slow = EMA_PERIODS[:2]
    col[f"ema_{fast}_{slow}"][:] = emas[fast] / emas[slow] - 1.0
    for p in SMA_PERIODS:
        col[f"close_sma_{p}"][:] = close / (_rolling_sum(close, p) / p) - 1.0


def _returns_volatility(
    col: dict[str, np.ndarray],
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
) -> None:
    """Log returns, realised volatility, bar shape, ranges and return z-scores."""
    log_close = np.log(close)
    for k in RETURN_LAGS:
        col[f"ret_{k}"][:] = _lag_diff(log_close, k)
    squared = np.square(np.diff(log_close))
    for w in RV_WINDOWS:
        col[f"rv_{w}"][1:] = np.sqrt(_rolling_sum(squared, w) / w)
    short, long_ = RV_WINDOWS[0], RV_WINDOWS[-1]
    rv_long = col[f"rv_{long_}"]
    col[f"rv_ratio_{short}_{long_}"][:] = col[f"rv_{short}"] / rv_long
    for k in ZSCORE_LAGS:
        col[f"ret_z_{k}"][:] = col[f"ret_{k}"] / (rv_long * np.sqrt(k))
    col["hl_range"][:] = (high - low) / close
    col["bar_body"][:] = close / open_ - 1.0
    top = _rolling_max(high, RANGE_WINDOW)
    bottom = _rolling_min(low, RANGE_WINDOW)
    col[f"range_{RANGE_WINDOW}"][:] = (top - bottom) / close
    col[f"stoch_{RANGE_WINDOW}"][:] = (close - bottom) / (top - bottom)


def _volume(
    col: dict[str, np.ndarray],
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    day: np.ndarray,
) -> None:
    """Volume ratios, OBV slope (signed-volume imbalance) and session VWAP deviation.

    `day` is the New York date of each bar (the VWAP session key).
    """
    volume_sums = {w: _rolling_sum(volume, w) for w in {*VOLUME_WINDOWS, *OBV_WINDOWS}}
    for w in VOLUME_WINDOWS:
        col[f"vol_ratio_{w}"][:] = volume / (volume_sums[w] / w)
    signed = np.sign(np.diff(close)) * volume[1:]
    for w in OBV_WINDOWS:
        # OBV change over w bars / total volume of those same bars, in [-1, 1].
        col[f"obv_slope_{w}"][1:] = _rolling_sum(signed, w) / volume_sums[w][1:]
    pv, v = _session_cumsum(np.stack([typical_price(high, low, close) * volume, volume]), day)
    col["vwap_dev"][:] = close / (pv / v) - 1.0


def typical_price(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """(high + low + close) / 3: the price the session VWAP weights by volume."""
    return (high + low + close) / 3.0


def _session_cumsum(x: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Cumulative sums along the last axis of x, restarting at each new `day`.

    Done on a (sessions x max bars per session) grid so each session is summed
    on its own: the result depends only on that session's bars, which keeps it
    exact under truncation and in a live window containing the whole session.
    """
    n = len(day)
    if n == 0:
        return np.empty_like(x)
    is_start = np.r_[True, day[1:] != day[:-1]]
    session = np.cumsum(is_start) - 1
    position = np.arange(n) - np.flatnonzero(is_start)[session]
    grid = np.zeros((len(x), session[-1] + 1, position.max() + 1))
    grid[:, session, position] = x
    return np.cumsum(grid, axis=2)[:, session, position]


CALENDAR_NAMES = ("tod", "tod_sin", "tod_cos", "dow")


def calendar_columns(col: dict[str, np.ndarray], local: np.ndarray) -> None:
    """Time of day (minutes since the 09:30 New York open, scaled and cyclic) and weekday,
    written into ``col[name]`` for CALENDAR_NAMES (the streaming engine passes one close).

    `local` is New York wall-clock ns from `ny_local_ns`.
    """
    minutes = (local % _NS_PER_DAY) / _NS_PER_MINUTE - _SESSION_OPEN_MINUTE
    frac = minutes / _SESSION_MINUTES
    col["tod"][:] = frac
    col["tod_sin"][:] = np.sin(2.0 * np.pi * frac)
    col["tod_cos"][:] = np.cos(2.0 * np.pi * frac)
    col["dow"][:] = (local // _NS_PER_DAY + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
