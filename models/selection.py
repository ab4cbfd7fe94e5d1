"""SHAP feature selection inside a training window: keep the features whose attribution is stable.

A reference XGBoost model, fitted for the purpose, is refit on each inner training window of an
anchored, purged walk-forward over the outer fold's training rows (``models.splits.inner_splits``)
and explains the inner test window after it with exact tree SHAP (XGBoost's native
``pred_contribs``). Attributions are measured out of sample, on rows the reference model did not
fit, so a feature the trees merely memorised scores low. Each feature's share of the mean |SHAP|
is ranked per inner split; the ``top_k`` features that most often rank within the top ``top_k``
(ties broken by the mean share) are selected. Only the rows handed in are read, so nothing after
the training window (its embargo, its test window) can influence the choice: a feature that
becomes predictive only later is not selected, and the fold's models train on the selected
columns (``Panel.select``), which become their saved ``feature_names``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import numpy as np
from msgspec import Meta

from models.dataset import Panel
from models.splits import inner_splits

_BEESWARM_ROWS = 100  # explained rows kept per fold for the report's distribution plot
_BEESWARM_FEATURES = 10


class SelectionConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``top_k``: features kept per fold (all of them when the panel has fewer);
    ``inner_folds``: inner walk-forward splits of the training window the stability is
    measured over; ``n_estimators``/``max_depth``: the reference XGBoost model;
    ``explain_rows``: at most this many inner test rows are explained per split (a seeded
    sample; tree SHAP costs trees x depth per row)."""

    top_k: Annotated[int, Meta(ge=1)] = 20
    inner_folds: Annotated[int, Meta(ge=2, le=10)] = 3
    n_estimators: Annotated[int, Meta(ge=10, le=2000)] = 100
    max_depth: Annotated[int, Meta(ge=1, le=12)] = 4
    explain_rows: Annotated[int, Meta(ge=100)] = 20_000


@dataclass(frozen=True)
class FeatureSelection:
    """``shares[s, j]``: feature j's share of the mean |SHAP| on inner split s's test rows;
    ``ranks`` the same as 1-based ranks (1 = most important); ``selected``: the kept features
    in panel column order. ``sample_shap``/``sample_values``: SHAP values and raw feature values
    of a few explained rows of the last split, for the report's distribution plot."""

    features: tuple[str, ...]
    selected: tuple[str, ...]
    shares: np.ndarray
    ranks: np.ndarray
    sample_shap: np.ndarray
    sample_values: np.ndarray

    def summary(self) -> dict[str, Any]:
        """JSON-ready, what a fold row of metrics.json carries and the report reads."""
        top = np.argsort(-self.shares.mean(axis=0), kind="stable")[:_BEESWARM_FEATURES]
        return {
            "selected": list(self.selected),
            "features": list(self.features),
            "shares": np.round(self.shares, 6).tolist(),
            "ranks": self.ranks.tolist(),
            "sample": {
                "features": [self.features[j] for j in top],
                "shap": np.round(self.sample_shap[:, top], 6).tolist(),
                "values": np.round(self.sample_values[:, top], 6).tolist(),
            },
        }


def select_features(
    panel: Panel, rows: np.ndarray, label_end_ns: np.ndarray, config: SelectionConfig, embargo_days: int, seed: int
) -> FeatureSelection:
    """The stable top-``top_k`` features of ``panel`` judged on the training rows ``rows`` only
    (labelled, purged by the outer fold)."""
    import xgboost as xgb  # imported here: the config check and the live actor never select

    rng = np.random.default_rng(seed)
    shares, sample_shap, sample_values = [], np.empty((0, 0)), np.empty((0, 0))
    for train, test in inner_splits(panel.ts_ns, label_end_ns, rows, config.inner_folds, embargo_days):
        if len(train) == 0 or len(test) == 0:
            continue  # an inner window without usable rows
        booster = xgb.train(
            {"objective": "binary:logistic", "tree_method": "hist", "eta": 0.1, "max_depth": config.max_depth,
             "min_child_weight": 50.0, "subsample": 0.8, "lambda": 10.0, "nthread": 2, "seed": seed},
            xgb.DMatrix(panel.X[train], panel.y[train]), config.n_estimators)
        if len(test) > config.explain_rows:
            test = np.sort(rng.choice(test, config.explain_rows, replace=False))
        contribs = booster.predict(xgb.DMatrix(panel.X[test]), pred_contribs=True)[:, :-1]  # last: bias
        magnitude = np.abs(contribs).mean(axis=0, dtype=np.float64)
        total = magnitude.sum()
        shares.append(magnitude / total if total > 0 else magnitude)
        keep = np.sort(rng.choice(len(test), min(_BEESWARM_ROWS, len(test)), replace=False))
        sample_shap, sample_values = contribs[keep], panel.X[test][keep]
    if not shares:
        raise ValueError(f"no inner split of the {len(rows)} training rows has both train and test rows")
    share = np.vstack(shares)
    ranks = _ranks(share)
    k = min(config.top_k, len(panel.feature_names))
    hits = (ranks <= k).sum(axis=0)
    # Most often in the top k first, then the larger mean share, then column order.
    order = np.lexsort((np.arange(share.shape[1]), -share.mean(axis=0), -hits))
    chosen = np.sort(order[:k])
    return FeatureSelection(
        features=panel.feature_names,
        selected=tuple(panel.feature_names[j] for j in chosen),
        shares=share,
        ranks=ranks,
        sample_shap=sample_shap.astype(np.float64),
        sample_values=sample_values.astype(np.float64),
    )


def _ranks(share: np.ndarray) -> np.ndarray:
    """1-based rank of each feature within each split (row), largest share first, ties by column."""
    order = np.argsort(-share, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, share.shape[1] + 1)[None, :].repeat(len(share), 0), axis=1)
    return ranks
