"""The kinds table: lazy imports, presets, params checked before any fit, threads set through
the model, and the purged validation tail every early-stopped or calibrated model uses."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from backtests.config import ConfigError, parse_config
from models.dataset import Panel
from models.zoo import MODEL_KINDS, build_model
from models.zoo.holdout import purged_holdout
from tests.models.test_zoo import BAR_NS, SEQUENCE_KINDS, synthetic_panel, time_split

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "xgboost", "lightgbm", "sklearn")
# The brief's sequence networks take seconds even on a tiny panel: slow-marked.
PRESETS = [
    pytest.param(kind, preset, marks=[pytest.mark.slow] if kind in SEQUENCE_KINDS else [])
    for kind, spec in sorted(MODEL_KINDS.items())
    for preset in spec.presets
]


def test_importing_the_zoo_or_loading_a_config_imports_no_ml_library():
    script = textwrap.dedent(
        f"""
        import sys
        import models.zoo
        after_zoo = sorted(m for m in {HEAVY!r} if m in sys.modules)
        from backtests.config import load_config
        config = load_config("configs/walkforward.yaml")
        assert set(config.models) == {{"lightgbm", "xgboost", "lstm"}}
        after_config = sorted(m for m in {HEAVY!r} if m in sys.modules)
        models.zoo.build_model("random_forest")
        print(after_zoo, after_config, "sklearn" in sys.modules, "torch" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    ).stdout.split()
    # Building a forest loads scikit-learn, and only scikit-learn.
    assert out == ["[]", "[]", "True", "False"]


@pytest.mark.parametrize(("kind", "preset"), PRESETS)
def test_presets_build_and_fit_a_tiny_panel(kind, preset):
    panel = synthetic_panel(n_symbols=2, n_bars=400, seed=5)
    quick = {"epochs": 2, "importance_sample": 32} if "epochs" in MODEL_KINDS[kind].defaults else {}
    if kind == "cnn":
        quick["features"] = []  # the synthetic panel has f0..f7, not the real feature names
    model = build_model(kind, quick, preset=preset)
    for key, value in MODEL_KINDS[kind].presets[preset].items():
        assert model.params[key] == quick.get(key, value)
    train, test = time_split(panel, model.history_bars)
    model.fit(panel, train, seed=0)
    probs = model.predict_proba(panel, test)
    assert probs.shape == test.shape and np.isfinite(probs).all()


def test_brief_presets_hold_the_briefs_settings():
    brief = {kind: MODEL_KINDS[kind].presets["brief"] for kind in ("random_forest", "xgboost",
                                                                    "lstm", "transformer", "cnn")}
    assert {k: brief["random_forest"][k] for k in ("n_estimators", "max_depth", "min_samples_split",
                                                    "n_jobs")} == {
        "n_estimators": 200, "max_depth": 15, "min_samples_split": 10, "n_jobs": -1}
    assert dict(brief["xgboost"]) == {"n_estimators": 500, "learning_rate": 0.1, "max_depth": 8}
    assert (brief["lstm"]["hidden_sizes"], brief["lstm"]["seq_len"], brief["lstm"]["batch_size"],
            brief["lstm"]["learning_rate"], brief["lstm"]["optimizer"]) == (
        [128, 64, 32], 60, 256, 1e-3, "adam")
    assert brief["lstm"]["patience"] > 0  # early stopping
    assert (brief["transformer"]["seq_len"], brief["transformer"]["heads"],
            brief["transformer"]["layers"]) == (120, 4, 2)
    assert brief["transformer"]["warmup_steps"] > 0
    cnn = {**MODEL_KINDS["cnn"].defaults, **brief["cnn"]}
    assert (cnn["seq_len"], len(cnn["features"]), cnn["channels"], cnn["dense"], cnn["dropout"],
            cnn["weight_decay"], cnn["optimizer"], cnn["learning_rate"]) == (
        30, 20, [32, 64], 50, 0.3, 0.01, "rmsprop", 5e-4)


def test_unknown_presets_and_choices_are_named():
    with pytest.raises(ValueError, match="unknown lstm preset 'huge'; known presets: \\['brief'\\]"):
        build_model("lstm", preset="huge")
    with pytest.raises(ValueError, match="lightgbm preset 'brief'; known presets: none"):
        build_model("lightgbm", preset="brief")
    with pytest.raises(ValueError, match="mlp param 'optimizer': must be one of"):
        build_model("mlp", {"optimizer": "sgd"})
    with pytest.raises(ValueError, match="lstm param 'hidden_sizes': must be a non-empty list"):
        build_model("lstm", {"hidden_sizes": []})


def _config(models: dict) -> dict:
    return {"models": models}


def test_config_selects_presets_and_names_bad_ones():
    config = parse_config(_config({"lstm@brief": {"preset": "brief", "params": {"epochs": 2}},
                                   "svm": {}}))
    assert config.models["lstm@brief"].preset == "brief"
    with pytest.raises(ConfigError, match="'models.lstm@big.preset': unknown lstm preset 'big'"):
        parse_config(_config({"lstm@big": {"preset": "big"}}))
    with pytest.raises(ConfigError, match="'models.cnn.params.optimizer': must be one of"):
        parse_config(_config({"cnn": {"params": {"optimizer": "sgd"}}}))
    with pytest.raises(ConfigError, match="'models.cnn.params.features': must be list"):
        parse_config(_config({"cnn": {"params": {"features": "ret_1"}}}))
    with pytest.raises(ConfigError, match="'models.cnn.params.channels': must be list"):
        parse_config(_config({"cnn": {"params": {"channels": [8, "wide"]}}}))
    with pytest.raises(ConfigError, match="'models.lstm.params.epochs': must be between 1 and inf"):
        parse_config(_config({"lstm": {"params": {"epochs": 0}}}))
    with pytest.raises(ConfigError, match="'models.svm.params.valid_fraction': must be between"):
        parse_config(_config({"svm": {"params": {"valid_fraction": 1.0}}}))


def test_threads_are_set_through_the_model_not_its_params():
    model = build_model("xgboost", {"n_estimators": 5})
    assert model.threads == 2
    model.set_threads(1)
    assert (model.threads, model.params["n_jobs"]) == (1, 2)  # what it was trained with stays
    model.set_threads(-1)
    assert model.threads >= 1
    with pytest.raises(ValueError, match="threads"):
        model.set_threads(0)


def test_purged_holdout_drops_rows_whose_label_reaches_the_tail():
    n = 100
    ts = np.arange(n, dtype=np.int64) * BAR_NS
    panel = Panel(X=np.zeros((n, 1)), y=np.zeros(n), ts_ns=ts, symbol=np.zeros(n, np.int32),
                  segment_start=np.zeros(n, np.int64), feature_names=("a",), symbols=("A",),
                  label_end_ns=ts + 5 * BAR_NS)  # each label looks 5 bars ahead
    fit, valid = purged_holdout(panel, np.arange(n), 0.2)
    assert valid.tolist() == list(range(80, 100))
    assert fit.tolist() == list(range(75))  # rows 75..79 see bar 80 or later through y
    no_ends = Panel(**{**vars(panel), "label_end_ns": None})
    assert purged_holdout(no_ends, np.arange(n), 0.2)[0].tolist() == list(range(80))


def test_label_end_survives_concat_and_must_be_all_or_nothing():
    def part(symbol: str, ends: bool) -> Panel:
        ts = np.arange(4, dtype=np.int64)
        return Panel(X=np.zeros((4, 1)), y=np.zeros(4), ts_ns=ts, symbol=np.zeros(4, np.int32),
                     segment_start=np.zeros(4, np.int64), feature_names=("a",), symbols=(symbol,),
                     label_end_ns=ts + 1 if ends else None)

    assert Panel.concat([part("A", True), part("B", True)]).label_end_ns.tolist() == [1, 2, 3, 4] * 2
    with pytest.raises(ValueError, match="label_end_ns"):
        Panel.concat([part("A", True), part("B", False)])
