"""Incremental features for live inference: the newest feature rows of a universe, advanced one
bar close at a time, equal (to rounding) to ``models.pipeline.compute_features`` over the full
history.

Why: the batch function recomputes every indicator over the whole live buffer (2,730 bars for
the zoo's spec) for every symbol at every close, milliseconds per symbol. Here each close costs
O(#features) numpy calls on (n_symbols,) or (n_symbols, window) arrays: smoothers carry their
last value, window features read the buffers' suffixes, timeframe and risk blocks keep small
rings (``models.streaming_blocks``). A symbol is seeded from its buffer with the batch
functions the first time it is seen and whenever its buffer's previous bar is not the bar its
state last saw (a gap, warm-up history arriving): that cost is paid once, not per close.

The market proxy (beta, correlation) is kept as a history of (ts, value) built close by close
from the symbols passed at each close, exactly as ``models.risk_features.market_proxy`` builds
it from the buffers (the first close takes it from the buffers themselves). A member's returns
at closes where it was not passed (a gap) are therefore not in that history, unlike in a batch
recomputation over its back-filled buffer.

Regular-session bars only (as the batch path): the New York offset is cached per UTC day, which
holds because no session bar lies near a 02:00 New York DST switch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from models.features import CALENDAR_NAMES, FEATURE_NAMES, calendar_columns, ny_local_ns
from models.pipeline import (
    COPULA_TAIL_DEP,
    GARCH_VOL,
    BarColumns,
    FeatureSpec,
    FittedFeatures,
    compute_features,
    feature_names,
    lookback_bars,
    proxy_returns,
)
from models.risk_features import align, intraday_returns
from models.streaming_blocks import (
    SUFFIX_ROWS,
    BarsSuffix,
    BaseBlock,
    BetaBlock,
    Close,
    GarchBlock,
    TimeframeBlock,
    VarBlock,
)
from models.timeframes import TF_FEATURES, session_minutes

_NS_PER_MINUTE = 60_000_000_000
_NS_PER_DAY = 86_400_000_000_000
_OPEN_MINUTE = 9 * 60 + 30
_NOT_STREAMED = -1  # a slot's last_ts before its first seed, or while its buffer is too short


class StreamingFeatures:
    """The newest feature rows of a universe, advanced one bar close at a time; equal (to
    rounding) to models.pipeline.compute_features over the full history.

    ``symbols`` is the universe (the equal-weight proxy's members); ``history`` the rows each
    ``update`` returns per symbol (what the sequence models need; a tabular model reads the
    last row). ``fitted`` None leaves the fitted columns NaN, as in the batch path; otherwise it
    must hold every symbol's fitted blocks (KeyError, as the batch path raises).
    """

    def __init__(self, spec: FeatureSpec, fitted: FittedFeatures | None, symbols: Sequence[str],
                 history: int) -> None:
        if history < 1:
            raise ValueError(f"history must be >= 1, got {history}")
        if spec.risk.market_proxy is not None and spec.risk.market_proxy not in symbols:
            raise KeyError(f"market proxy {spec.risk.market_proxy!r} is not among the symbols {sorted(symbols)}")
        self.spec, self.fitted, self.history = spec, fitted, history
        self.symbols = tuple(symbols)
        self._slot = {s: i for i, s in enumerate(self.symbols)}
        self._name_rank = np.argsort(np.argsort(self.symbols))  # slot -> position in name order
        self._names = feature_names(spec)
        self._column = {name: j for j, name in enumerate(self._names)}
        n = len(self.symbols)
        # Each symbol's last `history` rows, written twice so they are always one slice.
        self._rows = np.full((n, 2 * history, len(self._names)), np.nan)
        self._newest = np.full(n, history - 1)
        self._last_ts = np.full(n, _NOT_STREAMED, dtype=np.int64)
        self._clock = _Clock()
        self._base = BaseBlock(n)
        self._timeframes = [TimeframeBlock(n, tf) for tf in spec.timeframes]
        risk = spec.risk
        self._var = VarBlock(n, risk.window, risk.var_level) if risk.var else None
        self._beta = BetaBlock(n, risk.window) if risk.beta else None
        self._garch = (GarchBlock([fitted.garch[s] for s in self.symbols])
                       if risk.garch and fitted is not None else None)
        self._copula = (np.array([fitted.copula[s].lower_tail_dependence for s in self.symbols])
                        if risk.copula and fitted is not None else np.full(n, np.nan))
        self._proxy = _ProxyHistory(2 * lookback_bars(spec)) if risk.beta else None
        # Times each symbol's state was seeded from its buffer (the batch cost, paid once per
        # symbol unless its bars had a gap); warm-up closes computed in batch are not counted.
        self.seeds: dict[str, int] = dict.fromkeys(self.symbols, 0)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._names

    def update(self, bars: Mapping[str, BarColumns]) -> dict[str, np.ndarray]:
        """Advance the symbols in ``bars`` (symbol -> its whole buffer, oldest first, as
        BarBuffer.columns()) to their newest bar, which must be new and the same ts for all.

        Returns symbol -> (history, n_features) float64, its last ``history`` rows (NaN rows
        before its first bars), the caller's to keep.
        """
        if not bars:
            return {}
        names = list(bars)
        slots = np.array([self._slot[s] for s in names])
        ts = int(bars[names[0]][5][-1])
        if any(int(bars[s][5][-1]) != ts for s in names):
            raise ValueError("every symbol passed to update must have the same newest bar time")
        if (self._last_ts[slots] >= ts).any():
            raise ValueError("update got a bar that is not newer than the one already seen")
        now = self._clock.close(ts)
        previous = np.array([cols[5][-2] if len(cols[5]) > 1 else _NOT_STREAMED for cols in bars.values()])
        lengths = np.array([len(cols[5]) for cols in bars.values()])
        returns = self._returns(bars, now)
        if self._proxy is not None:
            self._proxy.record(bars, self.spec, ts, self._proxy_at(names, slots, returns))
        streamed = (self._last_ts[slots] == previous) & (lengths >= SUFFIX_ROWS)
        for k in np.flatnonzero(~streamed):
            self._seed(names[k], slots[k], bars[names[k]])
        if streamed.any():
            self._advance(slots[streamed], [bars[names[k]] for k in np.flatnonzero(streamed)],
                          returns[streamed], now)
        window = self._newest[slots, None] + 1 + np.arange(self.history)
        rows = self._rows[slots[:, None], window]  # one gather: a fresh (k, history, F) array
        return dict(zip(names, rows, strict=True))

    # -------------------------------------------------------------------------- one close

    def _returns(self, bars: Mapping[str, BarColumns], now: Close) -> np.ndarray:
        """Each symbol's intraday log return at this close (NaN on its session's first bar)."""
        close = np.array([cols[3][-1] for cols in bars.values()])
        prev = np.array([cols[3][-2] if len(cols[3]) > 1 else np.nan for cols in bars.values()])
        prev_day = np.array([self._clock.day(cols[5][-2]) if len(cols[5]) > 1 else _NOT_STREAMED
                             for cols in bars.values()])
        return np.where(prev_day == now.day, np.log(close) - np.log(prev), np.nan)

    def _proxy_at(self, names: list[str], slots: np.ndarray, returns: np.ndarray) -> float:
        """The market proxy's return at this close: the named ETF's, or the equal-weight mean
        of the valid returns summed in symbol-name order (market_proxy's bits)."""
        if self.spec.risk.market_proxy is not None:
            return float(returns[names.index(self.spec.risk.market_proxy)]) \
                if self.spec.risk.market_proxy in names else np.nan
        valid = np.isfinite(returns)
        if not valid.any():
            return np.nan
        ordered = returns[valid][np.argsort(self._name_rank[slots[valid]])]
        return float(np.cumsum(ordered)[-1] / valid.sum())

    def _advance(self, slots: np.ndarray, cols: list[BarColumns], returns: np.ndarray,
                 now: Close) -> None:
        suffix = BarsSuffix(*(np.stack([c[k][-SUFFIX_ROWS:] for c in cols]) for k in range(5)))
        rows = np.empty((len(slots), len(self._names)))
        new_session = self._base.day[slots] != now.day  # read before the base block moves it on
        with np.errstate(divide="ignore", invalid="ignore"):
            for name, values in self._base.advance(slots, suffix, now).items():
                rows[:, self._column[name]] = values
        calendar = {name: np.empty(1) for name in CALENDAR_NAMES}
        calendar_columns(calendar, np.array([now.local_ns]))
        for name, value in calendar.items():
            rows[:, self._column[name]] = value
        j = len(FEATURE_NAMES)
        high, low, close = suffix.high[:, -1], suffix.low[:, -1], suffix.close[:, -1]
        for block in self._timeframes:
            rows[:, j : j + len(TF_FEATURES)] = block.advance(slots, high, low, close, now)
            j += len(TF_FEATURES)
        if self._var is not None:
            rows[:, self._column["hist_var"] : self._column["hist_var"] + 2] = self._var.advance(slots, returns)
        if self._beta is not None:
            rows[:, self._column["beta_mkt"] : self._column["beta_mkt"] + 2] = self._beta.advance(
                slots, returns, self._proxy.value_at(now.ts))
        if self.spec.risk.garch:
            rows[:, self._column[GARCH_VOL]] = (np.nan if self._garch is None
                                               else self._garch.advance(slots, returns, new_session))
        if self.spec.risk.copula:
            rows[:, self._column[COPULA_TAIL_DEP]] = self._copula[slots]
        self._newest[slots] = newest = (self._newest[slots] + 1) % self.history
        self._rows[slots, newest] = rows
        self._rows[slots, newest + self.history] = rows
        self._last_ts[slots] = now.ts

    # ---------------------------------------------------------------------------- seeding

    def _seed(self, symbol: str, slot: int, cols: BarColumns) -> None:
        """Rows and state of one symbol from its buffer, with the batch functions."""
        proxy = self._proxy.series() if self._proxy is not None else None
        rows = compute_features({symbol: cols}, self.spec, self.fitted, proxy=proxy,
                                last_rows=self.history)[symbol][-self.history :]
        self._rows[slot] = np.nan
        self._rows[slot, self.history - len(rows) : self.history] = rows
        self._rows[slot, 2 * self.history - len(rows) :] = rows
        self._newest[slot] = self.history - 1
        if len(cols[5]) < SUFFIX_ROWS:
            self._last_ts[slot] = _NOT_STREAMED  # still warming up: computed in batch again
            return
        self.seeds[symbol] += 1
        _, _, _, close, _, ts = cols
        local = ny_local_ns(ts)
        day = local // _NS_PER_DAY
        self._base.seed(slot, cols, day)
        if self._timeframes:
            minute = (local % _NS_PER_DAY) // _NS_PER_MINUTE - _OPEN_MINUTE
            length = session_minutes(day)
            for block in self._timeframes:
                block.seed(slot, cols, day, minute, length)
        returns = intraday_returns(close, ts)
        if self._var is not None:
            at = self._column["hist_var"]
            self._var.seed(slot, returns, rows[-1, at : at + 2])
        if self._beta is not None:
            self._beta.seed(slot, returns, align(*proxy, ts))
        if self._garch is not None:
            self._garch.seed(slot, self.fitted.garch[symbol], returns, ts)
        self._last_ts[slot] = ts[-1]


class _Clock:
    """New York day, minute and session length of bar-close times, converted once per UTC
    day (a pandas tz conversion per bar would cost more than the features)."""

    def __init__(self) -> None:
        self._offset: dict[int, int] = {}
        self._length: dict[int, int] = {}

    def local(self, ts: int) -> int:
        utc_day = int(ts) // _NS_PER_DAY
        if utc_day not in self._offset:
            self._offset[utc_day] = int(ny_local_ns(np.array([ts]))[0]) - int(ts)
        return int(ts) + self._offset[utc_day]

    def day(self, ts: int) -> int:
        return self.local(ts) // _NS_PER_DAY

    def close(self, ts: int) -> Close:
        local = self.local(ts)
        day = local // _NS_PER_DAY
        if day not in self._length:
            self._length[day] = int(session_minutes(np.array([day]))[0])
        minute = (local % _NS_PER_DAY) // _NS_PER_MINUTE - _OPEN_MINUTE
        return Close(ts=ts, day=day, minute=minute, session_length=self._length[day], local_ns=local)


class _ProxyHistory:
    """(ts, proxy return) of recent closes, oldest first, in arrays of twice the capacity so an
    append is O(1) amortised and the history is always one slice."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ts = np.empty(2 * capacity, dtype=np.int64)
        self._values = np.empty(2 * capacity)
        self._end = 0

    def record(self, bars: Mapping[str, BarColumns], spec: FeatureSpec, ts: int, value: float) -> None:
        """Append this close's value; the first close takes the history from the buffers."""
        if self._end == 0:
            if spec.risk.market_proxy is not None and spec.risk.market_proxy not in bars:
                raise ValueError(f"the first update must include the market proxy {spec.risk.market_proxy!r}: "
                                 "its buffer starts the proxy history")
            stamps, values = proxy_returns(bars, spec.risk)
            keep = min(len(stamps), self.capacity)
            self._ts[:keep], self._values[:keep] = stamps[-keep:], values[-keep:]
            self._end = keep
            return
        if ts <= self._ts[self._end - 1]:
            return  # a straggler's bar: the close at that time already set the proxy there
        if self._end == len(self._ts):
            keep = self.capacity - 1
            self._ts[:keep] = self._ts[self._end - keep : self._end]
            self._values[:keep] = self._values[self._end - keep : self._end]
            self._end = keep
        self._ts[self._end], self._values[self._end] = ts, value
        self._end += 1

    def series(self) -> tuple[np.ndarray, np.ndarray]:
        start = max(0, self._end - self.capacity)
        return self._ts[start : self._end], self._values[start : self._end]

    def value_at(self, ts: int) -> float:
        return float(align(*self.series(), np.array([ts]))[0])
