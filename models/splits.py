"""Walk-forward cross-validation by trading session, with purge and embargo.

Folds are cut on whole New York trading sessions because the strategy is flat
overnight and labels never cross a session boundary. Bars are assigned to
windows by timestamp, so the same folds apply to every symbol of a universe.

Layout (sessions are the distinct New York dates present in the data):

    ... | train (train_days) | embargo (embargo_days) | test (test_days) |
                                       next fold: shifted by test_days ->

The last fold's test window ends at the last session and earlier folds step
back by `test_days`, so test windows tile the most recent
n_folds * test_days sessions without overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.features import NY_TZ, ny_day


class TooFewSessionsError(ValueError):
    """The data holds fewer sessions than the requested fold layout needs: a property of the
    data and the config, which callers report to the user (the message counts both)."""


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold; every window is half-open [start_ns, end_ns) in UTC ns.

    Boundaries sit at New York midnight: a window covering sessions d0..d1
    spans [midnight starting d0, midnight ending d1), so it contains every bar of
    those sessions and nothing else. The embargo sessions lie in
    [train_end_ns, test_start_ns).
    """

    index: int
    train_start_ns: int
    train_end_ns: int
    test_start_ns: int
    test_end_ns: int


def session_days(ts_ns: np.ndarray) -> np.ndarray:
    """Sorted distinct New York dates (int64 days since 1970-01-01) with at least one bar."""
    return np.unique(ny_day(ts_ns))


def walk_forward_folds(
    ts_ns: np.ndarray,
    n_folds: int,
    train_days: int,
    test_days: int,
    embargo_days: int = 1,
    anchored: bool = False,
) -> list[Fold]:
    """Lay out `n_folds` chronological folds over the sessions present in `ts_ns`.

    ts_ns: bar timestamps (UTC epoch ns; any order, duplicates fine, e.g. the
    union over symbols). Each fold tests `test_days` sessions, skips
    `embargo_days` sessions before them (so serially correlated features near
    the boundary cannot leak) and trains on the `train_days` sessions before
    that; with `anchored=True` training instead expands from the first session
    and `train_days` is the minimum length (that of fold 0).

    Raises TooFewSessionsError if fewer than train_days + embargo_days +
    n_folds * test_days sessions are available.
    """
    if n_folds < 1 or train_days < 1 or test_days < 1 or embargo_days < 0:
        raise ValueError(
            "need n_folds, train_days, test_days >= 1 and embargo_days >= 0, got "
            f"{n_folds=}, {train_days=}, {test_days=}, {embargo_days=}"
        )
    days = session_days(ts_ns)
    needed = train_days + embargo_days + n_folds * test_days
    if len(days) < needed:
        raise TooFewSessionsError(
            f"walk-forward needs {needed} sessions ({train_days} train + {embargo_days} "
            f"embargo + {n_folds} x {test_days} test) but only {len(days)} are available"
        )
    # New York midnight starting each session, and the one ending it.
    starts, ends = ny_midnights_ns(days), ny_midnights_ns(days + 1)
    folds = []
    for k in range(n_folds):
        test_lo = len(days) - (n_folds - k) * test_days
        train_hi = test_lo - embargo_days
        train_lo = 0 if anchored else train_hi - train_days
        folds.append(
            Fold(
                index=k,
                train_start_ns=int(starts[train_lo]),
                train_end_ns=int(ends[train_hi - 1]),
                test_start_ns=int(starts[test_lo]),
                test_end_ns=int(ends[test_lo + test_days - 1]),
            )
        )
    return folds


def train_rows(ts_ns: np.ndarray, label_end_ns: np.ndarray, fold: Fold) -> np.ndarray:
    """Indices of rows in the fold's train window whose label is known before it ends.

    Purging on label_end_ns < train_end_ns drops rows whose outcome reaches into
    the embargo or test sessions (train_end_ns <= test_start_ns). Rows with an
    undefined label are kept; drop NaN targets separately.
    """
    ts_ns = np.asarray(ts_ns)
    mask = (ts_ns >= fold.train_start_ns) & (ts_ns < fold.train_end_ns)
    return np.flatnonzero(mask & (np.asarray(label_end_ns) < fold.train_end_ns))


def test_rows(ts_ns: np.ndarray, fold: Fold) -> np.ndarray:
    """Indices of rows inside the fold's test window."""
    ts_ns = np.asarray(ts_ns)
    return np.flatnonzero((ts_ns >= fold.test_start_ns) & (ts_ns < fold.test_end_ns))


def ny_midnights_ns(days: np.ndarray) -> np.ndarray:
    """UTC ns of New York midnight at the start of each day (midnight is never a DST gap)."""
    naive = pd.DatetimeIndex(days.astype("M8[D]")).as_unit("ns")
    return naive.tz_localize(NY_TZ).asi8


def inner_splits(
    ts_ns: np.ndarray, label_end_ns: np.ndarray, rows: np.ndarray, n_folds: int, embargo_days: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) row indices of an anchored walk-forward over the sessions of ``rows`` (an
    outer fold's training rows), for whatever is fitted on out-of-sample data inside a training
    window (the stacking meta-learner, the feature selection).

    The sessions are cut like the outer folds: ``n_folds`` equal test windows after a first
    training stretch of at least the same length, ``embargo_days`` between each training window
    and its test window, training rows purged by label end. Only ``rows`` are ever returned, so
    nothing outside the outer training window is seen.
    """
    rows = np.asarray(rows, dtype=np.int64)
    ts, ends = np.asarray(ts_ns)[rows], np.asarray(label_end_ns)[rows]
    n_days = len(session_days(ts))
    test_days = (n_days - embargo_days) // (n_folds + 1)
    if test_days < 1:
        raise TooFewSessionsError(
            f"{n_folds} inner folds need at least {n_folds + 1 + embargo_days} training sessions, "
            f"the training window has {n_days}"
        )
    folds = walk_forward_folds(ts, n_folds, train_days=n_days - embargo_days - n_folds * test_days,
                               test_days=test_days, embargo_days=embargo_days, anchored=True)
    return [(rows[train_rows(ts, ends, fold)], rows[test_rows(ts, fold)]) for fold in folds]
