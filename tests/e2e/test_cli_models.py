"""`sextant models list|promote|pin|rollback` through the real CLI: the champion is marked,
a challenger's evidence is shown, the guard refuses a promotion unless --force, pin and
rollback move the champion, and an unknown name or version is one line with exit code 2."""

import datetime as dt
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from backtests.config import parse_config
from backtests.nightly import NightlyInputs, train_challenger
from catalog.jobs import generate_catalog
from models.promotion import Decision, PromotionStore, find_ensembles, utc_now
from models.registry import ModelRegistry
from sextant.cli import app
from tests.e2e.test_cli import squash
from tests.models.test_promotion import evidence, save_fold

runner = CliRunner()


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """Fold 0 pinned; fold 1 judged and refused (1.5 Sharpe against 0.5); fold 2 not judged."""
    reg = ModelRegistry(tmp_path / "models")
    for fold in range(3):
        save_fold(reg, fold)
    store = PromotionStore(reg.root)
    first, second, _ = find_ensembles(reg)
    store.pin(first, "by hand")
    store.record(Decision(action="refuse", reason="lost", at=utc_now(), as_of="2024-12-23", champion=first,
                          previous=first, challenger=second, evidence=evidence(1.5, 0.5)))
    return reg.root


def sextant(*args: str):
    return runner.invoke(app, [*args], catch_exceptions=False, env={"COLUMNS": "200"})


def test_list_marks_the_champion_and_shows_each_challengers_evidence(registry):
    result = sextant("models", "list", "--registry", str(registry))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.split()[:3] == ["0", "*", "champion"] for line in lines)
    (judged,) = [line for line in lines if line.split()[:2] == ["1", "challenger"]]
    assert "refuse vs fold 0: sharpe 0.5 vs 1.5 (margin 0, 2024-12-20..2024-12-23)" in judged
    assert [line.split()[:2] for line in lines if line.split()[:2] == ["2", "challenger"]]
    assert "pin fold 0" in result.output and "refuse fold 1" in result.output


def test_promote_shows_the_evidence_and_needs_force_when_the_guard_says_no(registry):
    refused = sextant("models", "promote", "lightgbm", "2", "--registry", str(registry))
    assert refused.exit_code == 2
    assert "sharpe (guard)" in refused.output and "challenger fold 1" in refused.output
    assert "theguardrefusesfold1" in squash(refused.output) and "--forcepromotesitanyway" in squash(refused.output)
    assert PromotionStore(registry).champion().fold == 0
    unjudged = sextant("models", "promote", "xgboost", "3", "--registry", str(registry))
    assert unjudged.exit_code == 2 and "neverevaluated" in squash(unjudged.output)

    forced = sextant("models", "promote", "lightgbm", "2", "--registry", str(registry), "--force")
    assert forced.exit_code == 0, forced.output
    assert "promote (forced) fold 1" in forced.output
    assert PromotionStore(registry).champion().fold == 1


def test_pin_then_rollback_restores_the_previous_champion(registry):
    pinned = sextant("models", "pin", "xgboost", "3", "--registry", str(registry))
    assert pinned.exit_code == 0 and "pin fold 2" in pinned.output
    assert PromotionStore(registry).champion().versions == {"lightgbm": 3, "xgboost": 3}
    rolled = sextant("models", "rollback", "--registry", str(registry))
    assert rolled.exit_code == 0 and "champion: fold 0" in rolled.output
    again = sextant("models", "rollback", "--registry", str(registry))
    assert again.exit_code == 2 and "no previous champion" in again.output
    assert [d.action for d in PromotionStore(registry).history()] == ["pin", "refuse", "pin", "rollback"]


@pytest.mark.parametrize(("args", "message"), [
    (["pin", "gru", "1"], "no model 'gru' in"),
    (["pin", "../models", "1"], "no model '../models' in"),
    (["promote", "lightgbm", "9"], "model 'lightgbm' has no version 9; available: [1, 2, 3]"),
    (["pin", "xgboost", "0"], "model 'xgboost' has no version 0"),
])
def test_an_unknown_name_or_version_is_one_line_and_exit_2(registry, args, message):
    result = sextant("models", *args, "--registry", str(registry))
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert [d.action for d in PromotionStore(registry).history()] == ["pin", "refuse"]


def test_a_directory_without_models_is_refused(tmp_path):
    result = sextant("models", "list", "--registry", str(tmp_path / "nowhere"))
    assert result.exit_code == 2 and "no saved models there" in result.output


def test_retrain_pins_an_unpinned_registry_trains_tonights_challenger_and_says_why_it_waits(tmp_path):
    catalog = generate_catalog(tmp_path / "catalog", n_symbols=2, n_days=7, seed=3, signal_strength=0.3)
    raw = {"name": "nightly", "catalog": {"path": str(catalog.path)},
           "walk_forward": {"folds": 1, "train_days": 3, "test_days": 1, "embargo_days": 1},
           "models": {"lightgbm": {"params": {"n_estimators": 10}}}, "promotion": {"evaluation_sessions": 2}}
    (tmp_path / "nightly.yaml").write_text(yaml.safe_dump(raw))
    registry = ModelRegistry(tmp_path / "models")  # sessions 12-20, 23, 24, 26, 27, 30, 31
    train_challenger(NightlyInputs.prepare(parse_config(raw), catalog, dt.date(2024, 12, 26)), registry, tmp_path)
    result = sextant("models", "retrain", str(tmp_path / "nightly.yaml"), "--registry", str(registry.root),
                     "--as-of", "2024-12-30", "--out", str(tmp_path / "nightly"))
    assert result.exit_code == 0, result.output
    text = squash(result.output)
    assert "waitfold1(lightgbmv0002)" in text and "has0ofthe2sessions" in text
    assert "trainedtonight:fold1(lightgbmv0002)" in text
    assert [d.action for d in PromotionStore(registry.root).history()] == ["pin", "wait"]
    assert PromotionStore(registry.root).champion().fold == 0
    bad = sextant("models", "retrain", str(tmp_path / "nightly.yaml"), "--registry", str(registry.root),
                  "--as-of", "30/12/2024")
    assert bad.exit_code == 2 and "--as-of '30/12/2024' is not a date" in bad.output
