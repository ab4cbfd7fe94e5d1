"""ModelRegistry versioning, atomic writes and errors; data_hash fingerprints."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import models.registry as registry_module
from models.registry import ModelNotFoundError, ModelRegistry, UniverseError, data_hash
from models.zoo import build_model
from models.zoo.base import SignalModel
from tests.models.test_zoo import synthetic_panel

META = {
    "train_start": "2024-01-02T14:30:00+00:00",
    "train_end": "2024-06-28T20:00:00+00:00",
    "fold": 0,
    "metrics": {"auc": np.float64(0.61)},
    "data_hash": "abc",
    "universe": ["S000", "S001"],
}


@pytest.fixture(scope="module")
def panel():
    return synthetic_panel(n_bars=400)


@pytest.fixture(scope="module")
def model(panel) -> SignalModel:
    m = build_model("lightgbm", {"n_estimators": 20}, name="lgb_test")
    m.fit(panel, panel.usable_rows(require_label=True), seed=0)
    return m


def test_versions_increment_and_meta_is_complete(tmp_path, model, panel):
    reg = ModelRegistry(tmp_path)
    first = reg.save(model, META)
    second = reg.save(model, {**META, "fold": 1})
    assert (first.version, second.version) == (1, 2)
    assert second.path == tmp_path / "lgb_test" / "v0002"
    assert reg.versions("lgb_test") == [1, 2] and reg.latest("lgb_test") == 2

    loaded, meta = reg.load("lgb_test")  # latest
    assert meta["fold"] == 1 and meta["version"] == 2
    assert meta["kind"] == "lightgbm" and meta["params"]["n_estimators"] == 20
    assert meta["features"] == list(panel.feature_names)
    assert meta["metrics"] == {"auc": 0.61} and meta["sextant_version"]
    assert meta["created_at"].endswith("+00:00")
    rows = panel.usable_rows()
    np.testing.assert_array_equal(
        loaded.predict_proba(panel, rows), model.predict_proba(panel, rows)
    )
    assert reg.load("lgb_test", 1)[1]["fold"] == 0
    assert reg.names() == ["lgb_test"]
    assert reg.path("lgb_test") == second.path and reg.path("lgb_test", 1) == first.path


def test_missing_names_and_versions_raise_clear_errors(tmp_path, model):
    reg = ModelRegistry(tmp_path)
    assert reg.versions("nope") == []
    with pytest.raises(ModelNotFoundError, match="no versions of model 'nope'"):
        reg.load("nope")
    reg.save(model, META)
    with pytest.raises(ModelNotFoundError, match=r"no version 7; available: \[1\]"):
        reg.load("lgb_test", 7)
    with pytest.raises(ValueError, match="int or 'latest'"):
        reg.load("lgb_test", "1")
    with pytest.raises(ValueError, match="path-safe"):
        reg.load("../lgb_test")


def test_meta_must_have_required_and_no_reserved_keys(tmp_path, model):
    reg = ModelRegistry(tmp_path)
    with pytest.raises(ValueError, match=r"missing required keys \['data_hash'\]"):
        reg.save(model, {k: v for k, v in META.items() if k != "data_hash"})
    with pytest.raises(ValueError, match=r"\['kind'\] are set by the registry"):
        reg.save(model, {**META, "kind": "other"})
    assert reg.versions("lgb_test") == []


def test_failed_write_leaves_no_version_and_no_temp_dir(tmp_path, model):
    reg = ModelRegistry(tmp_path)
    reg.save(model, META)
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        reg.save(model, {**META, "metrics": {"bad": object()}})
    assert reg.versions("lgb_test") == [1]
    assert sorted(p.name for p in (tmp_path / "lgb_test").iterdir()) == ["v0001"]


def test_incomplete_version_dirs_are_invisible(tmp_path, model):
    reg = ModelRegistry(tmp_path)
    (tmp_path / "lgb_test" / "v0005").mkdir(parents=True)  # e.g. a hand-made leftover
    (tmp_path / "lgb_test" / ".tmp-crashed").mkdir()
    assert reg.versions("lgb_test") == []
    assert reg.save(model, META).version == 1


def test_concurrent_writer_taking_the_number_bumps_the_version(tmp_path, model, monkeypatch):
    reg = ModelRegistry(tmp_path)
    real_rename = os.rename
    raced = []

    def rename_after_a_rival(src, dst):
        if not raced:  # another process claims the same number just before us
            os.makedirs(dst)
            (dst / "meta.json").write_text(json.dumps({"rival": True}))
            raced.append(dst)
        real_rename(src, dst)

    monkeypatch.setattr(registry_module.os, "rename", rename_after_a_rival)
    record = reg.save(model, META)
    assert raced == [tmp_path / "lgb_test" / "v0001"]
    assert record.version == 2 and reg.versions("lgb_test") == [1, 2]
    assert json.loads((record.path / "meta.json").read_text())["version"] == 2


def test_data_hash_covers_bytes_dtype_shape_and_order():
    a = np.arange(12, dtype=np.float32)
    b = np.ones(3, np.int64)
    h = data_hash(a, b)
    assert h == data_hash(a.copy(), b.copy()) and len(h) == 64
    assert h != data_hash(b, a)
    assert h != data_hash(a.reshape(3, 4), b)
    assert h != data_hash(a.view(np.int32), b)
    a2 = a.copy()
    a2[5] += 1
    assert h != data_hash(a2, b)
    strided = np.arange(24, dtype=np.float32)[::2]
    assert data_hash(strided) == data_hash(np.ascontiguousarray(strided))
    with pytest.raises(ValueError, match="object"):
        data_hash(np.array(["x", None], dtype=object))


def test_the_trained_universe_is_recorded_and_must_agree(tmp_path, model, panel):
    reg = ModelRegistry(tmp_path)
    reg.save(model, META)
    assert reg.meta("lgb_test")["universe"] == ["S000", "S001"]
    assert reg.trained_universe(["lgb_test"]) == ["S000", "S001"]
    other = build_model("lightgbm", {"n_estimators": 5}, name="lgb_other")
    other.fit(panel, panel.usable_rows(require_label=True), seed=0)
    reg.save(other, {**META, "universe": ["SPY"]})
    with pytest.raises(UniverseError, match=r"different universes \(lgb_test: S000, S001; lgb_other: SPY\)"):
        reg.trained_universe(["lgb_test", "lgb_other"])
    with pytest.raises(ValueError, match="universe"):
        reg.save(model, {k: v for k, v in META.items() if k != "universe"})
