"""SignalActor: live-mode inference, the streaming twin of the walk-forward batch path.

On every bar it appends to a rolling buffer, computes the SAME feature function over the last
``lookback_bars`` bars (long enough that the last row equals the full-history row; see
``models.features.LOOKBACK_BARS``), runs the SAME fitted models on that last row and publishes
an MLSignal, which the EnsembleStrategy consumes exactly as it consumes replayed signals.
Parity with the batch path is proven by ``tests/strategies/test_actor_parity.py``.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.data import Bar, BarType, DataType
from nautilus_trader.model.identifiers import InstrumentId

from catalog.instruments import BAR_SPEC
from catalog.sessions import sessions_ending
from models.dataset import Panel
from models.features import FEATURE_NAMES, LOOKBACK_BARS, WARMUP_BARS, feature_matrix
from models.stacking import StackModel, load_saved_model
from models.zoo import SignalModel
from strategies.signals import MLSignal


class SignalActorConfig(ActorConfig, frozen=True, kw_only=True):
    instrument_ids: list[str]
    model_dirs: dict[str, str]  # model name -> directory written by SignalModel.save
    lookback_bars: int = LOOKBACK_BARS
    # Live: ask the data client for the bars of this many sessions before ``warmup_as_of``
    # (an ISO time; None = the clock's now) at start, so signals flow from the first live bar.
    warmup_sessions: int = 0
    warmup_as_of: str | None = None


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
        self.instrument_ids = [InstrumentId.from_str(i) for i in config.instrument_ids]
        self.models: dict[str, SignalModel] = {}
        self.stacks: dict[str, StackModel] = {}  # meta-learners over the models' probabilities
        self.buffers = {iid: BarBuffer(config.lookback_bars) for iid in self.instrument_ids}
        self.last_features: dict[InstrumentId, np.ndarray] = {}
        self._model_names = ""
        self._history = 1
        self._min_bars = 0
        self._signalled_ts: dict[InstrumentId, int] = {}
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
            # Every model reads n_jobs at predict time. A row's trees sum the same on any
            # thread count; the LSTM stays within float32 rounding (the parity test covers both).
            model.params["n_jobs"] = 1
        self._model_names = ",".join([*self.models, *self.stacks])
        self._history = max(m.history_bars for m in self.models.values())
        # The first row with finite features is WARMUP_BARS; a model needs `history` of them.
        self._min_bars = WARMUP_BARS + self._history
        if self.config.lookback_bars < self._min_bars:
            raise ValueError(
                f"lookback_bars={self.config.lookback_bars} is below the {self._min_bars} bars "
                f"the features (warm-up {WARMUP_BARS}) and models (history {self._history}) "
                "need; no signal could ever be published"
            )
        for iid in self.instrument_ids:
            self.subscribe_bars(BarType.from_str(f"{iid}-{BAR_SPEC}"))
        if self.config.warmup_sessions > 0:
            self._request_warmup()

    @property
    def warming_up(self) -> bool:
        return bool(self._warming)

    def _request_warmup(self) -> None:
        as_of = pd.Timestamp(self.config.warmup_as_of) if self.config.warmup_as_of else self.clock.utc_now()
        as_of = as_of.tz_localize("UTC") if as_of.tz is None else as_of
        sessions = sessions_ending((as_of - pd.Timedelta(days=1)).date(), self.config.warmup_sessions)
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
        buffer = self.buffers[iid]
        if not buffer.append(bar) and (
            bar.ts_event != buffer.last_ts or self._signalled_ts.get(iid) == bar.ts_event
        ):
            # A late bar, or a repeat of one already signalled. A repeat of the newest bar
            # that came in as warm-up history (never signalled) still gets its signal.
            return
        if len(buffer) < self._min_bars:
            return
        probabilities = self.predict_last(iid)
        if probabilities is None:
            return
        self._signalled_ts[iid] = bar.ts_event
        self.publish_data(
            DataType(MLSignal),
            MLSignal(
                ts_event=bar.ts_event,
                ts_init=bar.ts_init,
                instrument_id=iid,
                models=self._model_names,
                probabilities=probabilities,
            ),
        )

    def predict_last(self, iid: InstrumentId) -> np.ndarray | None:
        """Every model's probability for the newest bar of ``iid``, then every meta-learner's.

        None while the buffer is too short, or when the newest ``history`` feature rows are not
        all finite (degenerate input, e.g. a zero-volume window): exactly the rows the batch
        path skips via ``Panel.usable_rows``.
        """
        o, h, low, c, v, ts = self.buffers[iid].columns()
        n = len(ts)
        if n < self._min_bars:
            return None
        X = feature_matrix(o, h, low, c, v, ts)
        panel = Panel(
            X=X,
            y=np.full(n, np.nan),
            ts_ns=ts,
            symbol=np.zeros(n, np.int32),
            segment_start=np.zeros(n, np.int64),
            feature_names=FEATURE_NAMES,
            symbols=(iid.symbol.value,),
        )
        last = n - 1
        usable = panel.usable_rows(self._history)
        if usable.size == 0 or usable[-1] != last:
            return None
        self.last_features[iid] = X[last].copy()
        rows = np.array([last])
        # Each model reads its own columns by name (a fold's feature selection is in its saved
        # feature_names); the meta-learners then combine the models' probabilities of this bar.
        probs = {name: m.predict_proba(panel.select(m.feature_names), rows)[0] for name, m in self.models.items()}
        probs |= {name: stack.combine(probs)[0] for name, stack in self.stacks.items()}
        return np.array(list(probs.values()))
