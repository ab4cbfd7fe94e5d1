"""Walk-forward honesty with every feature block on: on a random walk the new blocks (multi-
timeframe, VaR, beta, GARCH and copula fitted per fold) must not manufacture an edge, and on a
planted market the models must still find it. Tiny data: 4 symbols, 16 sessions, 2 folds."""

import numpy as np
import pytest

from backtests.config import parse_config
from backtests.train import train
from catalog.jobs import generate_catalog
from catalog.store import MarketCatalog
from models.pipeline import feature_names, load_fitted
from models.registry import ModelRegistry

pytestmark = pytest.mark.slow

BLOCKS = {"timeframes": ["5m", "30m", "1h", "1d"],
          "risk": {"garch": True, "var": True, "beta": True, "copula": True}}


def _train(tmp_path, strength: float):
    path = tmp_path / f"catalog-{strength}"
    generate_catalog(path, n_symbols=4, n_days=16, seed=3, signal_strength=strength)
    config = parse_config({
        "seed": 3, "catalog": {"path": str(path)}, "features": BLOCKS,
        "walk_forward": {"folds": 2, "train_days": 5, "test_days": 3, "embargo_days": 1},
        "models": {"lightgbm": {"params": {"n_estimators": 60}}},
    })
    catalog = MarketCatalog(path)
    return config, train(config, catalog, catalog.symbols(), tmp_path / f"runs-{strength}")


def test_random_walk_with_every_block_has_no_edge(tmp_path) -> None:
    config, result = _train(tmp_path, 0.0)
    metrics = result.models["lightgbm"]
    assert metrics["rows"] > 4000
    print(f"\nrandom walk, every block on: {metrics}")
    assert abs(metrics["auc"] - 0.5) <= 0.03, metrics
    # Every fold saved its own fitted blocks next to its model, with the spec it was built on.
    registry = ModelRegistry(result.run.run_dir / "models")
    fits = [load_fitted(registry.path("lightgbm", v)) for v in registry.versions("lightgbm")]
    assert len(fits) == 2 and fits[0] != fits[1]
    assert all(f.spec == config.features and len(f.garch) == len(f.copula) == 4 for f in fits)
    assert registry.meta("lightgbm")["features"] == list(feature_names(config.features))


def test_planted_edge_is_still_found_with_every_block(tmp_path) -> None:
    _, result = _train(tmp_path, 0.25)
    print(f"\nplanted 0.25, every block on: {result.models['lightgbm']}")
    assert result.models["lightgbm"]["auc"] > 0.55
    assert np.isfinite(list(result.importance.values())).all()
