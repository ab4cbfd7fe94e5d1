"""Walk-forward folds: layout, no train/test overlap, purge, embargo and size errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

# `splits.test_rows` is used via the module: pytest would collect a bare `test_rows`.
from models import splits
from models.features import NY_TZ, ny_day
from models.labels import direction_labels
from models.splits import Fold, TooFewSessionsError, session_days, train_rows, walk_forward_folds

N_SESSIONS = 30


@pytest.fixture(scope="module")
def ts() -> np.ndarray:
    """Ten bars per session over 30 weekdays (spanning the March 2024 DST switch)."""
    stamps = [
        pd.date_range(pd.Timestamp(f"{day.date()} 09:31", tz=NY_TZ), periods=10, freq="39min")
        for day in pd.bdate_range("2024-02-26", periods=N_SESSIONS)
    ]
    return np.concatenate([s.tz_convert("UTC").asi8 for s in stamps])


def sessions_of(ts: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.unique(ny_day(ts[rows]))


def test_last_fold_ends_at_last_session_and_folds_tile_backwards(ts: np.ndarray) -> None:
    folds = walk_forward_folds(ts, n_folds=4, train_days=10, test_days=3, embargo_days=1)
    days = session_days(ts)
    assert [f.index for f in folds] == [0, 1, 2, 3]
    assert splits.test_rows(ts, folds[-1])[-1] == len(ts) - 1
    assert folds[-1].test_end_ns > ts[-1]
    tested = np.concatenate([sessions_of(ts, splits.test_rows(ts, f)) for f in folds])
    np.testing.assert_array_equal(tested, days[-12:])  # 4 x 3 sessions, in order, no gaps
    for fold in folds:
        assert len(sessions_of(ts, train_rows(ts, ts, fold))) == 10
        assert len(sessions_of(ts, splits.test_rows(ts, fold))) == 3


@pytest.mark.parametrize("embargo_days", [0, 1, 2])
def test_train_and_test_never_overlap_and_embargo_gap_holds(
    ts: np.ndarray, embargo_days: int
) -> None:
    days = session_days(ts)
    for fold in walk_forward_folds(ts, 3, 8, 4, embargo_days=embargo_days):
        train, test = train_rows(ts, ts, fold), splits.test_rows(ts, fold)
        assert len(train) and len(test)
        assert np.intersect1d(train, test).size == 0
        assert ts[train].max() < fold.train_end_ns <= fold.test_start_ns <= ts[test].min()
        last_train, first_test = sessions_of(ts, train)[-1], sessions_of(ts, test)[0]
        gap = days[(days > last_train) & (days < first_test)]
        assert len(gap) == embargo_days
        between = (ts >= fold.train_end_ns) & (ts < fold.test_start_ns)
        assert len(np.unique(ny_day(ts[between]))) == embargo_days


def test_purge_drops_rows_whose_labels_reach_past_train_end(ts: np.ndarray) -> None:
    fold = walk_forward_folds(ts, 2, 10, 5, embargo_days=1)[0]
    in_window = np.flatnonzero((ts >= fold.train_start_ns) & (ts < fold.train_end_ns))
    day_ns = 86_400 * 10**9
    label_end = ts + 3 * day_ns  # a multi-day label: the last sessions leak forward
    kept = train_rows(ts, label_end, fold)
    assert 0 < len(kept) < len(in_window)
    assert (label_end[kept] < fold.train_end_ns).all()
    dropped = np.setdiff1d(in_window, kept)
    assert (label_end[dropped] >= fold.train_end_ns).all()
    # Same-session labels never need purging: every row of the window survives.
    _, intraday_end = direction_labels(np.linspace(100.0, 101.0, len(ts)), ts, horizon=3, cost=0.0)
    np.testing.assert_array_equal(train_rows(ts, intraday_end, fold), in_window)


def test_anchored_folds_expand_from_first_session(ts: np.ndarray) -> None:
    folds = walk_forward_folds(ts, 3, 10, 4, embargo_days=1, anchored=True)
    assert {f.train_start_ns for f in folds} == {folds[0].train_start_ns}
    assert folds[0].train_start_ns <= ts[0]
    lengths = [len(sessions_of(ts, train_rows(ts, ts, f))) for f in folds]
    assert lengths == [N_SESSIONS - 1 - 12, N_SESSIONS - 1 - 8, N_SESSIONS - 1 - 4]


def test_too_few_sessions_raises_with_counts(ts: np.ndarray) -> None:
    walk_forward_folds(ts, n_folds=5, train_days=4, test_days=5, embargo_days=1)  # needs 30
    with pytest.raises(TooFewSessionsError, match="needs 31 sessions .* only 30"):
        walk_forward_folds(ts, n_folds=5, train_days=5, test_days=5, embargo_days=1)
    with pytest.raises(ValueError, match="n_folds"):
        walk_forward_folds(ts, n_folds=0, train_days=5, test_days=5)


def test_fold_is_frozen() -> None:
    fold = Fold(0, 1, 2, 3, 4)
    with pytest.raises(AttributeError):
        fold.index = 1  # type: ignore[misc]
