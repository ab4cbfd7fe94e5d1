"""The signal outlook: the entry rule, confidence, the documented risk-score mapping, and the
expected return taken from the trading horizon's forecast."""

import math

import numpy as np
import pytest

from models.outlook import (
    BARS_PER_SESSION,
    OutlookRule,
    decide,
    outlook,
    read_outlook_spec,
    risk_scores,
    write_outlook_spec,
)

RULE = OutlookRule(weights={"a": 1.0, "b": 3.0}, entry_threshold=0.65, allow_short=True,
                   volatility_feature="rv_60", horizon=5)


@pytest.mark.parametrize(("p", "allow_short", "expected"), [
    (0.65, True, "BUY"), (0.6499, True, "HOLD"), (0.35, True, "SELL"), (0.3501, True, "HOLD"),
    (0.2, False, "HOLD"), (0.9, False, "BUY"),
])
def test_decide_is_the_entry_rule(p, allow_short, expected) -> None:
    assert decide(p, 0.65, allow_short) == expected


def test_risk_score_is_half_percent_daily_volatility_steps() -> None:
    per_bar = np.array([0.004, 0.005, 0.0051, 0.0199, 0.045, 0.2, 0.0, math.nan]) / math.sqrt(BARS_PER_SESSION)
    assert risk_scores(per_bar).tolist() == [1, 1, 2, 4, 9, 10, 1, 0]


def test_outlook_combines_the_ensemble_and_takes_the_trading_horizon() -> None:
    probs = {"a": np.array([0.9, 0.1, 0.5]), "b": np.array([0.7, 0.3, 0.5])}  # ensemble 0.75, 0.25, 0.5
    forecasts = np.array([[0.001, 0.002], [-0.001, -0.003], [0.0, 0.0004]])
    view = outlook(RULE, probs, np.array([0.001, 0.002, math.nan]), (1, 5), forecasts)
    assert view.decision == ["BUY", "SELL", "HOLD"]
    np.testing.assert_allclose(view.confidence, [0.75, 0.75, 0.5])
    np.testing.assert_array_equal(view.expected_return, [0.002, -0.003, 0.0004])
    assert view.risk_score.tolist()[2] == 0 and view.horizon == 5
    picked = view.take(np.array([False, True, False]))
    assert picked.decision == ["SELL"] and picked.horizon_returns.tolist() == [[-0.001, -0.003]]


def test_without_horizon_models_the_expected_return_is_unknown() -> None:
    view = outlook(RULE, {"a": np.array([0.5]), "b": np.array([0.5])}, np.array([0.001]))
    assert math.isnan(view.expected_return[0]) and view.horizons == () and view.horizon_returns.shape == (1, 0)


def test_a_trading_horizon_without_its_model_is_refused() -> None:
    with pytest.raises(ValueError, match="trading horizon 5 is not one of"):
        outlook(RULE, {"a": np.array([0.5]), "b": np.array([0.5])}, np.array([0.001]), (1, 30), np.zeros((1, 2)))


def test_outlook_spec_round_trip_and_default(tmp_path) -> None:
    assert read_outlook_spec(tmp_path) == {"volatility_feature": "rv_60", "horizon": 15, "horizons_dir": None}
    write_outlook_spec(tmp_path, "rv_15", 30, "horizons/fold-3")
    assert read_outlook_spec(tmp_path) == {"volatility_feature": "rv_15", "horizon": 30,
                                           "horizons_dir": str(tmp_path / "horizons/fold-3")}
