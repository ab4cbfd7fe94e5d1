"""A walk-forward run with the stacking meta-learner and SHAP feature selection, end to end.

The test config turns both on (they are off in configs/walkforward.yaml). On a planted market
the full run (train, trade, report) must trade the meta-learner's probability, report every
model, the equal-weight vote and the stack per fold, and show the SHAP section; on a random
walk from the same seed the meta-learner must find nothing.
"""

import io
import json
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from backtests.config import load_config
from backtests.train import train
from backtests.walkforward import run_walkforward
from catalog.jobs import generate_catalog
from models.registry import ModelRegistry

pytestmark = pytest.mark.slow

SEED, SYMBOLS, DAYS = 5, 4, 34
# The random walk needs more symbols: with 4, the base models themselves stray to AUC 0.45-0.53
# (few, cross-correlated, overlapping labels), and a meta-learner reading them strays as far.
# With 8, seeds 5, 6, 7 gave every model, the vote and the stack within 0.484-0.519.
NULL_SYMBOLS = 8
FOLDS, TRAIN_DAYS, TEST_DAYS = 2, 12, 10
TOP_K = 12
BASES = ("lightgbm", "xgboost")
PER_FOLD = {*BASES, "stack", "vote", "ensemble"}


def write_config(tmp: Path, catalog: Path, name: str) -> Path:
    config = {
        "name": name,
        "seed": SEED,
        "catalog": {"path": str(catalog)},
        "walk_forward": {"folds": FOLDS, "train_days": TRAIN_DAYS, "test_days": TEST_DAYS, "embargo_days": 1},
        "models": {name: {"params": {"n_estimators": 40, "n_jobs": 1}} for name in BASES},
        "ensemble": {"method": "stack", "inner_folds": 2, "C": 1.0},
        "selection": {"top_k": TOP_K, "inner_folds": 2, "n_estimators": 40},
        "workers": 2,
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_planted_run_trades_the_stack_and_reports_every_model_and_the_shap_views(tmp_path):
    generate_catalog(tmp_path / "catalog", SYMBOLS, DAYS, SEED, 0.25)
    config = load_config(write_config(tmp_path, tmp_path / "catalog", "stacked"))
    assert config.weights() == {"lightgbm": 0.0, "xgboost": 0.0, "stack": 1.0}
    result = run_walkforward(config, tmp_path / "runs", Console(file=io.StringIO()))
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert set(metrics["models"]) == PER_FOLD
    for row in metrics["folds"]:
        assert set(row["models"]) == PER_FOLD
        assert len(row["selection"]["selected"]) == TOP_K
    stack, ensemble = metrics["models"]["stack"], metrics["models"]["ensemble"]
    assert stack["auc"] > 0.55 and ensemble["auc"] == stack["auc"]  # the weights trade the stack alone
    # Two near-identical GBMs leave a meta-learner nothing to add; it may lose at most 0.01 AUC to
    # the better one (observed: stack 0.6914, xgboost 0.6940, vote 0.6924). That it beats an
    # equal-weight vote spoilt by a weak model is tests/models/test_stacking.py's check.
    assert stack["auc"] >= max(metrics["models"][n]["auc"] for n in BASES) - 0.01
    assert metrics["trading"]["trades"] > 0
    registry = ModelRegistry(result.run_dir / "models")
    assert registry.versions("stack") == list(range(1, FOLDS + 1))
    for version, row in enumerate(metrics["folds"], start=1):
        assert registry.meta("lightgbm", version)["features"] == row["selection"]["selected"]
    report = (result.run_dir / "report.html").read_text()
    assert "SHAP feature selection" in report and "Selection stability" in report
    assert "AUC stack" in report and "AUC vote" in report
    print("stacked planted run:", {n: round(m["auc"], 4) for n, m in metrics["models"].items()},
          "trades", metrics["trading"]["trades"], "train s", metrics["run"]["train_seconds"])


def test_random_walk_meta_learner_finds_nothing(tmp_path):
    catalog = generate_catalog(tmp_path / "catalog", NULL_SYMBOLS, DAYS, SEED, 0.0)
    config = load_config(write_config(tmp_path, tmp_path / "catalog", "stacked-null"))
    result = train(config, catalog, catalog.symbols(), tmp_path / "runs")
    for name, m in result.models.items():  # the bases too: else the band says nothing of the data
        assert m["rows"] >= 20_000, (name, m)
        assert abs(m["auc"] - 0.5) <= 0.03, (name, m)
    print("stacked random walk:", {n: round(m["auc"], 4) for n, m in result.models.items()})
