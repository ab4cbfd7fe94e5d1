"""A scikit-learn random forest: bagged deep trees, a variance-reducing contrast to boosting.

Each tree sees a bootstrap sample of ``max_samples`` of the training rows, which both bounds
the fit time on a 2-core machine and decorrelates the trees. No early stopping: a forest does
not overfit by adding trees, only by growing them too deep (``max_depth``,
``min_samples_leaf``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier

from models.dataset import Panel
from models.zoo.base import SignalModel
from models.zoo.kinds import MODEL_KINDS

ARTIFACT = "forest.joblib"


def forest_probability(forest: RandomForestClassifier, X: np.ndarray) -> np.ndarray:
    """``forest.predict_proba(X)`` on one thread, bit for bit: the trees' own predictions added
    in tree order into float64, then divided by the tree count, as scikit-learn accumulates them.

    One thread because in parallel scikit-learn adds the trees' votes in the order threads
    finish, so the last bit of a probability would vary from run to run; and without its
    joblib dispatch and input validation, which cost about 5 ms a call whatever the rows (the
    live actor predicts 50 rows per bar close). On one thread scikit-learn runs this same loop,
    so there is no row count above which its own call is faster.
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    total = np.zeros((X.shape[0], forest.n_classes_), dtype=np.float64)
    for tree in forest.estimators_:
        total += tree.predict_proba(X, check_input=False)
    total /= len(forest.estimators_)
    return total


class RandomForestModel(SignalModel):
    kind = "random_forest"
    DEFAULTS = MODEL_KINDS["random_forest"].defaults

    def __init__(self, params: Mapping[str, Any] | None = None, name: str | None = None) -> None:
        super().__init__(params, name)
        self._forest: RandomForestClassifier | None = None

    def _fit(self, panel: Panel, rows: np.ndarray, seed: int) -> dict[str, Any]:
        p = self.params
        self._forest = RandomForestClassifier(
            n_estimators=p["n_estimators"],
            max_depth=p["max_depth"],
            min_samples_split=p["min_samples_split"],
            min_samples_leaf=p["min_samples_leaf"],
            max_features=p["max_features"],
            max_samples=p["max_samples"] if p["max_samples"] < 1.0 else None,
            n_jobs=self.threads,
            random_state=seed,
        )
        self._forest.fit(panel.X[rows], panel.y[rows].astype(np.int8))
        return {"train_rows": int(rows.size),
                "rows_per_tree": round(rows.size * min(p["max_samples"], 1.0))}

    def _predict(self, panel: Panel, rows: np.ndarray) -> np.ndarray:
        return forest_probability(self._forest, panel.X[rows])[:, 1]

    def feature_importance(self) -> dict[str, float]:
        """Mean decrease in impurity over the trees, summing to 1 (in-sample, like GBM gain)."""
        self._require_fitted()
        return dict(zip(self.feature_names, self._forest.feature_importances_.tolist(), strict=True))

    def _save_state(self, dir: Path) -> dict[str, Any]:
        joblib.dump(self._forest, dir / ARTIFACT)
        return {"artifact": ARTIFACT}

    def _load_state(self, dir: Path, state: dict[str, Any]) -> None:
        self._forest = joblib.load(dir / state["artifact"])
