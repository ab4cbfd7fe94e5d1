"""The Models page's registry side (live.operations.model_board): roles and evidence, the
decision history, and pin/promote/rollback doing what `sextant models` does."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from live.operations.model_board import (
    CHALLENGER,
    CHAMPION,
    EARLIER,
    decision_history,
    ensembles_with_roles,
    pin_fold,
    promote_fold,
    rollback,
)
from models.promotion import Decision, PromotionError, PromotionStore, find_ensembles
from models.registry import ModelRegistry
from sextant.cli import app
from tests.models.test_promotion import evidence, save_fold


@pytest.fixture
def root(tmp_path: Path) -> Path:
    registry = ModelRegistry(tmp_path / "models")
    for fold in range(3):
        save_fold(registry, fold)
    return registry.root


def without_times(path: Path) -> dict:
    state = json.loads(path.read_text())
    for decision in state["history"]:
        decision.pop("at")
    return state


def test_roles_and_the_latest_evidence_of_each_challenger(root: Path):
    store = PromotionStore(root)
    ensembles = find_ensembles(ModelRegistry(root))
    store.pin(ensembles[1], "pinned")
    store.record(Decision(
        action="refuse", reason="not better", at="2024-12-27T22:00:00", champion=ensembles[1],
        previous=ensembles[1], challenger=ensembles[2], evidence=evidence(1.0, 0.9)))
    rows = ensembles_with_roles(root)
    assert [(r["fold"], r["role"]) for r in rows] == [(2, CHALLENGER), (1, CHAMPION), (0, EARLIER)]
    assert rows[0]["evaluation"]["passes"] is False and rows[0]["evaluation"]["against"] == 1
    assert rows[0]["evaluation"]["challenger_value"] == 0.9
    assert rows[0]["evaluation"]["sessions"] == "2024-12-20..2024-12-23"
    assert rows[1]["evaluation"] is None and rows[1]["members"] == "lightgbm v0002, xgboost v0002"
    assert [d["action"] for d in decision_history(root, 10)] == ["refuse", "pin"]  # newest first


def test_a_pin_from_the_page_writes_promotion_json_as_sextant_models_pin_does(root: Path, tmp_path: Path):
    by_cli = tmp_path / "cli-models"
    shutil.copytree(root, by_cli)
    pin_fold(root, 1)
    result = CliRunner().invoke(app, ["models", "pin", "lightgbm", "2", "--registry", str(by_cli)])
    assert result.exit_code == 0, result.output
    assert without_times(root / "promotion.json") == without_times(by_cli / "promotion.json")
    assert PromotionStore(root).champion().fold == 1


def test_promote_needs_evidence_or_force_and_rollback_needs_a_previous_champion(root: Path):
    pin_fold(root, 0)
    with pytest.raises(PromotionError, match="never evaluated"):
        promote_fold(root, 2, force=False)
    assert promote_fold(root, 2, force=True).forced
    assert PromotionStore(root).champion().fold == 2
    assert rollback(root).champion.fold == 0
    with pytest.raises(PromotionError, match="no previous champion"):
        rollback(root)
    with pytest.raises(PromotionError, match="no ensemble of fold 7"):
        pin_fold(root, 7)
