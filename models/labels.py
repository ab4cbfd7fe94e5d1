"""Forward-return direction labels for intraday models.

The strategy is flat overnight, so a label must be realisable inside one New
York trading session: horizons that would cross the close are left undefined
rather than silently absorbing the overnight gap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from models.features import ny_day
from models.outlook import DEFAULT_HORIZON

DEFAULT_COST = 0.001  # the round-trip cost a move must beat (backtests.config.LabelConfig)


@dataclass(frozen=True)
class LabelRule:
    """What ``direction_labels`` is called with: bars ahead, and the cost a move must beat."""

    horizon: int = DEFAULT_HORIZON
    cost: float = DEFAULT_COST


def trained_label_rule(meta: Mapping) -> LabelRule:
    """The labels a saved model was trained on: its registry meta's ``labels`` (the train
    step records the run's); a model saved without them was trained on the defaults."""
    labels = meta.get("labels") or {}
    return LabelRule(horizon=int(labels.get("horizon", DEFAULT_HORIZON)), cost=float(labels.get("cost", DEFAULT_COST)))


def direction_labels(
    close: np.ndarray, ts_ns: np.ndarray, horizon: int, cost: float
) -> tuple[np.ndarray, np.ndarray]:
    """Label each bar by the sign of its `horizon`-bar forward return.

    r[t] = close[t+horizon] / close[t] - 1 (horizon counts bars, not minutes, so
    sparse minutes stretch it in time). y[t] is 1.0 if r > cost, 0.0 if
    r < -cost, and NaN when |r| <= cost (not worth trading after costs), when
    t+horizon is past the data, or when it falls on another New York date.

    label_end_ns[t] is ts_ns[t+horizon], the moment the label is known, used to
    purge training rows whose outcome overlaps a test window; it is ts_ns[t]
    where t+horizon is past the data or in another session.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1 bar, got {horizon}")
    if cost < 0:
        raise ValueError(f"cost must be >= 0, got {cost}")
    close = np.asarray(close, dtype=np.float64)
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    n = len(close)
    y = np.full(n, np.nan)
    label_end_ns = ts_ns.copy()
    if n <= horizon:
        return y, label_end_ns
    day = ny_day(ts_ns)
    same_session = day[horizon:] == day[:-horizon]
    forward = close[horizon:] / close[:-horizon] - 1.0
    head = y[:-horizon]  # view: rows whose horizon end exists in the data
    head[same_session & (forward > cost)] = 1.0
    head[same_session & (forward < -cost)] = 0.0
    label_end_ns[:-horizon][same_session] = ts_ns[horizon:][same_session]
    return y, label_end_ns
