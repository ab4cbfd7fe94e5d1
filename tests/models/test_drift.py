"""PSI against a model's training distribution: stable on the same distribution, flagged on a
shift, a wider spread, values outside the training range and a moved constant."""

import numpy as np
import pytest

from models.drift import DriftReference, psi

NAMES = ("ret", "vol", "flag")


def _rows(rng, n, shift=0.0, scale=1.0, flag=0.0):
    return np.column_stack([rng.normal(shift, scale, n), rng.gamma(2.0, 1.0, n) * scale, np.full(n, flag)])


def test_the_same_distribution_is_stable_and_a_shift_is_significant():
    rng = np.random.default_rng(1)
    reference = DriftReference.fit(_rows(rng, 20_000), NAMES)
    same = {d.feature: d for d in reference.compare(_rows(rng, 5_000), NAMES)}
    assert all(d.level == "stable" and d.psi < 0.02 for d in same.values()), same
    moved = {d.feature: d for d in reference.compare(_rows(rng, 5_000, shift=1.0, scale=2.0, flag=1.0), NAMES)}
    # A one-sigma mean shift has a PSI near 1 for a normal; doubling the spread moves the gamma.
    assert moved["ret"].level == "significant" and moved["ret"].psi > 0.5
    assert moved["vol"].level == "significant"
    assert moved["flag"].level == "significant"  # a constant that changed, not hidden in its bin
    assert moved["ret"].rows == 5_000


def test_a_half_sigma_shift_reads_moderate_or_more_and_nan_rows_are_left_out():
    rng = np.random.default_rng(2)
    reference = DriftReference.fit(_rows(rng, 20_000), NAMES)
    live = _rows(rng, 5_000, shift=0.5)
    live[:1_000, 0] = np.nan
    drift = {d.feature: d for d in reference.compare(live, NAMES)}
    assert drift["ret"].psi > 0.1 and drift["ret"].rows == 4_000
    assert drift["vol"].level == "stable"


def test_values_beyond_the_training_range_are_counted_as_drift():
    rng = np.random.default_rng(3)
    reference = DriftReference.fit(rng.uniform(0, 1, (10_000, 1)), ["u"])
    [inside] = reference.compare(rng.uniform(0, 1, (2_000, 1)), ["u"])
    [beyond] = reference.compare(rng.uniform(1.5, 2.5, (2_000, 1)), ["u"])
    assert inside.level == "stable" and beyond.psi > 1.0


def test_round_trip_and_unknown_or_empty_features(tmp_path):
    rng = np.random.default_rng(4)
    reference = DriftReference.fit(_rows(rng, 1_000), NAMES)
    reference.save(tmp_path)
    assert DriftReference.load(tmp_path) == reference
    assert DriftReference.load(tmp_path / "none") is None
    live = np.column_stack([np.full(10, np.nan), rng.normal(size=10)])
    assert [d.feature for d in reference.compare(live, ["ret", "other"])] == []


def test_psi_matches_the_formula():
    e, a = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    assert psi(e, a) == pytest.approx((0.25 - 0.5) * np.log(0.5) + (0.75 - 0.5) * np.log(1.5))
    assert psi(e, e) == 0.0
