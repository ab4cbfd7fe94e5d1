"""Gradient-boosted tree classifiers (LightGBM, XGBoost) on a row's own features.

Defaults are tuned for noisy daily/intraday equity labels, where the realistic edge is a few
points of AUC and the main risk is memorising noise: shallow trees, large minimum leaf sizes,
L2 regularisation, row and column subsampling, a small learning rate, and early stopping on a
time-ordered, purged holdout (``models.zoo.holdout``: the most recent ``valid_fraction`` of
the training rows by timestamp, never a random split, which would leak the future into model
selection).

Both libraries share one vocabulary (``models.zoo.kinds``) and one training/prediction path;
the subclasses only translate parameters and wrap the native booster.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import xgboost as xgb

from models.dataset import Panel
from models.zoo.base import SignalModel
from models.zoo.holdout import purged_holdout
from models.zoo.kinds import MODEL_KINDS


class _GradientBoostedModel(SignalModel):
    """Shared fit/predict/importance/persistence for the tree models; subclasses wrap one library.

    ``ARTIFACT`` is the booster's file name inside a saved model directory.
    """

    ARTIFACT: str

    def __init__(self, params: Mapping[str, Any] | None = None, name: str | None = None) -> None:
        super().__init__(params, name)
        self._booster: Any = None

    def _fit(self, panel: Panel, rows: np.ndarray, seed: int) -> dict[str, Any]:
        p = self.params
        valid = np.empty(0, np.int64)
        if p["early_stopping_rounds"] > 0 and p["valid_fraction"] > 0:
            rows, valid = purged_holdout(panel, rows, p["valid_fraction"])
            if rows.size == 0:
                raise ValueError("valid_fraction leaves no rows to train on")
        eval_set = (panel.X[valid], panel.y[valid]) if valid.size else None
        self._booster = self._train(panel.X[rows], panel.y[rows], eval_set, seed)
        return {"train_rows": int(rows.size), "valid_rows": int(valid.size),
                "trees": self._trees()}

    def _predict(self, panel: Panel, rows: np.ndarray) -> np.ndarray:
        return self._raw_predict(panel.X[rows])

    def feature_importance(self) -> dict[str, float]:
        """Total split gain per feature, normalised to sum to 1 (all zeros if no splits).

        Gain is in-sample: it shows what the trees used, not what generalises.
        """
        self._require_fitted()
        gain = np.asarray(self._gains(), dtype=np.float64)
        total = gain.sum()
        share = gain / total if total > 0 else gain
        return dict(zip(self.feature_names, share.tolist(), strict=True))

    def _save_state(self, dir: Path) -> dict[str, Any]:
        self._booster.save_model(str(dir / self.ARTIFACT))
        return {"artifact": self.ARTIFACT}

    def _load_state(self, dir: Path, state: dict[str, Any]) -> None:
        self._booster = self._load_booster(dir / state["artifact"])

    @abstractmethod
    def _train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        eval_set: tuple[np.ndarray, np.ndarray] | None,
        seed: int,
    ) -> Any:
        """Return a native booster truncated to its best iteration when early stopping ran."""

    @abstractmethod
    def _trees(self) -> int:
        """Boosting rounds kept."""

    @abstractmethod
    def _raw_predict(self, X: np.ndarray) -> np.ndarray:
        """P(y=1) for a feature matrix."""

    @abstractmethod
    def _gains(self) -> np.ndarray:
        """Total gain per feature, in ``feature_names`` order."""

    @abstractmethod
    def _load_booster(self, path: Path) -> Any:
        """Read the native booster written by ``save_model`` at ``path``."""


class LightGBMModel(_GradientBoostedModel):
    """LightGBM binary classifier (leaf-wise growth capped by ``num_leaves`` and depth)."""

    kind = "lightgbm"
    DEFAULTS = MODEL_KINDS["lightgbm"].defaults
    ARTIFACT = "booster.txt"

    def _train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        eval_set: tuple[np.ndarray, np.ndarray] | None,
        seed: int,
    ) -> lgb.Booster:
        p = self.params
        native = {
            "objective": "binary",
            "metric": "binary_logloss",
            "learning_rate": p["learning_rate"],
            "max_depth": p["max_depth"],
            "num_leaves": p["num_leaves"],
            "min_data_in_leaf": p["min_child_samples"],
            "bagging_fraction": p["subsample"],
            "bagging_freq": 1,
            "feature_fraction": p["colsample"],
            "lambda_l2": p["reg_lambda"],
            "num_threads": self.threads,
            "seed": seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }
        train = lgb.Dataset(X, y, free_raw_data=True)
        valid_sets, callbacks = [], []
        if eval_set is not None:
            valid_sets = [lgb.Dataset(*eval_set, reference=train)]
            callbacks = [lgb.early_stopping(p["early_stopping_rounds"], verbose=False)]
        booster = lgb.train(
            native, train, p["n_estimators"], valid_sets=valid_sets, callbacks=callbacks
        )
        if eval_set is None:
            return booster
        # Re-materialise only the kept trees so the in-memory and saved models are identical.
        return lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))

    def _raw_predict(self, X: np.ndarray) -> np.ndarray:
        return self._booster.predict(X, num_threads=self.threads)

    def _trees(self) -> int:
        return int(self._booster.num_trees())

    def _gains(self) -> np.ndarray:
        return self._booster.feature_importance(importance_type="gain")

    def _load_booster(self, path: Path) -> lgb.Booster:
        return lgb.Booster(model_file=str(path))


class XGBoostModel(_GradientBoostedModel):
    """XGBoost binary classifier (depth-wise ``hist`` trees, deterministic on CPU)."""

    kind = "xgboost"
    DEFAULTS = MODEL_KINDS["xgboost"].defaults
    ARTIFACT = "booster.ubj"

    def _train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        eval_set: tuple[np.ndarray, np.ndarray] | None,
        seed: int,
    ) -> xgb.Booster:
        p = self.params
        native = {
            "objective": "binary:logistic",
            "eval_metric": "logloss",
            "tree_method": "hist",
            "eta": p["learning_rate"],
            "max_depth": p["max_depth"],
            "min_child_weight": p["min_child_weight"],
            "subsample": p["subsample"],
            "colsample_bytree": p["colsample"],
            "lambda": p["reg_lambda"],
            "nthread": self.threads,
            "seed": seed,
        }
        evals = [] if eval_set is None else [(xgb.DMatrix(*eval_set), "valid")]
        booster = xgb.train(
            native,
            xgb.DMatrix(X, y),
            p["n_estimators"],
            evals=evals,
            early_stopping_rounds=p["early_stopping_rounds"] if evals else None,
            verbose_eval=False,
        )
        return booster[: booster.best_iteration + 1] if evals else booster

    def _raw_predict(self, X: np.ndarray) -> np.ndarray:
        # The thread count is fixed when a booster loads; re-apply it so a caller that lowers
        # it after loading (set_threads: the live SignalActor predicts one row at a time) gets it.
        self._booster.set_param({"nthread": self.threads})
        return self._booster.inplace_predict(X)

    def _trees(self) -> int:
        return int(self._booster.num_boosted_rounds())

    def _gains(self) -> np.ndarray:
        # Features are unnamed in the DMatrix (names like "a[1]" are rejected by XGBoost), so
        # the booster reports them as f0, f1, ... in column order.
        score = self._booster.get_score(importance_type="total_gain")
        return np.array([score.get(f"f{i}", 0.0) for i in range(len(self.feature_names))])

    def _load_booster(self, path: Path) -> xgb.Booster:
        booster = xgb.Booster(params={"nthread": self.threads})
        booster.load_model(str(path))
        return booster
