"""Permutation importance for the models that have no native one (networks, SVM)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def permutation_importance(
    loss: Callable[[np.ndarray], float],
    inputs: np.ndarray,
    names: Sequence[str],
    rng: np.random.Generator,
) -> dict[str, float]:
    """Increase of ``loss(inputs)`` when feature ``j`` (the last axis) is shuffled across rows.

    For a window input (n, L, f) the feature's whole trajectory moves with the row, so the
    network sees real but unrelated paths. One shared permutation keeps the figures
    comparable between features. Values can be slightly negative for unused features.
    """
    base = loss(inputs)
    perm = rng.permutation(len(inputs))
    result = {}
    for j, name in enumerate(names):
        shuffled = inputs.copy()
        shuffled[..., j] = inputs[perm][..., j]
        result[name] = float(loss(shuffled) - base)
    return result
