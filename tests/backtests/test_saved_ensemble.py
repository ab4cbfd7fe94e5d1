"""A saved ensemble predicting a window from its registry files writes the very MLSignal rows
the train step wrote for that window when it fitted the ensemble: the nightly evaluation
trades the champion's and the challenger's real signals, not a re-implementation's. The
fold's GARCH fit, SHAP selection, meta-learner and horizon models are all in play."""

import numpy as np
import pyarrow as pa
import pytest

from backtests.config import parse_config
from backtests.saved_ensemble import FeatureFitMismatchError, predict_saved
from backtests.signal_outlook import SignalOutlook
from backtests.train import panel_from_bars, read_bars, train_fold
from catalog.jobs import generate_catalog
from catalog.store import MarketCatalog
from models.promotion import find_ensembles
from models.registry import ModelRegistry
from models.splits import test_rows as window_rows
from models.splits import walk_forward_folds
from strategies.signals import MLSignal

CONFIG = {
    "walk_forward": {"folds": 1, "train_days": 6, "test_days": 2, "embargo_days": 1},
    "models": {"lightgbm": {"params": {"n_estimators": 20}}, "xgboost": {"params": {"n_estimators": 20}}},
    "ensemble": {"method": "stack", "inner_folds": 2},
    "features": {"risk": {"garch": True}},
    "selection": {"top_k": 12, "inner_folds": 2},
    "horizons": {"bars": [1, 5], "trade": 5},
}
IDS = ["S000.ALPACA", "S001.ALPACA"]


def table(catalog: MarketCatalog) -> pa.Table:
    return catalog.read_table(MLSignal, IDS).sort_by([("instrument_id", "ascending"), ("ts_init", "ascending")])


@pytest.mark.slow  # the GARCH fit, the SHAP selection and the stack's inner folds: ~25 s on 2 busy cores
def test_the_saved_ensemble_reproduces_the_train_steps_signals(tmp_path):
    catalog = generate_catalog(tmp_path / "catalog", n_symbols=2, n_days=9, seed=5, signal_strength=0.3)
    config = parse_config(CONFIG)
    bars = read_bars(catalog, catalog.symbols())
    panel, label_end = panel_from_bars(bars, config)
    (fold,) = walk_forward_folds(panel.ts_ns, 1, 6, 2, 1)
    outlook = SignalOutlook.prepare(config, catalog, catalog.symbols(), [fold], panel.feature_names)
    registry = ModelRegistry(tmp_path / "models")
    trained = MarketCatalog(tmp_path / "trained")
    train_fold(fold, panel, label_end, config, registry, trained, bars, outlook)
    (ensemble,) = find_ensembles(registry)
    assert set(ensemble.versions) == {"lightgbm", "xgboost", "stack"} and ensemble.horizons_dir == "horizons/fold-0"

    replayed = MarketCatalog(tmp_path / "replayed")
    signals = predict_saved(registry, ensemble, config.signal_columns(), config.weights(), panel, bars,
                            window_rows(panel.ts_ns, fold), outlook, replayed)
    expected, got = table(trained), table(replayed)
    assert expected.num_rows == got.num_rows == len(signals.rows) > 500
    assert expected.column_names == got.column_names
    for name in expected.column_names:
        assert expected.column(name).equals(got.column(name)), name
    assert np.all((panel.ts_ns[signals.rows] >= fold.test_start_ns) & (panel.ts_ns[signals.rows] < fold.test_end_ns))

    other = parse_config({**CONFIG, "features": {"risk": {"garch": False}}})
    with pytest.raises(FeatureFitMismatchError, match="feature spec"):
        predict_saved(registry, ensemble, other.signal_columns(), other.weights(), panel, bars,
                      window_rows(panel.ts_ns, fold), SignalOutlook.prepare(other, catalog, catalog.symbols(), [fold],
                                                                          panel.feature_names),
                      MarketCatalog(tmp_path / "other"))
