"""A saved ensemble's signals over sessions it was not trained on, as the train step writes them.

The nightly evaluation backtests the champion and a challenger on the same recent sessions;
both are already fitted and stored, so nothing is refitted here: each model is loaded from
its registry version, the panel's fitted feature columns are recomputed from the ensemble's
own saved feature fit, the meta-learner combines the loaded models' probabilities and the
fold's horizon models give the outlook, exactly the columns ``train_fold`` writes for a test
window. The rows are those a live actor could signal on (complete features and model history).
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from backtests.config import ConfigError
from backtests.signal_outlook import SignalOutlook
from backtests.train import write_signals
from catalog.store import MarketCatalog
from models.dataset import Panel
from models.ensemble import ensemble_probability
from models.horizons import HorizonModels
from models.pipeline import BarColumns, load_fitted, with_fitted
from models.promotion import Ensemble
from models.registry import ModelRegistry
from models.stacking import StackModel, load_saved_model


class FeatureFitMismatchError(ConfigError):
    """The ensemble's models were saved with another feature spec than the config computes
    (the nightly config is not the one the registry was trained with)."""


@dataclass(frozen=True)
class EnsembleSignals:
    """``rows``: panel rows predicted; ``probabilities``: per signal column; ``ensemble``: the
    configured weighted vote of them (what the AUC is computed on)."""

    rows: np.ndarray
    probabilities: dict[str, np.ndarray]
    ensemble: np.ndarray


def predict_saved(
    registry: ModelRegistry,
    ensemble: Ensemble,
    columns: tuple[str, ...],
    weights: Mapping[str, float],
    panel: Panel,
    bars: Mapping[str, BarColumns],
    candidate_rows: np.ndarray,
    outlook: SignalOutlook,
    signal_catalog: MarketCatalog,
) -> EnsembleSignals:
    """Predict ``candidate_rows`` of ``panel`` (built from ``bars`` without fitted columns)
    with ``ensemble``'s ``columns`` (models, then the meta-learner) and write them as MLSignal
    rows into ``signal_catalog``."""
    dirs = {name: registry.path(name, ensemble.versions[name]) for name in columns}
    fitted = load_fitted(next(iter(dirs.values())))
    if fitted.spec != outlook.config.features:
        raise FeatureFitMismatchError(f"ensemble {ensemble.label()} was trained with the feature spec {fitted.spec}, "
                                      f"the config computes {outlook.config.features}")
    panel = with_fitted(panel, bars, fitted)
    loaded = {name: load_saved_model(path) for name, path in dirs.items()}
    models = {n: m for n, m in loaded.items() if not isinstance(m, StackModel)}
    history = max(m.history_bars for m in models.values())
    usable = np.zeros(len(panel), bool)
    usable[panel.usable_rows(history)] = True
    rows = np.asarray(candidate_rows)[usable[candidate_rows]]
    probs = {name: model.predict_proba(panel.select(model.feature_names), rows) for name, model in models.items()}
    for name, model in loaded.items():
        if isinstance(model, StackModel):
            probs[name] = model.combine(probs)
    horizons = HorizonModels.load(registry.root / ensemble.horizons_dir) if ensemble.horizons_dir else None
    view = outlook.of(panel, rows, probs, horizons)
    matrix = np.column_stack([probs[n] for n in columns])
    write_signals(signal_catalog, panel, rows, columns, matrix, view)
    return EnsembleSignals(rows=rows, probabilities=probs, ensemble=ensemble_probability(probs, dict(weights)))

