"""How well each model has been doing today: accuracy and AUC of its recent live signals, once
their outcome is known.

A journal row listener (``put(row)``/``close()``, fed by the panel's sink). A signal row holds
each model's probability for its bar; its label is the training label
(``models.labels.direction_labels``, with the horizon and cost the models were trained on), so
it is known only once the bar ``horizon`` bars later has arrived for that symbol. Until then
the signal waits: nothing is scored on bars that had not happened (no look-ahead). A label the
training would leave undefined (the horizon crosses the session's close, or the move is within
the cost) is not scored either. Scores roll over the last ``window`` resolved signals.

``put`` runs on the node's loop, so it only files the row (a label is a few numbers); the
scores are computed when asked (``snapshot``), on the panel's side.
"""

import json
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from live.journal.rows import BarRow, Row, SignalRow
from models.labels import LabelRule, direction_labels, trained_label_rule
from models.registry import META_FILE

TOPIC = "models"
DEFAULT_WINDOW = 500
Publish = Callable[[str, dict], None]


def label_rule_of(model_dirs: Mapping[str, Path]) -> LabelRule:
    """The label the loaded models were trained on (one fold: one rule; a mix is refused)."""
    rules = {name: trained_label_rule(json.loads((Path(d) / META_FILE).read_text())) for name, d in model_dirs.items()}
    distinct = set(rules.values())
    if len(distinct) > 1:
        raise ValueError(f"the models were trained on different labels: {rules}")
    return distinct.pop() if distinct else LabelRule()


@dataclass(frozen=True)
class _Pending:
    ts: int
    models: tuple[str, ...]
    probabilities: tuple[float, ...]


class _Symbol:
    """One symbol's last ``horizon + 1`` bars and its signals waiting for their label."""

    def __init__(self, horizon: int) -> None:
        self.ts: deque[int] = deque(maxlen=horizon + 1)
        self.close: deque[float] = deque(maxlen=horizon + 1)
        self.pending: deque[_Pending] = deque()


class ModelScores:
    """Rolling per-model accuracy and AUC of live signals (module docstring)."""

    def __init__(self, rule: LabelRule, window: int = DEFAULT_WINDOW) -> None:
        if window < 2:
            raise ValueError(f"window must be at least 2 resolved signals, got {window}")
        self.rule = rule
        self.window = window
        self._lock = threading.Lock()
        self._symbols: dict[str, _Symbol] = {}
        self._scored: dict[str, deque[tuple[float, float]]] = {}  # model -> (label, probability)
        self._resolved = 0  # signals whose label is known (scored or undefined)
        self._version = 0
        self._published = -1

    def put(self, row: Row) -> None:
        if isinstance(row, BarRow):
            with self._lock:
                self._on_bar(row)
        elif isinstance(row, SignalRow):
            with self._lock:
                self._on_signal(row)

    def close(self) -> None:
        pass

    def _on_bar(self, row: BarRow) -> None:
        symbol = self._symbols.setdefault(row.instrument_id, _Symbol(self.rule.horizon))
        if symbol.ts and row.ts_event <= symbol.ts[-1]:
            return  # a bar the data client already delivered
        symbol.ts.append(row.ts_event)
        symbol.close.append(float(row.close))
        while symbol.pending and symbol.pending[0].ts < symbol.ts[0]:
            symbol.pending.popleft()  # its bar left the window unlabelled (cannot happen in order)
        if len(symbol.ts) == symbol.ts.maxlen and symbol.pending and symbol.pending[0].ts == symbol.ts[0]:
            self._resolve(symbol, symbol.pending.popleft())

    def _on_signal(self, row: SignalRow) -> None:
        symbol = self._symbols.get(row.instrument_id)
        if symbol is None or row.ts_event not in symbol.ts:
            return  # a signal on a bar this listener never saw: its label cannot be known
        if symbol.pending and row.ts_event <= symbol.pending[-1].ts:
            return  # one signal per bar
        symbol.pending.append(_Pending(row.ts_event, tuple(row.models.split(",")), tuple(row.probabilities)))

    def _resolve(self, symbol: _Symbol, signal: _Pending) -> None:
        """The signal's bar is the oldest of the window and the one ``horizon`` bars later
        just arrived: its training label is defined now, from these bars only."""
        y, _ = direction_labels(np.array(symbol.close), np.array(symbol.ts, np.int64), self.rule.horizon,
                                self.rule.cost)
        self._resolved += 1
        self._version += 1
        label = y[0]
        if np.isnan(label):
            return
        for name, p in zip(signal.models, signal.probabilities, strict=True):
            self._scored.setdefault(name, deque(maxlen=self.window)).append((float(label), float(p)))

    def snapshot(self) -> dict:
        """Per model: signals scored (of the window), accuracy (probability >= 0.5 as "up")
        and AUC (None while the scored labels are all of one class)."""
        with self._lock:
            scored = {name: np.array(pairs) for name, pairs in self._scored.items()}
            resolved = self._resolved
            waiting = sum(len(s.pending) for s in self._symbols.values())
        models = {}
        for name, pairs in sorted(scored.items()):
            y, p = pairs[:, 0], pairs[:, 1]
            models[name] = {"scored": len(y), "accuracy": float(np.mean((p >= 0.5) == (y == 1.0))), "auc": auc(y, p),
                            "up_share": float(np.mean(y))}
        return {"horizon": self.rule.horizon, "cost": self.rule.cost, "window": self.window, "resolved": resolved,
                "waiting": waiting, "models": models}

    def publish_if_changed(self, publish: Publish) -> None:
        """Publish the snapshot on the topic "models" when a signal resolved since the last one."""
        with self._lock:
            version = self._version
        if version != self._published:
            self._published = version
            publish(TOPIC, self.snapshot())


def auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """Area under the ROC curve by ranks (Mann-Whitney; ties count half); None with one class."""
    positives = int(np.sum(y == 1.0))
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(p)
    return float((ranks[y == 1.0].sum() - positives * (positives + 1) / 2) / (positives * negatives))
