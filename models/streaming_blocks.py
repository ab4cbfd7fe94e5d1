"""The per-block state of the streaming feature engine (``models.streaming``), one class per
feature block, each holding arrays over the engine's symbol slots.

Every class has the same two verbs: ``seed`` a slot from its symbol's buffer with the batch
primitives (paid once), and ``advance`` the slots of one bar close, vectorised over them. The
maths of each indicator lives in the batch modules (``models.features``, ``models.timeframes``,
``models.risk_features``); what is here is only which state to carry and which suffix to read.
Pure numpy: no NautilusTrader, nothing from strategies/backtests/live.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.features import (
    ATR_PERIOD,
    BB_PERIOD,
    EMA_PERIODS,
    MACD_PERIODS,
    OBV_WINDOWS,
    RANGE_WINDOW,
    RETURN_LAGS,
    RSI_PERIOD,
    RSI_SMA_WINDOWS,
    RV_WINDOWS,
    SMA_PERIODS,
    VOLUME_WINDOWS,
    WARMUP_BARS,
    ZSCORE_LAGS,
    atr,
    bbands,
    ema,
    ema_alpha,
    macd_averages,
    rsi_from_averages,
    smooth_step,
    typical_price,
    wilder_alpha,
    wilder_gain_loss,
)
from models.risk_features import (
    GARCH_SCALE,
    GarchParams,
    garch_variance,
    garch_variance_step,
    pair_statistics,
    tail_losses,
)
from models.timeframes import TF_FEATURES, WINDOWS, bar_features, bucket_of, timeframe_bars

# Rows of a buffer the base block reads at a close: rv_390 needs 391 closes. A symbol with
# fewer rows is inside the batch path's warm-up (all base columns NaN) and is not streamed.
SUFFIX_ROWS: int = WARMUP_BARS + 1


@dataclass(frozen=True)
class Close:
    """What every symbol of one bar close shares: its New York day, minute of the session
    (1..390), the session's length in minutes and the calendar columns' inputs."""

    ts: int
    day: int
    minute: int
    session_length: int
    local_ns: int


@dataclass(frozen=True)
class BarsSuffix:
    """The newest rows of the streamed symbols' buffers, stacked: (k, SUFFIX_ROWS) arrays."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


class BaseBlock:
    """The 42 base features. Exponential smoothers (Wilder RSI gain/loss, MACD, ATR, EMAs) and
    the session VWAP sums are carried per symbol; every window feature is recomputed from the
    buffer suffix, whose values then differ from the batch path's block-wise rolling sums only
    by rounding (~1e-16 relative), the same as a live buffer does."""

    def __init__(self, n_slots: int) -> None:
        def state() -> np.ndarray:
            return np.full(n_slots, np.nan)

        self.gain, self.loss = state(), state()
        self.macd_fast, self.macd_slow, self.macd_signal = state(), state(), state()
        self.atr = state()
        self.ema = {p: state() for p in EMA_PERIODS}
        self.pv, self.v = state(), state()
        self.day = np.full(n_slots, -1, dtype=np.int64)

    def seed(self, slot: int, cols: tuple[np.ndarray, ...], day: np.ndarray) -> None:
        _, high, low, close, volume, _ = cols
        gain, loss = wilder_gain_loss(close, RSI_PERIOD)
        self.gain[slot], self.loss[slot] = gain[-1], loss[-1]
        fast, slow, signal = macd_averages(close, *MACD_PERIODS)
        self.macd_fast[slot], self.macd_slow[slot], self.macd_signal[slot] = fast[-1], slow[-1], signal[-1]
        self.atr[slot] = atr(high, low, close, ATR_PERIOD)[-1]
        for p in EMA_PERIODS:
            self.ema[p][slot] = ema(close, p)[-1]
        session = day == day[-1]  # the current session: the buffer holds all of it
        self.pv[slot] = np.cumsum(typical_price(high, low, close)[session] * volume[session])[-1]
        self.v[slot] = np.cumsum(volume[session])[-1]
        self.day[slot] = day[-1]

    def advance(self, slots: np.ndarray, bars: BarsSuffix, now: Close) -> dict[str, np.ndarray]:
        """The base columns of the newest row of ``slots`` (name -> (k,) values)."""
        col: dict[str, np.ndarray] = {}
        c_all = bars.close
        c, prev = c_all[:, -1], c_all[:, -2]
        o, h, low, v = bars.open[:, -1], bars.high[:, -1], bars.low[:, -1], bars.volume[:, -1]
        # Momentum: Wilder RSI carried, Cutler RSI from the suffix, MACD, Bollinger, ATR.
        delta = c - prev
        rsi_a = wilder_alpha(RSI_PERIOD)
        self.gain[slots] = gain = smooth_step(np.maximum(delta, 0.0), self.gain[slots], rsi_a)
        self.loss[slots] = loss = smooth_step(np.maximum(-delta, 0.0), self.loss[slots], rsi_a)
        col[f"rsi_{RSI_PERIOD}"] = rsi_from_averages(gain, loss) / 100.0
        deltas = np.diff(c_all[:, -(max(RSI_SMA_WINDOWS) + 1) :], axis=1)
        for w in RSI_SMA_WINDOWS:
            recent = deltas[:, -w:]
            col[f"rsi_{w}"] = np.maximum(recent, 0.0).sum(axis=1) / np.abs(recent).sum(axis=1)
        fast_p, slow_p, signal_p = MACD_PERIODS
        self.macd_fast[slots] = fast = smooth_step(c, self.macd_fast[slots], ema_alpha(fast_p))
        self.macd_slow[slots] = slow = smooth_step(c, self.macd_slow[slots], ema_alpha(slow_p))
        line = fast - slow
        self.macd_signal[slots] = sig = smooth_step(line, self.macd_signal[slots], ema_alpha(signal_p))
        col["macd"], col["macd_signal"], col["macd_hist"] = line / c, sig / c, (line - sig) / c
        upper, middle, lower = (band[:, -1] for band in bbands(c_all[:, -BB_PERIOD:]))
        col["bb_pctb"] = (c - lower) / (upper - lower)
        col["bb_width"] = (upper - lower) / middle
        true_range = np.maximum(h, prev) - np.minimum(low, prev)
        self.atr[slots] = atr_now = smooth_step(true_range, self.atr[slots], wilder_alpha(ATR_PERIOD))
        col[f"atr_{ATR_PERIOD}"] = atr_now / c
        # Trend.
        emas = {}
        for p in EMA_PERIODS:
            self.ema[p][slots] = emas[p] = smooth_step(c, self.ema[p][slots], ema_alpha(p))
            col[f"close_ema_{p}"] = c / emas[p] - 1.0
        col[f"ema_{EMA_PERIODS[0]}_{EMA_PERIODS[1]}"] = emas[EMA_PERIODS[0]] / emas[EMA_PERIODS[1]] - 1.0
        for p in SMA_PERIODS:
            col[f"close_sma_{p}"] = c / (c_all[:, -p:].sum(axis=1) / p) - 1.0
        # Returns and volatility.
        log_close = np.log(c_all)
        for k in RETURN_LAGS:
            col[f"ret_{k}"] = log_close[:, -1] - log_close[:, -1 - k]
        squared = np.square(np.diff(log_close, axis=1))
        for w in RV_WINDOWS:
            col[f"rv_{w}"] = np.sqrt(squared[:, -w:].sum(axis=1) / w)
        short, long_ = RV_WINDOWS[0], RV_WINDOWS[-1]
        col[f"rv_ratio_{short}_{long_}"] = col[f"rv_{short}"] / col[f"rv_{long_}"]
        for k in ZSCORE_LAGS:
            col[f"ret_z_{k}"] = col[f"ret_{k}"] / (col[f"rv_{long_}"] * np.sqrt(k))
        col["hl_range"] = (h - low) / c
        col["bar_body"] = c / o - 1.0
        top = bars.high[:, -RANGE_WINDOW:].max(axis=1)
        bottom = bars.low[:, -RANGE_WINDOW:].min(axis=1)
        col[f"range_{RANGE_WINDOW}"] = (top - bottom) / c
        col[f"stoch_{RANGE_WINDOW}"] = (c - bottom) / (top - bottom)
        # Volume: ratios, OBV slopes, the session VWAP from carried sums.
        volume_sums = {w: bars.volume[:, -w:].sum(axis=1) for w in {*VOLUME_WINDOWS, *OBV_WINDOWS}}
        for w in VOLUME_WINDOWS:
            col[f"vol_ratio_{w}"] = v / (volume_sums[w] / w)
        longest = max(OBV_WINDOWS)
        signed = np.sign(np.diff(c_all[:, -(longest + 1) :], axis=1)) * bars.volume[:, -longest:]
        for w in OBV_WINDOWS:
            col[f"obv_slope_{w}"] = signed[:, -w:].sum(axis=1) / volume_sums[w]
        new_session = self.day[slots] != now.day
        pv_now = typical_price(h, low, c) * v
        self.pv[slots] = pv = np.where(new_session, pv_now, self.pv[slots] + pv_now)
        self.v[slots] = vv = np.where(new_session, v, self.v[slots] + v)
        self.day[slots] = now.day
        col["vwap_dev"] = c / (pv / vv) - 1.0
        return col


class TimeframeBlock:
    """One timeframe's five columns. Per symbol: the open TF bar (its key, high, low, close,
    and whether it already completed) and a ring of the last ``window + 1`` completed TF bars,
    oldest first (NaN before the first ones). The values change only on the rows where a TF
    bar completes, so only those symbols are recomputed, with ``bar_features`` over their
    rings: the same window sums in the same order as the batch path, hence the same bits."""

    def __init__(self, n_slots: int, tf: str) -> None:
        self.tf, self.window = tf, WINDOWS[tf]
        self.day = np.full(n_slots, -1, dtype=np.int64)
        self.bucket = np.full(n_slots, -1, dtype=np.int64)
        self.done = np.ones(n_slots, dtype=bool)
        self.high, self.low, self.close = (np.full(n_slots, np.nan) for _ in range(3))
        self.rings = np.full((3, n_slots, self.window + 1), np.nan)  # high, low, close
        self.values = np.full((n_slots, len(TF_FEATURES)), np.nan)

    def seed(self, slot: int, cols: tuple[np.ndarray, ...], day: np.ndarray, minute: np.ndarray,
             length: np.ndarray) -> None:
        _, high, low, close, _, _ = cols
        bars = timeframe_bars(high, low, close, day, minute, length, self.tf)
        complete = np.flatnonzero(bars.done < len(close))[-(self.window + 1) :]
        self.rings[:, slot] = np.nan
        for ring, series in zip(self.rings, (bars.high, bars.low, bars.close), strict=True):
            ring[slot, self.window + 1 - len(complete) :] = series[complete]
        self.day[slot], self.bucket[slot] = bars.day[-1], bars.bucket[-1]
        self.high[slot], self.low[slot], self.close[slot] = bars.high[-1], bars.low[-1], bars.close[-1]
        self.done[slot] = bars.done[-1] < len(close)
        self._recompute(np.array([slot]))

    def advance(self, slots: np.ndarray, h: np.ndarray, low: np.ndarray, c: np.ndarray,
                now: Close) -> np.ndarray:
        """(k, 5) values at this close; the completion rule is ``timeframe_bars``'s: the row
        reaching the TF bar's end, or the next TF bar's first row when that minute is missing."""
        bucket, end = (int(x) for x in bucket_of(np.array(now.minute), np.array(now.session_length), self.tf))
        new_bar = (self.day[slots] != now.day) | (self.bucket[slots] != bucket)
        unfinished = slots[new_bar & ~self.done[slots]]
        self._push(unfinished)
        fresh, same = slots[new_bar], slots[~new_bar]
        self.day[fresh], self.bucket[fresh], self.done[fresh] = now.day, bucket, False
        self.high[fresh], self.low[fresh], self.close[fresh] = h[new_bar], low[new_bar], c[new_bar]
        self.high[same] = np.maximum(self.high[same], h[~new_bar])
        self.low[same] = np.minimum(self.low[same], low[~new_bar])
        self.close[same] = c[~new_bar]
        reached = slots[~self.done[slots]] if now.minute >= end else slots[:0]
        self._push(reached)
        self.done[reached] = True
        self._recompute(np.union1d(unfinished, reached))
        return self.values[slots]

    def _push(self, slots: np.ndarray) -> None:
        for ring, bar in zip(self.rings, (self.high, self.low, self.close), strict=True):
            ring[slots, :-1] = ring[slots, 1:]
            ring[slots, -1] = bar[slots]

    def _recompute(self, slots: np.ndarray) -> None:
        if len(slots):
            with np.errstate(divide="ignore", invalid="ignore"):
                self.values[slots] = bar_features(*self.rings[:, slots], self.window)[:, -1]


class VarBlock:
    """Historical VaR/CVaR over the last ``window`` valid returns: a ring per symbol (the
    order inside it does not matter to ``tail_losses``); a row without a return (a session's
    first bar) carries the last value."""

    def __init__(self, n_slots: int, window: int, level: float) -> None:
        self.window, self.level = window, level
        self.ring = np.full((n_slots, window), np.nan)
        self.count = np.zeros(n_slots, dtype=np.int64)
        self.values = np.full((n_slots, 2), np.nan)

    def seed(self, slot: int, returns: np.ndarray, last_row: np.ndarray) -> None:
        valid = returns[np.isfinite(returns)][-self.window :]
        self.ring[slot] = np.nan
        self.ring[slot, : len(valid)] = valid
        self.count[slot] = len(valid)
        self.values[slot] = last_row

    def advance(self, slots: np.ndarray, r: np.ndarray) -> np.ndarray:
        with_return = slots[np.isfinite(r)]
        self.ring[with_return, self.count[with_return] % self.window] = r[np.isfinite(r)]
        self.count[with_return] += 1
        ready = with_return[self.count[with_return] >= self.window]
        if len(ready):
            var, cvar = tail_losses(self.ring[ready], self.level)
            self.values[ready, 0], self.values[ready, 1] = var, cvar
        return self.values[slots]


class BetaBlock:
    """Beta and correlation to the market proxy over the last ``window`` jointly valid
    (proxy, return) pairs strictly before the row: a ring of pairs per symbol, read before this
    close's pair is added (its proxy value needs every symbol's bar at this close)."""

    def __init__(self, n_slots: int, window: int) -> None:
        self.window = window
        self.rings = np.full((2, n_slots, window), np.nan)  # proxy, return
        self.count = np.zeros(n_slots, dtype=np.int64)

    def seed(self, slot: int, returns: np.ndarray, proxy: np.ndarray) -> None:
        ok = np.isfinite(returns) & np.isfinite(proxy)
        pairs = (proxy[ok][-self.window :], returns[ok][-self.window :])
        self.rings[:, slot] = np.nan
        for ring, values in zip(self.rings, pairs, strict=True):
            ring[slot, : len(values)] = values
        self.count[slot] = len(pairs[0])

    def advance(self, slots: np.ndarray, r: np.ndarray, proxy: float) -> np.ndarray:
        out = np.full((len(slots), 2), np.nan)
        ready = self.count[slots] >= self.window
        if ready.any():
            x, y = self.rings[0, slots[ready]], self.rings[1, slots[ready]]
            out[ready] = np.column_stack(pair_statistics(
                x.sum(axis=1), y.sum(axis=1), (x * x).sum(axis=1), (y * y).sum(axis=1),
                (x * y).sum(axis=1), self.window))
        paired = np.isfinite(r) & np.isfinite(proxy)
        add = slots[paired]
        at = self.count[add] % self.window
        self.rings[0, add, at], self.rings[1, add, at] = proxy, r[paired]
        self.count[add] += 1
        return out


class GarchBlock:
    """The GARCH(1,1) variance recursion carried per symbol with its fitted parameters,
    restarted at ``seed_var`` on a session's first bar (as ``garch_volatility``)."""

    def __init__(self, params: list[GarchParams]) -> None:
        self.omega, self.alpha, self.beta, self.seed_var = (
            np.array([getattr(p, f) for p in params]) for f in ("omega", "alpha", "beta", "seed_var"))
        self.s2 = np.full(len(params), np.nan)

    def seed(self, slot: int, params: GarchParams, returns: np.ndarray, ts: np.ndarray) -> None:
        self.s2[slot] = garch_variance(params, returns, ts)[-1]

    def advance(self, slots: np.ndarray, r: np.ndarray, new_session: np.ndarray) -> np.ndarray:
        scaled = np.where(np.isfinite(r), r, 0.0) * GARCH_SCALE
        step = garch_variance_step(self.omega[slots], self.alpha[slots], self.beta[slots], scaled,
                                   self.s2[slots])
        self.s2[slots] = s2 = np.where(new_session, self.seed_var[slots], step)
        return np.sqrt(s2) / GARCH_SCALE
