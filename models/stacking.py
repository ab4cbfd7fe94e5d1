"""Stacking: a regularised logistic regression on the base models' out-of-fold probabilities.

scikit-learn's ``StackingClassifier`` cross-validates with k-fold splits, which on a time series
trains base models on the future of the rows whose probabilities the meta-learner then learns
from (scikit-learn#8043). Here the out-of-fold probabilities come from an inner, purged,
anchored walk-forward over the outer fold's training window (``models.splits.inner_splits``):
every base model is refit on each inner training window and predicts the inner test window
after it, and the meta-learner is fitted on those predictions only. The base models that
trade are still the ones fitted on the whole training window; the meta-learner combines their
probabilities as it learnt to combine the out-of-fold ones.

The meta-learner is a ``SignalModel`` whose features are the base models' probabilities (its
``feature_names`` are their names), so the registry saves it like any model, and the batch
path and the live actor both compute it with ``StackModel.combine`` from the base
probabilities of the same bar. Its output is one more probability, ``STACK_NAME``, in the
MLSignal: the strategy's weights pick it, so trading needs no new path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from models.dataset import Panel
from models.ensemble import STACK_NAME, EnsembleConfig
from models.splits import inner_splits
from models.zoo import SignalModel, load_model
from models.zoo.base import read_header

_EPS = 1e-6  # probabilities are clipped to [eps, 1 - eps] before the logit


class StackModel(SignalModel):
    """P(y=1) = sigmoid(b + sum_i w_i * logit(p_i)) over the base probabilities p_i.

    The weights live in the logit space so a confident model can outvote an unsure one; L2
    regularisation (``C``) keeps them small when the out-of-fold rows say little.
    """

    kind = STACK_NAME
    DEFAULTS = MappingProxyType({"C": 1.0, "n_jobs": 1})  # a handful of columns: one thread

    def __init__(self, params: Mapping[str, Any] | None = None, name: str | None = None) -> None:
        super().__init__(params, name)
        self._coef = np.empty(0, np.float64)
        self._intercept = 0.0

    def combine(self, probabilities: Mapping[str, float | np.ndarray]) -> np.ndarray:
        """The meta-learner's probability from each base model's (name -> scalar or array;
        extra names are ignored): the one computation the batch path and the live actor share."""
        missing = [n for n in self.feature_names if n not in probabilities]
        if missing:
            raise ValueError(f"{self.name!r} combines {list(self.feature_names)} but has no probability for {missing}")
        matrix = np.column_stack([np.atleast_1d(np.asarray(probabilities[n], np.float64)) for n in self.feature_names])
        return self.predict_proba(probability_panel(self.feature_names, matrix), np.arange(len(matrix)))

    def feature_importance(self) -> dict[str, float]:
        """The logit-space weight of each base model (negative: the meta-learner bets against it)."""
        self._require_fitted()
        return dict(zip(self.feature_names, self._coef.tolist(), strict=True))

    def _fit(self, panel: Panel, rows: np.ndarray, seed: int) -> dict[str, Any]:
        # Imported here: the live actor only predicts.
        from sklearn.linear_model import LogisticRegression

        labels = panel.y[rows]
        if len(np.unique(labels)) < 2:
            raise ValueError(f"the meta-learner's {len(rows)} out-of-fold rows hold a single class")
        fitted = LogisticRegression(C=self.params["C"], max_iter=1000, random_state=seed).fit(
            _logit(panel.X[rows]), labels)
        self._coef = fitted.coef_[0].astype(np.float64)
        self._intercept = float(fitted.intercept_[0])
        return {"train_rows": int(rows.size)}

    def _predict(self, panel: Panel, rows: np.ndarray) -> np.ndarray:
        # An element-wise product summed per row: the same arithmetic for one live row and a
        # batch (a BLAS matrix product may round differently by batch size).
        z = (_logit(panel.X[rows]) * self._coef).sum(axis=1) + self._intercept
        return 1.0 / (1.0 + np.exp(-z))

    def _save_state(self, dir: Path) -> dict[str, Any]:
        return {"coef": self._coef.tolist(), "intercept": self._intercept}

    def _load_state(self, dir: Path, state: dict[str, Any]) -> None:
        self._coef = np.asarray(state["coef"], np.float64)
        self._intercept = float(state["intercept"])


@dataclass(frozen=True)
class StackFit:
    """A fitted meta-learner and what it was fitted on: the outer training rows that fell in an
    inner test window (``rows``, panel indices) and their out-of-fold base probabilities."""

    model: StackModel
    rows: np.ndarray
    probabilities: np.ndarray  # (len(rows), n_base) in model.feature_names order


def fit_stack(
    make_models: Callable[[], Mapping[str, SignalModel]],
    panel: Panel,
    rows: np.ndarray,
    label_end_ns: np.ndarray,
    config: EnsembleConfig,
    embargo_days: int,
    seed: int,
) -> StackFit:
    """Fit the meta-learner inside the training window ``rows`` (labelled, purged by the outer
    fold): ``make_models`` builds fresh, unfitted base models for each inner fold."""
    fold_rows, fold_probs = [], []
    names: tuple[str, ...] = ()
    for train, test in inner_splits(panel.ts_ns, label_end_ns, rows, config.inner_folds, embargo_days):
        if len(train) == 0 or len(test) == 0:
            continue  # an inner window without usable rows (e.g. a short first session)
        models = make_models()
        names = tuple(models)
        for model in models.values():
            model.fit(panel, train, seed=seed)
        fold_rows.append(test)
        fold_probs.append(np.column_stack([m.predict_proba(panel, test) for m in models.values()]))
    if not fold_rows:
        raise ValueError(f"no inner fold of the {len(rows)} training rows has both train and test rows")
    oof_rows, oof = np.concatenate(fold_rows), np.concatenate(fold_probs)
    model = StackModel({"C": config.C}, name=STACK_NAME)
    model.fit(probability_panel(names, oof, panel.y[oof_rows]), np.arange(len(oof_rows)), seed=seed)
    return StackFit(model, oof_rows, oof)


def probability_panel(names: Sequence[str], probabilities: np.ndarray, y: np.ndarray | None = None) -> Panel:
    """Base probabilities as the meta-learner's panel: one column per base model, each row its
    own segment (rows from many symbols and times, no sequence between them)."""
    n = len(probabilities)
    return Panel(X=probabilities, y=np.full(n, np.nan) if y is None else y, ts_ns=np.zeros(n, np.int64),
                 symbol=np.zeros(n, np.int32), segment_start=np.arange(n, dtype=np.int64),
                 feature_names=tuple(names), symbols=("",))


def load_saved_model(dir: Path) -> SignalModel:
    """The base model or meta-learner saved in ``dir``, whichever it holds: how the registry and
    the live actor read a saved model."""
    if read_header(dir)["kind"] == StackModel.kind:
        return StackModel.load(dir)
    return load_model(dir)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)
