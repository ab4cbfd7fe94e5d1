"""An RBF support vector machine with Platt-calibrated probabilities.

Kernel SVM fits grow quadratically with rows, so the machine is trained on a bounded random
sample (``max_train_rows``) of the training window, reported in ``describe()["fit"]``. Its
decision values are turned into probabilities by a logistic (Platt) fit on the purged
validation tail of the training window, by time, not by scikit-learn's random internal
cross-validation (``probability=True``), which would calibrate on rows from the future of
the ones it was fitted on.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from models.dataset import Panel
from models.zoo.base import SignalModel
from models.zoo.holdout import sample_rows, sampled_holdout
from models.zoo.importance import permutation_importance
from models.zoo.kinds import MODEL_KINDS

ARTIFACT = "svm.joblib"


class SVMModel(SignalModel):
    kind = "svm"
    DEFAULTS = MODEL_KINDS["svm"].defaults

    def __init__(self, params: Mapping[str, Any] | None = None, name: str | None = None) -> None:
        super().__init__(params, name)
        self._scaler: StandardScaler | None = None
        self._svc: SVC | None = None
        self._platt: LogisticRegression | None = None
        self._importance: dict[str, float] = {}

    def _fit(self, panel: Panel, rows: np.ndarray, seed: int) -> dict[str, Any]:
        p = self.params
        rng = np.random.default_rng(seed)
        fit_rows, valid = sampled_holdout(
            panel, rows, p["valid_fraction"], p["max_train_rows"], rng
        )
        y = panel.y[fit_rows].astype(np.int8)
        if np.unique(y).size < 2 or np.unique(panel.y[valid]).size < 2:
            raise ValueError("svm needs both label classes in its training sample and its tail")
        self._scaler = StandardScaler().fit(panel.X[fit_rows])
        self._svc = SVC(kernel="rbf", C=p["C"], gamma=p["gamma"] or "scale", random_state=seed)
        self._svc.fit(self._scaler.transform(panel.X[fit_rows]), y)
        decision = self._decision(panel.X[valid]).reshape(-1, 1)
        self._platt = LogisticRegression().fit(decision, panel.y[valid].astype(np.int8))
        self._importance = self._permutation_importance(panel, valid, rng)
        return {"train_rows": int(fit_rows.size), "calibration_rows": int(valid.size),
                "support_vectors": int(self._svc.n_support_.sum())}

    def _predict(self, panel: Panel, rows: np.ndarray) -> np.ndarray:
        return self._probability(panel.X[rows])

    def _decision(self, X: np.ndarray) -> np.ndarray:
        return self._svc.decision_function(self._scaler.transform(X))

    def _probability(self, X: np.ndarray) -> np.ndarray:
        return self._platt.predict_proba(self._decision(X).reshape(-1, 1))[:, 1]

    def feature_importance(self) -> dict[str, float]:
        """Permutation importance on up to ``importance_sample`` calibration-tail rows: the
        increase in log loss when a feature is shuffled (empty if ``importance_sample`` is 0)."""
        self._require_fitted()
        return dict(self._importance)

    def _permutation_importance(
        self, panel: Panel, rows: np.ndarray, rng: np.random.Generator
    ) -> dict[str, float]:
        if self.params["importance_sample"] == 0:
            return {}
        sample = sample_rows(rows, self.params["importance_sample"], rng)
        y = panel.y[sample]

        def log_loss(X: np.ndarray) -> float:
            prob = np.clip(self._probability(X), 1e-12, 1 - 1e-12)
            return float(-np.mean(y * np.log(prob) + (1 - y) * np.log(1 - prob)))

        return permutation_importance(log_loss, panel.X[sample], panel.feature_names, rng)

    def _save_state(self, dir: Path) -> dict[str, Any]:
        joblib.dump({"scaler": self._scaler, "svc": self._svc, "platt": self._platt}, dir / ARTIFACT)
        return {"artifact": ARTIFACT, "importance": self._importance}

    def _load_state(self, dir: Path, state: dict[str, Any]) -> None:
        parts = joblib.load(dir / state["artifact"])
        self._scaler, self._svc, self._platt = parts["scaler"], parts["svc"], parts["platt"]
        self._importance = dict(state["importance"])

