"""The one way model probabilities are combined, shared by evaluation and trading.

Metrics, backtests and live trading all call ``ensemble_probability`` so the ensemble that was
evaluated is exactly the ensemble that trades. The backtest calls it once per bar, so the
scalar path is plain Python arithmetic (no array allocation); arrays go through the same
arithmetic and come out as float64. ``EnsembleConfig`` chooses whether a run also trains the
stacking meta-learner (``models.stacking``), whose output is one more probability to weigh.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec
import numpy as np
from msgspec import Meta

STACK_NAME = "stack"  # the stacking meta-learner's registry name and MLSignal column (models.stacking)


class EnsembleConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``method``: ``vote`` combines the models by ``strategy.weights`` alone; ``stack`` also
    trains the meta-learner, whose probability is one more MLSignal column named ``stack``
    for ``strategy.weights`` to weigh. ``inner_folds``: the inner walk-forward folds of each
    training window the out-of-fold probabilities come from; ``C``: the logistic regression's
    inverse L2 strength (smaller = weights shrunk harder towards zero)."""

    method: Literal["vote", "stack"] = "vote"
    inner_folds: Annotated[int, Meta(ge=2, le=10)] = 3
    C: Annotated[float, Meta(gt=0.0, le=1e6)] = 1.0

    @property
    def stacking(self) -> bool:
        return self.method == "stack"


def ensemble_probability(
    probs: Mapping[str, float | np.ndarray], weights: Mapping[str, float]
) -> float | np.ndarray:
    """Weighted mean of model probabilities, weights normalised to sum to 1.

    Models with weight 0 are ignored (they need not appear in ``probs``), as are entries of
    ``probs`` that have no weight. Raises ValueError for a negative or NaN weight, a weighted
    model missing from ``probs``, or when no model has positive weight.
    """
    total = 0.0
    acc: float | np.ndarray = 0.0
    for name, w in weights.items():
        if not w >= 0.0:  # also rejects NaN
            raise ValueError(f"weight for {name!r} must be >= 0, got {w}")
        if w == 0.0:
            continue
        try:
            p = probs[name]
        except KeyError:
            raise ValueError(
                f"model {name!r} has weight {w} but no probability; have {sorted(probs)}"
            ) from None
        if isinstance(p, np.ndarray):
            p = p.astype(np.float64, copy=False)
        acc = acc + w * p
        total += w
    if total == 0.0:
        raise ValueError(f"all ensemble weights are zero: {dict(weights)}")
    return acc / total
