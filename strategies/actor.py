"""SignalActor: live-mode inference, the streaming twin of the walk-forward batch path.

Every bar is appended to its instrument's rolling buffer and joins the pending bar close
(``strategies.close_batch``); when the close is complete (or a newer bar or the ``close_wait_ms``
alert ends it) the actor advances the streaming feature engine (``models.streaming``: the batch feature
function's rows, one close at a time; it seeds each symbol from its buffer's last
``lookback_bars`` bars, long enough that the last row equals the full-history row, see
``models.pipeline.lookback_bars``) with the fold's fitted feature parameters and the market
proxy from its own buffers, runs the
SAME fitted models once over all the close's last rows and publishes one MLSignal per symbol,
which the EnsembleStrategy consumes exactly as it consumes replayed signals. Parity with the batch path is proven by
``tests/strategies/test_actor_parity.py`` (and ``test_actor_parity_blocks.py``, every block on).
"""

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
from msgspec import Meta
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.data import Bar, BarType, DataType
from nautilus_trader.model.identifiers import InstrumentId

from catalog.instruments import BAR_SPEC
from catalog.sessions import sessions_ending
from models.dataset import Panel
from models.features import LOOKBACK_BARS, WARMUP_BARS
from models.horizons import HorizonModels
from models.outlook import (
    DEFAULT_HORIZON,
    DEFAULT_VOLATILITY_FEATURE,
    Outlook,
    OutlookRule,
    outlook,
)
from models.pipeline import FittedFeatures, feature_names, load_fitted, lookback_bars
from models.stacking import StackModel, load_saved_model
from models.streaming import StreamingFeatures
from models.zoo import SignalModel
from strategies.close_batch import PendingClose
from strategies.settings import StrategySettings
from strategies.signals import MLSignal

SESSION_BARS = 390  # 1-minute bars of a full regular session
_STRATEGY_DEFAULTS = StrategySettings()


class SignalActorConfig(ActorConfig, frozen=True, kw_only=True):
    instrument_ids: list[str]
    model_dirs: dict[str, str]  # model name -> directory written by SignalModel.save
    lookback_bars: int = LOOKBACK_BARS
    # Live: ask the data client for the bars of this many sessions before ``warmup_as_of``
    # (an ISO time; None = the clock's now) at start, so signals flow from the first live bar.
    warmup_sessions: int = 0
    warmup_as_of: str | None = None
    # The outlook every signal carries (models.outlook): the strategy's ensemble and entry rule
    # (weights None: every model weighs 1), the feature read as forecast volatility, the
    # trading horizon (bars) and the horizon models (a HorizonModels.save directory, or none).
    weights: dict[str, float] | None = None
    entry_threshold: float = _STRATEGY_DEFAULTS.entry_threshold
    allow_short: bool = _STRATEGY_DEFAULTS.allow_short
    volatility_feature: str = DEFAULT_VOLATILITY_FEATURE
    horizon: int = DEFAULT_HORIZON
    horizons_dir: str | None = None
    # The symbols whose signals are published (the week's universe screen); None: every one.
    # The others' bars still feed the features (proxy, rolling windows).
    traded: list[str] | None = None
    # How long after the first bar of a close the actor waits for the others before it
    # predicts the ones it has: Polygon sends no minute aggregate for a symbol without trades.
    close_wait_ms: Annotated[int, Meta(ge=1, le=60_000)] = 1_000


class BarBuffer:
    """Fixed-capacity OHLCV + timestamp history of one instrument, oldest first.

    Backed by arrays of twice the capacity so an append is O(1) and the newest ``capacity``
    rows are always one contiguous slice; when the arrays fill up, the newest rows are moved
    to the front (amortised O(1) per bar). Bars must arrive in ``ts_event`` order: a bar not
    newer than the newest one held (a duplicate, or a late bar) is ignored.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._data = np.empty((2 * capacity, 5), dtype=np.float64)
        self._ts = np.empty(2 * capacity, dtype=np.int64)
        self._start = 0
        self._end = 0

    def append(self, bar: Bar) -> bool:
        """Store ``bar``; False (and nothing stored) if it is not newer than the newest bar."""
        if self._end > self._start and bar.ts_event <= self._ts[self._end - 1]:
            return False  # a bar we already have (e.g. warm-up overlapping the first live bar)
        if self._end == len(self._ts):  # compact: keep the newest capacity-1 rows
            keep = self.capacity - 1
            self._data[:keep] = self._data[self._end - keep : self._end]
            self._ts[:keep] = self._ts[self._end - keep : self._end]
            self._start, self._end = 0, keep
        self._data[self._end] = (
            bar.open.as_double(),
            bar.high.as_double(),
            bar.low.as_double(),
            bar.close.as_double(),
            bar.volume.as_double(),
        )
        self._ts[self._end] = bar.ts_event
        self._end += 1
        self._start = max(self._start, self._end - self.capacity)
        return True

    def __len__(self) -> int:
        return self._end - self._start

    @property
    def last_ts(self) -> int | None:
        """``ts_event`` of the newest bar held (None when empty)."""
        return int(self._ts[self._end - 1]) if self._end > self._start else None

    def columns(self) -> tuple[np.ndarray, ...]:
        """(open, high, low, close, volume, ts_event) of the held bars, oldest first (views)."""
        block = self._data[self._start : self._end]
        return (
            block[:, 0],
            block[:, 1],
            block[:, 2],
            block[:, 3],
            block[:, 4],
            self._ts[self._start : self._end],
        )


class SignalActor(Actor):
    def __init__(self, config: SignalActorConfig) -> None:
        super().__init__(config)
        if not 1 <= config.close_wait_ms <= 60_000:
            raise ValueError(f"close_wait_ms must be in [1, 60000], got {config.close_wait_ms}")
        self.instrument_ids = [InstrumentId.from_str(i) for i in config.instrument_ids]
        # Signals of one close go out in symbol order.
        self._order = {iid: k for k, iid in enumerate(sorted(self.instrument_ids, key=lambda i: i.symbol.value))}
        self.models: dict[str, SignalModel] = {}
        self.stacks: dict[str, StackModel] = {}  # meta-learners over the models' probabilities
        self.buffers = {iid: BarBuffer(config.lookback_bars) for iid in self.instrument_ids}
        self.last_features: dict[InstrumentId, np.ndarray] = {}
        self.features = FittedFeatures()
        self._feature_names: tuple[str, ...] = ()
        self._streaming: StreamingFeatures | None = None  # built at start, from the saved fits
        self._model_names = ""
        self._history = 1
        self._min_bars = 0
        self._signalled_ts: dict[InstrumentId, int] = {}
        self._traded = None if config.traded is None else frozenset(config.traded)
        self._close = PendingClose()
        self._close_alert = f"{self.id}-close-wait"
        # Instruments whose warm-up history has not arrived yet, and the live bars held until
        # it does (a live bar appended first would make every history bar look late).
        self._warming: set[InstrumentId] = set()
        self._held: dict[InstrumentId, list[Bar]] = {}

    def on_start(self) -> None:
        if not self.config.model_dirs:
            raise ValueError("SignalActor needs at least one model in model_dirs")
        loaded = {name: load_saved_model(Path(path)) for name, path in self.config.model_dirs.items()}
        self.models = {n: m for n, m in loaded.items() if not isinstance(m, StackModel)}
        self.stacks = {n: m for n, m in loaded.items() if isinstance(m, StackModel)}
        for name, stack in self.stacks.items():
            missing = [b for b in stack.feature_names if b not in self.models]
            if missing:
                raise ValueError(f"meta-learner {name!r} combines {list(stack.feature_names)}; "
                                 f"model_dirs lacks {missing}")
        for model in self.models.values():
            # One row per bar: fanning a single-row prediction out to threads costs far more
            # than it saves (10-700 ms instead of 0.05-0.3 ms per model on a busy 2-core box).
            # A row's trees sum the same on any thread count; the networks stay within float32
            # rounding (the parity test covers every kind).
            model.set_threads(1)
        self._model_names = ",".join([*self.models, *self.stacks])
        self._load_features()
        self._horizon_models = HorizonModels.load(Path(self.config.horizons_dir)) if self.config.horizons_dir else None
        self._rule = OutlookRule(
            weights=self.config.weights or dict.fromkeys([*self.models, *self.stacks], 1.0),
            entry_threshold=self.config.entry_threshold, allow_short=self.config.allow_short,
            volatility_feature=self.config.volatility_feature, horizon=self.config.horizon)
        self._volatility_column = self._rule.volatility_column(self._feature_names)
        self._horizons = self._horizon_models.horizons if self._horizon_models else ()
        self._history = max(m.history_bars for m in self.models.values())
        # The first row with finite features is WARMUP_BARS; a model needs `history` of them.
        self._min_bars = WARMUP_BARS + self._history
        if self.config.lookback_bars < self._min_bars:
            raise ValueError(
                f"lookback_bars={self.config.lookback_bars} is below the {self._min_bars} bars "
                f"the features (warm-up {WARMUP_BARS}) and models (history {self._history}) "
                "need; no signal could ever be published"
            )
        self._streaming = StreamingFeatures(self.features.spec, self.features,
                                            [iid.symbol.value for iid in self.instrument_ids], self._history)
        for iid in self.instrument_ids:
            self.subscribe_bars(BarType.from_str(f"{iid}-{BAR_SPEC}"))
        if self.config.warmup_sessions > 0:
            self._request_warmup()

    def _load_features(self) -> None:
        """The feature spec and fitted parameters saved with the models (one fold's: they must
        agree), and buffers long enough for them."""
        fitted = {name: load_fitted(Path(path)) for name, path in self.config.model_dirs.items()}
        first = next(iter(fitted.values()))
        if any(f != first for f in fitted.values()):
            raise ValueError(f"the models {sorted(fitted)} were saved with different feature fits "
                             "(different folds or runs); load models of one fold")
        symbols = {iid.symbol.value for iid in self.instrument_ids}
        risk = first.spec.risk
        if risk.beta and risk.market_proxy is None and symbols != set(first.universe):
            raise ValueError(f"the market proxy is the equal-weight mean of the training universe "
                             f"{sorted(first.universe)}; this actor trades {sorted(symbols)}")
        if risk.market_proxy is not None and risk.beta and risk.market_proxy not in symbols:
            raise ValueError(f"the market proxy {risk.market_proxy} must be among the instruments")
        for block, params in (("garch", first.garch), ("copula", first.copula)):
            if getattr(risk, block) and not symbols <= set(params):
                raise ValueError(f"no fitted {block} for {sorted(symbols - set(params))}")
        self.features = first
        self._feature_names = feature_names(first.spec)
        capacity = max(self.config.lookback_bars, lookback_bars(first.spec))
        if capacity > self.config.lookback_bars:
            self.buffers = {iid: BarBuffer(capacity) for iid in self.instrument_ids}

    @property
    def warming_up(self) -> bool:
        return bool(self._warming)

    def _request_warmup(self) -> None:
        as_of = pd.Timestamp(self.config.warmup_as_of) if self.config.warmup_as_of else self.clock.utc_now()
        as_of = as_of.tz_localize("UTC") if as_of.tz is None else as_of
        # At least the sessions the feature blocks' buffers hold (the daily block needs a week).
        needed = -(-max(b.capacity for b in self.buffers.values()) // SESSION_BARS)
        sessions = sessions_ending((as_of - pd.Timedelta(days=1)).date(),
                                   max(self.config.warmup_sessions, needed))
        start = sessions["open"].iloc[0].to_pydatetime()
        for iid in self.instrument_ids:
            self._warming.add(iid)
            self._held[iid] = []
            self.request_bars(
                BarType.from_str(f"{iid}-{BAR_SPEC}"), start=start,
                callback=lambda _request_id, iid=iid: self._warmed_up(iid),
            )

    def _warmed_up(self, iid: InstrumentId) -> None:
        self._warming.discard(iid)
        held = self._held.pop(iid, [])
        self.log.info(f"{iid}: warm-up holds {len(self.buffers[iid])} bars; releasing {len(held)} live bars")
        for bar in held:
            self.on_bar(bar)

    def on_historical_data(self, data) -> None:
        if isinstance(data, Bar):
            buffer = self.buffers.get(data.bar_type.instrument_id)
            if buffer is not None:
                buffer.append(data)

    def on_bar(self, bar: Bar) -> None:
        iid = bar.bar_type.instrument_id
        if iid in self._warming:
            self._held[iid].append(bar)
            return
        ts = bar.ts_event
        if self._close.ts is not None and ts > self._close.ts:
            # The next minute is here: the pending close will not complete. Predicted before
            # this bar joins its buffer, so no row of the pending close sees a later bar.
            self._flush_close()
        buffer = self.buffers[iid]
        if not buffer.append(bar) and (
            bar.ts_event != buffer.last_ts or self._signalled_ts.get(iid) == bar.ts_event
        ):
            # A late bar, or a repeat of one already signalled. A repeat of the newest bar
            # that came in as warm-up history (never signalled) still gets its signal.
            return
        if not self._close.accepts(ts):
            # A straggler: its close went out without it (or is older than the pending one).
            self._publish_close({iid: bar})
            return
        if self._close.ts is None:
            wait_ns = self.config.close_wait_ms * 1_000_000  # on the engine clock in a backtest
            self.clock.set_time_alert_ns(self._close_alert, self.clock.timestamp_ns() + wait_ns, self._close_wait_over)
        self._close.add(iid, bar)
        if len(self._close) >= len(self.instrument_ids) - len(self._warming):
            self._flush_close()

    def on_stop(self) -> None:
        self._flush_close()

    def _close_wait_over(self, _event: object) -> None:
        """A symbol sent no bar for the pending close within ``close_wait_ms``: predict the rest."""
        self._flush_close()

    def _flush_close(self) -> None:
        if self._close_alert in self.clock.timer_names:
            self.clock.cancel_timer(self._close_alert)
        bars = self._close.take()
        if bars:
            self._publish_close(bars)

    def _publish_close(self, bars: dict[InstrumentId, Bar]) -> None:
        """One MLSignal per symbol of ``bars`` (one bar time) that can be predicted, in symbol order."""
        ready = sorted((iid for iid in bars if len(self.buffers[iid]) >= self._min_bars), key=self._order.__getitem__)

        if not ready:
            return
        predicted, probabilities, view = self.predict_close(ready)
        if not predicted:
            return
        for k, iid in enumerate(predicted):
            if self._traded is not None and iid.symbol.value not in self._traded:
                # Screened out this week: predicted with the close (its bars keep the market
                # proxy and its windows whole), not published, so the strategy never enters it.
                continue
            bar = bars[iid]
            self._signalled_ts[iid] = bar.ts_event
            self.publish_data(
                DataType(MLSignal),
                MLSignal(
                    ts_event=bar.ts_event,
                    ts_init=bar.ts_init,
                    instrument_id=iid,
                    models=self._model_names,
                    probabilities=probabilities[k].copy(),
                    decision=view.decision[k],
                    confidence=float(view.confidence[k]),
                    expected_return=float(view.expected_return[k]),
                    risk_score=int(view.risk_score[k]),
                    volatility=float(view.volatility[k]),
                    horizon=view.horizon,
                    horizons=",".join(map(str, view.horizons)),
                    horizon_returns=view.horizon_returns[k].copy(),
                ),
            )

    def close_features(self, iids: list[InstrumentId]) -> dict[InstrumentId, np.ndarray]:
        """The last ``history`` feature rows, (history, n_features) float64, of each of ``iids``
        (buffers of at least ``_min_bars`` bars ending at one bar time): the one seam through
        which a close's features are computed, all symbols at once, by the streaming engine
        (``models.streaming``: the batch function's rows, advanced one close at a time; a
        symbol is seeded from its buffer when first seen or after a gap)."""
        rows = self._streaming.update({iid.symbol.value: self.buffers[iid].columns() for iid in iids})
        return {iid: rows[iid.symbol.value] for iid in iids}

    def predict_close(self, iids: list[InstrumentId]) -> tuple[list[InstrumentId], np.ndarray, Outlook]:
        """Every model's probability for the newest bar of each of ``iids`` (one bar close), then
        every meta-learner's, and those bars' outlook: one call of each model over the batch.

        Returns the instruments predicted (in the order given), their probabilities
        (len x models) and the outlook's rows in that order. An instrument is left out when its
        newest ``history`` feature rows are not all finite (degenerate input, e.g. a
        zero-volume window): exactly the rows the batch path skips via ``Panel.usable_rows``.
        """
        rows_of = self.close_features(iids)
        h, n = self._history, len(iids)
        panel = Panel(
            X=np.concatenate([rows_of[iid] for iid in iids]),
            y=np.full(n * h, np.nan),
            ts_ns=np.concatenate([self.buffers[iid].columns()[5][-h:] for iid in iids]),
            symbol=np.repeat(np.arange(n, dtype=np.int32), h),
            segment_start=np.repeat(np.arange(n, dtype=np.int64) * h, h),
            feature_names=self._feature_names,
            symbols=tuple(iid.symbol.value for iid in iids),
        )
        last = np.arange(1, n + 1, dtype=np.int64) * h - 1
        usable = np.isin(last, panel.usable_rows(h))
        predicted = [iid for iid, ok in zip(iids, usable, strict=True) if ok]
        rows = last[usable]
        for iid in predicted:
            self.last_features[iid] = rows_of[iid][-1].copy()
        # Each model reads its own columns by name (a fold's feature selection is in its saved
        # feature_names); the meta-learners then combine the models' probabilities of these bars.
        # The models of one fold share a selection: copy the columns once per selection.
        views = {names: panel.select(names) for names in {m.feature_names for m in self.models.values()}}
        probs = {name: m.predict_proba(views[m.feature_names], rows) for name, m in self.models.items()}
        probs |= {name: stack.combine(probs) for name, stack in self.stacks.items()}
        # The same outlook function as the train step's batch.
        returns = self._horizon_models.predict(panel, rows) if self._horizon_models else None
        view = outlook(self._rule, probs, panel.X[rows, self._volatility_column], self._horizons, returns)
        return predicted, np.column_stack(list(probs.values())), view
