"""Streaming parity with a feature selection and the stacking meta-learner.

The batch side is ``train_fold`` with ``selection`` (SHAP, inside the train window) and
``ensemble.method: stack``; the live side is the real SignalActor in a real BacktestEngine,
fed the same bars through the harness of ``test_actor_parity`` (its ``live`` fixture runs on
this module's ``batch``). Each model must read its own selected columns by name and the
meta-learner must combine the live base probabilities of the same bar exactly as the batch path
combined the batch ones.
"""

from dataclasses import dataclass

import numpy as np
import pytest

from backtests.config import BacktestConfig, CatalogConfig, ModelConfig
from backtests.train import panel_from_bars, read_bars, train_fold
from catalog.store import MarketCatalog
from catalog.synthetic import generate_market
from models.ensemble import STACK_NAME, EnsembleConfig
from models.registry import ModelRegistry
from models.selection import SelectionConfig
from models.splits import walk_forward_folds
from strategies.settings import StrategySettings
from tests.strategies.test_actor_parity import WALK_FORWARD, Batch, _signals_of, live  # noqa: F401 (fixture)

SEED = 13
BASES = ("lightgbm", "xgboost")
TOP_K = 8
TOLERANCE = 1e-12  # tree sums are bit-identical on one thread; the meta-learner's arithmetic is the same per row


@dataclass
class Trained:
    batch: Batch
    fold_row: dict  # train_fold's report row
    registry: ModelRegistry


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Trained:
    root = tmp_path_factory.mktemp("actor-parity-stack")
    market = generate_market(n_symbols=2, n_days=8, seed=SEED, signal_strength=0.2)
    catalog = MarketCatalog(root / "catalog")
    for symbol, frame in market.bars.items():
        catalog.write_bars(symbol, frame, sector=market.sectors[symbol])
    config = BacktestConfig(
        seed=SEED,
        catalog=CatalogConfig(path=root / "catalog"),
        walk_forward=WALK_FORWARD,
        models={name: ModelConfig(params={"n_estimators": 30, "n_jobs": 1}) for name in BASES},
        ensemble=EnsembleConfig(method="stack", inner_folds=2),
        selection=SelectionConfig(top_k=TOP_K, inner_folds=2, n_estimators=20),
        strategy=StrategySettings(weights={"lightgbm": 0.0, "xgboost": 0.0, STACK_NAME: 1.0}),
    )
    bars = read_bars(catalog, catalog.symbols())
    panel, label_end = panel_from_bars(bars, config)
    (fold,) = walk_forward_folds(panel.ts_ns, n_folds=1, train_days=WALK_FORWARD.train_days,
                                 test_days=WALK_FORWARD.test_days, embargo_days=WALK_FORWARD.embargo_days)
    registry = ModelRegistry(root / "models")
    row, preds, _ = train_fold(fold, panel, label_end, config, registry, MarketCatalog(root / "signals"), bars)
    model_dirs = {name: str(registry.path(name)) for name in (*BASES, STACK_NAME)}
    return Trained(Batch(market.bars, market.sectors, {}, preds, model_dirs, history_bars=1, config=config,
                         horizons_dir=None), row, registry)


@pytest.fixture(scope="module")
def batch(trained: Trained) -> Batch:
    return trained.batch


@pytest.mark.slow
def test_saved_models_carry_the_selection_and_the_meta_learner_its_inputs(trained: Trained) -> None:
    registry, fold_row = trained.registry, trained.fold_row
    selected = fold_row["selection"]["selected"]
    assert len(selected) == TOP_K
    for name in BASES:
        model, meta = registry.load(name)
        assert list(model.feature_names) == selected == meta["features"]
    stack, meta = registry.load(STACK_NAME)
    assert stack.feature_names == BASES and meta["kind"] == STACK_NAME
    # Fitted on out-of-fold rows of the training window: no label reaches past its end.
    assert meta["fitted"]["last_label_end"] < meta["train_end"]
    assert set(fold_row["models"]) == {*BASES, STACK_NAME, "vote", "ensemble"}
    assert set(fold_row["stack_weights"]) == set(BASES)


@pytest.mark.slow
def test_live_models_and_meta_learner_equal_the_batch_rows(batch: Batch, live) -> None:  # noqa: F811
    names = (*BASES, STACK_NAME)
    worst = dict.fromkeys(names, 0.0)
    for symbol in batch.bars:
        signals, _ = _signals_of(live, symbol)
        assert {s.models for s in signals} == {",".join(names)}
        by_ts = {s.ts_event: s for s in signals}
        preds = batch.preds[batch.preds["symbol"] == symbol]
        assert len(preds) >= 700
        live_probs = np.array([by_ts[ts].probabilities for ts in preds["ts"]])
        for j, name in enumerate(names):
            worst[name] = max(worst[name], float(np.abs(live_probs[:, j] - preds[name].to_numpy()).max()))
    print(f"\nstacked streaming parity, max differences: {worst}")
    assert max(worst.values()) <= TOLERANCE, worst
