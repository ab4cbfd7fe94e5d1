"""The ``ensemble`` and ``selection`` sections: off by default, on by a line, errors name the key."""

from pathlib import Path

import pytest

from backtests.config import ConfigError, load_config
from models.ensemble import EnsembleConfig
from models.selection import SelectionConfig

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "walkforward.yaml"
TWO_MODELS = "models: {lightgbm: {params: {}}, xgboost: {params: {}}}\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def test_both_are_off_by_default_and_in_the_shipped_config(tmp_path):
    for config in (load_config(write(tmp_path, "")), load_config(SHIPPED)):
        assert config.ensemble == EnsembleConfig() and not config.ensemble.stacking
        assert config.selection is None


def test_stacking_without_weights_trades_the_meta_learner_alone(tmp_path):
    config = load_config(write(tmp_path, TWO_MODELS + "ensemble: {method: stack, inner_folds: 4, C: 0.5}\n"
                                                      "selection: {top_k: 12}\n"))
    assert (config.ensemble.method, config.ensemble.inner_folds, config.ensemble.C) == ("stack", 4, 0.5)
    assert config.weights() == {"lightgbm": 0.0, "xgboost": 0.0, "stack": 1.0}
    assert config.selection == SelectionConfig(top_k=12)


def test_stack_weights_must_match_the_method(tmp_path):
    weighed = TWO_MODELS + "strategy: {weights: {lightgbm: 1, xgboost: 1, stack: 2}}\n"
    assert load_config(write(tmp_path, weighed + "ensemble: {method: stack}\n")).weights()["stack"] == 2.0
    with pytest.raises(ConfigError, match=r"'strategy.weights': must weigh exactly the models in 'models': "):
        load_config(write(tmp_path, weighed))  # a vote has no meta-learner to weigh
    with pytest.raises(ConfigError, match=r"exactly the models in 'models' and 'stack' \(ensemble.method: stack\)"):
        load_config(write(tmp_path, TWO_MODELS + "strategy: {weights: {lightgbm: 1, xgboost: 1}}\n"
                                                 "ensemble: {method: stack}\n"))


@pytest.mark.parametrize(("text", "key"), [
    ("ensemble: {method: blend}", r"ensemble\.method"),
    ("ensemble: {inner_folds: 1}", r"ensemble\.inner_folds"),
    ("ensemble: {C: 0}", r"ensemble\.C"),
    ("ensemble: {folds: 3}", r"ensemble\.folds"),
    ("selection: {top_k: 0}", r"selection\.top_k"),
    ("selection: {inner_folds: 1}", r"selection\.inner_folds"),
    ("selection: {k: 5}", r"selection\.k"),
    ("selection: 5", r"selection"),
])
def test_bad_values_name_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError, match=key):
        load_config(write(tmp_path, text + "\n"))


@pytest.mark.parametrize("key", ["ensemble", "selection"])
def test_inner_folds_must_fit_in_the_training_window(tmp_path, key):
    method = "method: stack, " if key == "ensemble" else ""
    text = TWO_MODELS + f"walk_forward: {{train_days: 4, embargo_days: 1}}\n{key}: {{{method}inner_folds: 3}}\n"
    with pytest.raises(ConfigError, match=rf"'{key}.inner_folds': 3 needs walk_forward.train_days >= 5, got 4"):
        load_config(write(tmp_path, text))
    load_config(write(tmp_path, text.replace("train_days: 4", "train_days: 5")))
