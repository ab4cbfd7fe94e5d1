"""The validation tail every early-stopped or calibrated model carves out of its training rows.

Models select iterations, epochs or a calibration on the most recent part of the training
window, by time, never on a random split (which would let the future choose the model). The
rows kept for fitting must also not see the tail through their labels: a row whose label
horizon ends inside the tail is purged, as the walk-forward split purges before the test.
"""

from __future__ import annotations

import numpy as np

from models.dataset import Panel


def time_ordered_holdout(
    ts_ns: np.ndarray, rows: np.ndarray, fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``rows`` into (earlier, latest ``fraction``) by timestamp, each in ascending order.

    The cut is a timestamp, so the bars of all symbols at one time fall on the same side.
    Sorting by time rather than by row index matters for multi-symbol panels, whose row order
    is symbol-major: the last 20% of row indices would be "the last symbol", not "the recent
    past".
    """
    n_valid = int(len(rows) * fraction)
    if n_valid == 0:
        return np.sort(rows), np.empty(0, np.int64)
    cut_ts = np.sort(ts_ns[rows])[len(rows) - n_valid]
    late = ts_ns[rows] >= cut_ts
    return np.sort(rows[~late]), np.sort(rows[late])


def purged_holdout(
    panel: Panel, rows: np.ndarray, fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, validation tail): ``time_ordered_holdout`` minus the earlier rows whose label
    ends at or after the tail's first bar (``panel.label_end_ns``; a panel without it has labels
    known at their own bar, so nothing is purged)."""
    early, late = time_ordered_holdout(panel.ts_ns, rows, fraction)
    if late.size and panel.label_end_ns is not None:
        early = early[panel.label_end_ns[early] < panel.ts_ns[late].min()]
    return early, late


def sample_rows(rows: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``limit`` of ``rows``, drawn without replacement, in ascending order."""
    if rows.size <= limit:
        return rows
    return np.sort(rng.choice(rows, limit, replace=False))


def sampled_holdout(
    panel: Panel, rows: np.ndarray, fraction: float, max_fit_rows: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``purged_holdout``, then at most ``max_fit_rows`` fit rows and a validation sample in
    the ratio of the unsampled split (so validating costs what it would on the full window);
    ValueError when no row is left on either side."""
    fit, valid = purged_holdout(panel, rows, fraction)
    if fit.size == 0 or valid.size == 0:
        raise ValueError(
            f"valid_fraction={fraction} leaves {fit.size} rows to fit and {valid.size} to validate"
        )
    valid_limit = max(1, round(max_fit_rows * fraction / (1.0 - fraction)))
    return sample_rows(fit, max_fit_rows, rng), sample_rows(valid, valid_limit, rng)
