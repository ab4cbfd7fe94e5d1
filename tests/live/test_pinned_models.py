"""Live trades the registry's pinned champion, never merely its newest versions: a registry
nobody pinned gets its newest ensemble pinned once (logged, in the history), and a version
saved later (tonight's challenger) changes nothing until it is promoted."""

import logging
from pathlib import Path

import pytest
import yaml

from live.settings import LiveConfigError, load_live_config
from models.promotion import PromotionStore, find_ensembles
from models.registry import ModelRegistry
from tests.models.test_promotion import NAMES, save_fold


def live_yaml(tmp_path: Path, registry: Path, weights=NAMES) -> Path:
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump({"models": {"registry": str(registry)},
                                    "strategy": {"weights": dict.fromkeys(weights, 1.0)}}))
    return path


def test_live_loads_the_pinned_champion_after_a_newer_version_is_saved(tmp_path, caplog):
    registry = ModelRegistry(tmp_path / "models")
    save_fold(registry, 0, horizons=True)
    (registry.root / "outlook.json").write_text('{"volatility_feature": "rv_60", "horizon": 15, '
                                                '"horizons_dir": "horizons/fold-0"}')
    with caplog.at_level(logging.WARNING, logger="live.settings"):
        config = load_live_config(live_yaml(tmp_path, registry.root))
    assert "had no champion: pinned fold 0" in caplog.text
    assert [d.action for d in PromotionStore(registry.root).history()] == ["pin"]
    pinned = {n: registry.path(n, 1) for n in NAMES}
    assert config.model_dirs() == pinned

    save_fold(registry, 1, horizons=True)  # tonight's challenger; its fit rewrites the outlook spec
    (registry.root / "outlook.json").write_text('{"volatility_feature": "rv_60", "horizon": 15, '
                                                '"horizons_dir": "horizons/fold-1"}')
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="live.settings"):
        again = load_live_config(live_yaml(tmp_path, registry.root))
    assert caplog.text == ""  # pinned once
    assert registry.latest("lightgbm") == 2
    assert again.model_dirs() == pinned
    assert again.outlook_fields()["horizons_dir"] == str(registry.root / "horizons" / "fold-0")

    PromotionStore(registry.root).promote(find_ensembles(registry)[1], "test", None)
    assert again.model_dirs() == {n: registry.path(n, 2) for n in NAMES}
    assert again.outlook_fields()["horizons_dir"] == str(registry.root / "horizons" / "fold-1")


def test_weights_the_champion_lacks_are_refused(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    save_fold(registry, 0)
    save_fold(registry, 1, names=("lightgbm", "xgboost", "lstm"))
    PromotionStore(registry.root).pin(find_ensembles(registry)[0], "test")
    with pytest.raises(LiveConfigError, match=r"'strategy.weights' names \['lstm'\], which the champion fold 0"):
        load_live_config(live_yaml(tmp_path, registry.root, weights=("lightgbm", "xgboost", "lstm")))
