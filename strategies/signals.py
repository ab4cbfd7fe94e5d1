"""The MLSignal custom data type: every model's probability for one symbol at one bar close.

Declared with ``@customdataclass`` so NautilusTrader can store it in the catalog and replay it
in backtests exactly as the live SignalActor publishes it. No ``from __future__ import
annotations`` here: the decorator reads real annotation types to build the Arrow schema.

Probabilities travel as one float64 vector per row (``models`` names the order), so adding a
model to the ensemble does not change the schema. Bulk catalog writes and reads are columnar
(see ``signals_table`` and ``catalog.store.MarketCatalog.write_table``); the per-row msgpack path is kept for the message bus.

Beside the probabilities a signal carries its outlook (``models.outlook``): the decision of
the settings it was produced with, its confidence, the expected return at the trading
``horizon`` (bars), a 1-10 risk score, the forecast per-bar ``volatility`` (what a
volatility-targeted stop is sized from) and every horizon model's forecast
(``horizon_returns``, one per bar count in ``horizons``). Signal catalogs written before the
outlook existed still load: their rows carry the "unknown" outlook of the field defaults
(empty decision, NaN numbers, risk score 0, no horizons).
"""

import math

import numpy as np
import pyarrow as pa
from nautilus_trader.core.data import Data
from nautilus_trader.model.custom import customdataclass
from nautilus_trader.model.identifiers import InstrumentId

from models.outlook import Outlook

# The outlook columns and the value each has in a catalog written before they existed.
_OUTLOOK_DEFAULTS = {"decision": "", "confidence": math.nan, "expected_return": math.nan, "risk_score": 0,
                     "volatility": math.nan, "horizon": 0, "horizons": ""}


@customdataclass
class MLSignal(Data):
    instrument_id: InstrumentId = InstrumentId.from_str("NULL.NULL")
    models: str = ""
    probabilities: np.ndarray = None
    decision: str = ""
    confidence: float = math.nan
    expected_return: float = math.nan
    risk_score: int = 0
    volatility: float = math.nan
    horizon: int = 0
    horizons: str = ""
    horizon_returns: np.ndarray = None

    def model_names(self) -> tuple[str, ...]:
        return tuple(self.models.split(","))

    def probability(self, model: str) -> float:
        return float(self.probabilities[self.model_names().index(model)])

    def to_dict(self) -> dict:
        return {
            "instrument_id": self.instrument_id.value,
            "models": self.models,
            "probabilities": np.asarray(self.probabilities, dtype=np.float64).tobytes(),
            "decision": self.decision,
            "confidence": self.confidence,
            "expected_return": self.expected_return,
            "risk_score": self.risk_score,
            "volatility": self.volatility,
            "horizon": self.horizon,
            "horizons": self.horizons,
            "horizon_returns": _returns_of(self).tobytes(),
            "type": "MLSignal",
            "ts_event": self._ts_event,
            "ts_init": self._ts_init,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "MLSignal":
        return cls(
            ts_event=data["ts_event"],
            ts_init=data["ts_init"],
            instrument_id=InstrumentId.from_str(data["instrument_id"]),
            models=data["models"],
            probabilities=np.frombuffer(data["probabilities"], dtype=np.float64),
            decision=data["decision"],
            confidence=data["confidence"],
            expected_return=data["expected_return"],
            risk_score=data["risk_score"],
            volatility=data["volatility"],
            horizon=data["horizon"],
            horizons=data["horizons"],
            horizon_returns=np.frombuffer(data["horizon_returns"], dtype=np.float64),
        )

    def horizon_bars(self) -> tuple[int, ...]:
        return tuple(int(h) for h in self.horizons.split(",")) if self.horizons else ()

    @classmethod
    def from_arrow(cls, table: pa.Table) -> list["MLSignal"]:
        """Columnar decode: one frombuffer for the whole probability column, not one per row."""
        return signals_from_table(table)


def signals_table(
    instrument: str,
    models: tuple[str, ...],
    ts_ns: np.ndarray,
    probabilities: np.ndarray,
    outlook: Outlook | None = None,
) -> pa.Table:
    """Arrow table in MLSignal's catalog schema for one instrument, built without row objects;
    without ``outlook`` the rows carry the unknown outlook of the field defaults."""
    n, m = probabilities.shape
    if m != len(models):
        raise ValueError(f"{m} probability columns for {len(models)} models {models}")
    if outlook is not None and len(outlook) != n:
        raise ValueError(f"an outlook of {len(outlook)} rows for {n} signals")
    ts = pa.array(np.asarray(ts_ns, dtype=np.int64))
    if outlook is None:
        view = {k: pa.array([v] * n) for k, v in _OUTLOOK_DEFAULTS.items()}
        returns = np.empty((n, 0))
    else:
        view = {
            "decision": pa.array(outlook.decision, pa.string()),
            "confidence": pa.array(outlook.confidence, pa.float64()),
            "expected_return": pa.array(outlook.expected_return, pa.float64()),
            "risk_score": pa.array(outlook.risk_score, pa.int64()),
            "volatility": pa.array(outlook.volatility, pa.float64()),
            "horizon": pa.array([outlook.horizon] * n, pa.int64()),
            "horizons": pa.array([",".join(map(str, outlook.horizons))] * n, pa.string()),
        }
        returns = outlook.horizon_returns
    columns = {
        "instrument_id": pa.array([instrument] * n, pa.string()),
        "models": pa.array([",".join(models)] * n, pa.string()),
        "probabilities": _binary_rows(probabilities),
        **view,
        "horizon_returns": _binary_rows(returns),
        "type": pa.array(["MLSignal"] * n, pa.string()),
        "ts_event": ts,
        "ts_init": ts,
    }
    return pa.table(columns, schema=MLSignal._schema)


def signals_from_table(table: pa.Table) -> list[MLSignal]:
    """Rows of a signal catalog as MLSignals; a catalog without the outlook columns (written
    before they existed) loads with the unknown outlook (module docstring)."""
    if table.num_rows == 0:
        return []
    table = table.combine_chunks()
    n = table.num_rows
    ids = table.column("instrument_id").to_pylist()
    models = table.column("models").to_pylist()
    matrix = _float_rows(table.column("probabilities").chunk(0), "models")
    present = set(table.column_names)
    view = {k: _values(table.column(k)) if k in present else [v] * n for k, v in _OUTLOOK_DEFAULTS.items()}
    returns = (_float_rows(table.column("horizon_returns").chunk(0), "horizons")
               if "horizon_returns" in present else np.empty((n, 0)))
    ts_event = table.column("ts_event").to_numpy().tolist()
    ts_init = table.column("ts_init").to_numpy().tolist()
    id_cache = {i: InstrumentId.from_str(i) for i in set(ids)}
    out = []
    new = MLSignal.__new__
    rows = zip(ids, models, list(matrix), list(returns), ts_event, ts_init, *view.values())
    for iid, model_names, probs, rets, event, init, dec, conf, exp, score, vol, hor, hors in rows:
        # Attribute assignment instead of the generated __init__: a third of the decode time
        # for the million-row replays of a backtest; the fields are exactly those of __init__.
        signal = new(MLSignal)
        signal.instrument_id = id_cache[iid]
        signal.models = model_names
        signal.probabilities = probs
        signal.decision = dec
        signal.confidence = conf
        signal.expected_return = exp
        signal.risk_score = score
        signal.volatility = vol
        signal.horizon = hor
        signal.horizons = hors
        signal.horizon_returns = rets
        signal._ts_event = event
        signal._ts_init = init
        out.append(signal)
    return out


def _values(column: pa.ChunkedArray) -> list:
    """A column as Python values; numbers through numpy (several times faster than to_pylist)."""
    if pa.types.is_string(column.type):
        return column.to_pylist()
    return column.to_numpy().tolist()


def _returns_of(signal: MLSignal) -> np.ndarray:
    returns = signal.horizon_returns
    return np.empty(0) if returns is None else np.asarray(returns, dtype=np.float64)


def _binary_rows(matrix: np.ndarray) -> pa.Array:
    """One float64 vector per row as a binary column: one buffer, no per-row objects."""
    n, m = matrix.shape
    data = np.ascontiguousarray(matrix, dtype=np.float64)
    offsets = (np.arange(n + 1, dtype=np.int32) * (8 * m)).astype(np.int32)
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data.tobytes())])


def _float_rows(column: pa.Array, what: str) -> np.ndarray:
    """Inverse of ``_binary_rows``: one frombuffer for the whole column."""
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)[column.offset : column.offset + len(column) + 1]
    widths = np.diff(offsets)
    if len(set(widths.tolist())) != 1:
        raise ValueError(f"MLSignal rows in one table carry different numbers of {what}")
    if widths[0] == 0:
        return np.empty((len(widths), 0))
    raw = np.frombuffer(column.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return raw.view(np.float64).reshape(len(widths), widths[0] // 8)
