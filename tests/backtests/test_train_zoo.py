"""The train step builds each model from its config entry (kind, preset, params) and records
how long every fit took, in the fold rows and in the registry."""

import numpy as np

from backtests.config import parse_config
from backtests.train import panel_from_bars, read_bars, train_fold
from catalog.jobs import generate_catalog
from catalog.store import MarketCatalog
from models.drift import DriftReference
from models.registry import ModelRegistry
from models.splits import walk_forward_folds


def test_train_fold_applies_presets_and_records_fit_seconds(tmp_path):
    catalog = generate_catalog(tmp_path / "cat", n_symbols=2, n_days=6, seed=3, signal_strength=0.2)
    config = parse_config({
        "walk_forward": {"folds": 1, "train_days": 3, "test_days": 1, "embargo_days": 1},
        "models": {
            "lightgbm": {"params": {"n_estimators": 20}},
            "svm@brief": {"preset": "brief", "params": {"importance_sample": 16}},
            "mlp": {"params": {"epochs": 1, "importance_sample": 16}},
        },
    })
    bars = read_bars(catalog, catalog.symbols())
    panel, label_end = panel_from_bars(bars, config)
    assert np.array_equal(panel.label_end_ns, label_end)  # the models can purge their tails
    (fold,) = walk_forward_folds(panel.ts_ns, n_folds=1, train_days=3, test_days=1, embargo_days=1)
    registry = ModelRegistry(tmp_path / "models")
    row, _, _ = train_fold(fold, panel, label_end, config, registry, MarketCatalog(tmp_path / "sig"), bars)
    for name in config.models:
        assert row["models"][name]["fit_seconds"] > 0
        model, meta = registry.load(name)
        assert meta["fit_seconds"] == row["models"][name]["fit_seconds"]
        assert model.describe()["fit"]["train_rows"] > 0
    svm, _ = registry.load("svm@brief")
    assert svm.params["max_train_rows"] == 20_000  # the brief preset, params on top
    assert svm.fit_info["train_rows"] < row["train_rows"]  # the purged tail calibrates


def test_every_saved_model_carries_the_drift_reference_of_its_training_rows_only(tmp_path):
    catalog = generate_catalog(tmp_path / "cat", n_symbols=2, n_days=6, seed=3, signal_strength=0.2)
    config = parse_config({
        "walk_forward": {"folds": 1, "train_days": 3, "test_days": 1, "embargo_days": 1},
        "models": {"lightgbm": {"params": {"n_estimators": 10}}, "mlp": {"params": {"epochs": 1}}},
    })
    bars = read_bars(catalog, catalog.symbols())
    panel, label_end = panel_from_bars(bars, config)
    (fold,) = walk_forward_folds(panel.ts_ns, n_folds=1, train_days=3, test_days=1, embargo_days=1)
    # The test window's prices jump: a reference cut from any test row would reach them.
    column = panel.feature_names.index("ret_1")
    panel.X[panel.ts_ns >= fold.test_start_ns, column] += 1.0
    registry = ModelRegistry(tmp_path / "models")
    row, _, _ = train_fold(fold, panel, label_end, config, registry, MarketCatalog(tmp_path / "sig"), bars)
    references = [DriftReference.load(registry.path(name)) for name in config.models]
    assert references[0] == references[1] and set(references[0].features) == set(panel.feature_names)
    ret = references[0].features["ret_1"]
    assert ret.edges[-1] < 0.5 and 0 < ret.rows <= row["train_rows"]
    [drift] = references[0].compare(panel.X[panel.ts_ns >= fold.test_start_ns][:, [column]], ["ret_1"])
    assert drift.level == "significant"
