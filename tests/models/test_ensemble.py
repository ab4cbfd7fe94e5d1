"""ensemble_probability: the single combination rule shared by metrics, backtest and live."""

from __future__ import annotations

import numpy as np
import pytest

from models.ensemble import ensemble_probability


def test_scalar_weighted_mean_with_normalised_weights():
    p = ensemble_probability({"lgb": 0.7, "xgb": 0.6, "lstm": 0.4}, {"lgb": 2, "xgb": 1, "lstm": 1})
    assert p == pytest.approx((2 * 0.7 + 0.6 + 0.4) / 4)
    assert type(p) is float  # the per-bar path stays in plain Python


def test_zero_weight_models_are_ignored_even_when_absent():
    assert ensemble_probability({"lgb": 0.8}, {"lgb": 1.0, "lstm": 0.0}) == pytest.approx(0.8)
    assert ensemble_probability({"lgb": 0.8, "extra": 0.1}, {"lgb": 3.0}) == pytest.approx(0.8)


def test_arrays_combine_elementwise_as_float64():
    lgb = np.array([0.2, 0.9], np.float32)
    lstm = np.array([0.4, 0.5])
    out = ensemble_probability({"lgb": lgb, "lstm": lstm}, {"lgb": 1, "lstm": 3})
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, (lgb.astype(np.float64) + 3 * lstm) / 4)
    # A scalar path and an array path over the same inputs agree exactly.
    assert out[1] == ensemble_probability(
        {"lgb": float(lgb[1]), "lstm": 0.5}, {"lgb": 1, "lstm": 3}
    )


@pytest.mark.parametrize(
    ("probs", "weights", "message"),
    [
        ({"lgb": 0.5}, {"lgb": 0.0}, "all ensemble weights are zero"),
        ({"lgb": 0.5}, {}, "all ensemble weights are zero"),
        ({"lgb": 0.5}, {"lgb": 1.0, "lstm": 0.5}, "'lstm' has weight 0.5 but no probability"),
        ({"lgb": 0.5}, {"lgb": -1.0}, "must be >= 0"),
        ({"lgb": 0.5}, {"lgb": float("nan")}, "must be >= 0"),
    ],
)
def test_invalid_weights_raise(probs, weights, message):
    with pytest.raises(ValueError, match=message):
        ensemble_probability(probs, weights)
