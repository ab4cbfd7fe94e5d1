"""The search space: every sampled weight vector is feasible, and an unusable space is refused
at load with the key named."""

from pathlib import Path

import numpy as np
import optuna
import pytest

from backtests.config import ConfigError
from backtests.tuning.config import load_tune_config
from backtests.tuning.space import build_space, capped_simplex
from strategies.settings import StrategySettings

BASE = StrategySettings(weights={"lightgbm": 1.0, "xgboost": 1.0, "lstm": 1.0})


def test_capped_simplex_sums_to_one_and_respects_the_cap_for_any_draw():
    rng = np.random.default_rng(3)
    for n, cap in [(3, 0.4), (3, 1 / 3), (5, 0.25), (2, 0.5), (4, 1.0)]:
        for _ in range(500):
            draws = -np.log(rng.uniform(1e-12, 1.0, n)) * rng.choice([1e-6, 1.0, 1e6], n)
            weights = capped_simplex(list(draws), cap)
            assert sum(weights) == pytest.approx(1.0, abs=1e-12)
            assert all(0.0 <= w <= cap + 1e-12 for w in weights)


def test_a_dominant_draw_is_capped_and_its_excess_shared_in_proportion():
    assert capped_simplex([100.0, 2.0, 1.0], 0.4) == pytest.approx([0.4, 0.4, 0.2])
    assert capped_simplex([1.0, 1.0, 1.0, 1.0], 0.4) == pytest.approx([0.25] * 4)


def test_every_trial_of_a_study_gets_feasible_weights_and_in_range_settings():
    space = build_space({"weights": {"cap": 0.4}, "entry_threshold": {"low": 0.55, "high": 0.8},
                         "risk.max_positions": {"low": 2, "high": 6}, "allow_short": False}, BASE, "tune.yaml")
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1, n_startup_trials=5))
    for _ in range(30):
        trial = study.ask()
        overlay = space.sample(trial)
        settings = space.settings(overlay)
        assert sum(settings.weights.values()) == pytest.approx(1.0, abs=1e-12)
        assert max(settings.weights.values()) <= 0.4 + 1e-12
        assert 0.55 <= settings.entry_threshold <= 0.8 and 2 <= settings.risk.max_positions <= 6
        assert isinstance(settings.risk.max_positions, int) and settings.allow_short is False
        study.tell(trial, settings.entry_threshold)


@pytest.mark.parametrize(("parameters", "message"), [
    ({"weights": {"cap": 0.3}}, "'parameters.weights.cap': 0.3 x 3 models = 0.9 < 1"),
    ({"entry_treshold": {"low": 0.6, "high": 0.7}}, "unknown parameter 'parameters.entry_treshold'"),
    ({"risk.stop_los": 0.02}, "unknown parameter 'parameters.risk.stop_los'"),
    ({"entry_threshold": {"low": 0.7, "high": 0.7}}, "'parameters.entry_threshold': empty or inverted range"),
    ({"entry_threshold": {"low": 0.8, "high": 0.6}}, "'parameters.entry_threshold': empty or inverted range"),
    ({"entry_threshold": {"low": 0.4, "high": 0.7}}, "'parameters.entry_threshold.low': 0.4 is outside"),
    ({"risk.stop_loss": {"low": 0.01, "high": 1.5}}, "'parameters.risk.stop_loss.high': 1.5 is outside"),
    ({"risk.max_positions": {"low": 0, "high": 5}}, "'parameters.risk.max_positions.low': 0 is outside"),
    ({"risk.max_positions": {"low": 1.5, "high": 5}}, "'parameters.risk.max_positions.low': expected an integer"),
    ({"allow_short": {"low": 0, "high": 1}}, "'parameters.allow_short': a true/false setting takes"),
    ({"entry_threshold": 1.0}, "'parameters.entry_threshold': 1.0 is outside"),
    ({"entry_threshold": {"low": 0.6}}, "'parameters.entry_threshold': expected {low, high}"),
])
def test_an_unusable_search_space_is_an_error_naming_the_key(parameters, message):
    with pytest.raises(ConfigError, match="^tune.yaml: ") as error:
        build_space(parameters, BASE, "tune.yaml")
    assert message in str(error.value)


def test_the_shipped_tune_config_loads_and_names_its_walkforward_config():
    config = load_tune_config(Path(__file__).parents[3] / "configs" / "tune.yaml")
    assert config.holdout_folds == 1 and config.space.weight_cap == 0.4
    assert config.space.models == tuple(config.walkforward.models)


def test_a_holdout_leaving_no_fold_to_tune_on_is_refused(tmp_path):
    (tmp_path / "wf.yaml").write_text("walk_forward: {folds: 2}\n")
    (tmp_path / "tune.yaml").write_text("walkforward: wf.yaml\nholdout_folds: 2\n")
    with pytest.raises(ConfigError, match="'holdout_folds' 2 leaves no fold to tune on"):
        load_tune_config(tmp_path / "tune.yaml")
    (tmp_path / "tune.yaml").write_text("walkforward: wf.yaml\nholdout: 1\n")
    with pytest.raises(ConfigError, match="unknown key 'holdout'"):
        load_tune_config(tmp_path / "tune.yaml")
