"""SignalActor: live-mode inference, the streaming twin of the walk-forward batch path.

On every bar it appends to a rolling buffer, computes the SAME feature function over the last
``lookback_bars`` bars (long enough that the last row equals the full-history row; see
``models.features.LOOKBACK_BARS``), runs the SAME fitted models on that last row and publishes
an MLSignal, which the EnsembleStrategy consumes exactly as it consumes replayed signals.
"""

from pathlib import Path

import numpy as np
from nautilus_trader.config import ActorConfig
from nautilus_trader.common.actor import Actor
from nautilus_trader.model.data import Bar, BarType, DataType
from nautilus_trader.model.identifiers import InstrumentId

from catalog.instruments import BAR_SPEC
from models.dataset import Panel
from models.features import FEATURE_NAMES, LOOKBACK_BARS, WARMUP_BARS, feature_matrix
from models.zoo import SignalModel, load_model
from strategies.signals import MLSignal


class SignalActorConfig(ActorConfig, frozen=True, kw_only=True):
    instrument_ids: list[str]
    model_dirs: dict[str, str]  # model name -> directory written by SignalModel.save
    lookback_bars: int = LOOKBACK_BARS


class BarBuffer:
    """Fixed-capacity OHLCV + timestamp history of one instrument, oldest first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data = np.empty((2 * capacity, 6), dtype=np.float64)
        self._ts = np.empty(2 * capacity, dtype=np.int64)
        self._start = 0
        self._end = 0

    def append(self, bar: Bar) -> None:
        if self._end == len(self._ts):  # compact: keep the newest capacity-1 rows
            keep = self.capacity - 1
            self._data[:keep] = self._data[self._end - keep : self._end]
            self._ts[:keep] = self._ts[self._end - keep : self._end]
            self._start, self._end = 0, keep
        if self._end > self._start and bar.ts_event <= self._ts[self._end - 1]:
            return  # a bar we already have (e.g. warm-up overlapping the first live bar)
        self._data[self._end] = (
            bar.open.as_double(), bar.high.as_double(), bar.low.as_double(),
            bar.close.as_double(), bar.volume.as_double(), 0.0,
        )
        self._ts[self._end] = bar.ts_event
        self._end += 1
        self._start = max(self._start, self._end - self.capacity)

    def __len__(self) -> int:
        return self._end - self._start

    def columns(self) -> tuple[np.ndarray, ...]:
        block = self._data[self._start : self._end]
        return (block[:, 0], block[:, 1], block[:, 2], block[:, 3], block[:, 4],
                self._ts[self._start : self._end])


class SignalActor(Actor):
    def __init__(self, config: SignalActorConfig) -> None:
        super().__init__(config)
        self.instrument_ids = [InstrumentId.from_str(i) for i in config.instrument_ids]
        self.models: dict[str, SignalModel] = {}
        self.buffers = {iid: BarBuffer(config.lookback_bars) for iid in self.instrument_ids}
        self.last_features: dict[InstrumentId, np.ndarray] = {}
        self._model_names = ""
        self._min_bars = 0

    def on_start(self) -> None:
        self.models = {name: load_model(Path(path)) for name, path in self.config.model_dirs.items()}
        self._model_names = ",".join(self.models)
        history = max(m.history_bars for m in self.models.values())
        self._min_bars = WARMUP_BARS + history
        for iid in self.instrument_ids:
            self.subscribe_bars(BarType.from_str(f"{iid}-{BAR_SPEC}"))

    def on_historical_data(self, data) -> None:
        if isinstance(data, Bar):
            self.buffers[data.bar_type.instrument_id].append(data)

    def on_bar(self, bar: Bar) -> None:
        iid = bar.bar_type.instrument_id
        buffer = self.buffers[iid]
        buffer.append(bar)
        if len(buffer) < self._min_bars:
            return
        probabilities = self.predict_last(iid)
        if probabilities is None:
            return
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
        """Every model's probability for the newest bar of ``iid`` (None while warming up)."""
        o, h, low, c, v, ts = self.buffers[iid].columns()
        X = feature_matrix(o, h, low, c, v, ts)
        panel = Panel(
            X=X, y=np.full(len(ts), np.nan), ts_ns=ts, symbol=np.zeros(len(ts), np.int32),
            segment_start=np.zeros(len(ts), np.int64), feature_names=FEATURE_NAMES, symbols=(iid.symbol.value,),
        )
        last = len(ts) - 1
        history = max(m.history_bars for m in self.models.values())
        if last not in set(panel.usable_rows(history)[-1:].tolist()):
            return None
        self.last_features[iid] = X[last]
        rows = np.array([last])
        return np.array([m.predict_proba(panel, rows)[0] for m in self.models.values()])
