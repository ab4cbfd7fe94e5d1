"""Horizon models: a ridge regression per horizon forecasting the log return h bars ahead.

The brief's signal shows an expected return at 1m, 5m, 30m, 1h and 1d (1 / 5 / 30 / 60 / 390
bars). A ridge on the standardised features is the light, deterministic choice: its fit is one
solve of a features x features system per horizon, it cannot memorise noise the way a deep
tree does, and a zero edge shows as coefficients near zero, i.e. forecasts near the mean.

Honesty follows the SignalModel conventions: the scaler and coefficients are fitted on train
rows only, and each horizon has its own label end (``forward_returns``), so the caller purges
the rows whose h-bar outcome reaches the embargo (``models.splits.train_rows``). Unlike the
direction labels, a forward return may cross the close: the 1d horizon is 390 bars, the same
minute of the next session.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models.dataset import Panel

STATE_FILE = "horizons.json"
HORIZONS_DIR = "horizons"  # in a model registry: one fold-<k> directory per fold (models.promotion)
DEFAULT_HORIZONS = (1, 5, 30, 60, 390)


def forward_returns(close: np.ndarray, ts_ns: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """log(close[t+h] / close[t]) and its label end ts[t+h]; NaN (end ts[t]) past the data."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1 bar, got {horizon}")
    close = np.asarray(close, dtype=np.float64)
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    target = np.full(len(close), np.nan)
    label_end = ts_ns.copy()
    if len(close) > horizon:
        target[:-horizon] = np.log(close[horizon:] / close[:-horizon])
        label_end[:-horizon] = ts_ns[horizon:]
    return target, label_end


class HorizonModels:
    """One ridge per horizon over the same feature columns; ``predict`` gives one column each."""

    def __init__(self, horizons: tuple[int, ...] = DEFAULT_HORIZONS, alpha: float = 0.1) -> None:
        if not horizons or len(set(horizons)) != len(horizons) or min(horizons) < 1:
            raise ValueError(f"horizons must be distinct bar counts >= 1, got {horizons}")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.horizons = tuple(int(h) for h in horizons)
        self.alpha = float(alpha)
        self.feature_names: tuple[str, ...] = ()
        self._mean = np.empty(0)
        self._scale = np.empty(0)
        self._coef = np.empty((0, 0))  # (features, horizons)
        self._intercept = np.empty(0)

    def fit(self, panel: Panel, targets: np.ndarray, rows: list[np.ndarray]) -> None:
        """Fit horizon k on ``panel`` rows ``rows[k]`` against ``targets[:, k]`` (finite on those
        rows, features finite). The scaler comes from the union of the rows: all train rows."""
        if len(rows) != len(self.horizons) or targets.shape != (len(panel), len(self.horizons)):
            raise ValueError(f"need targets (n, {len(self.horizons)}) and one row set per horizon")
        if any(r.size == 0 for r in rows):
            raise ValueError("cannot fit a horizon model on zero rows")
        union = np.unique(np.concatenate(rows))
        X = panel.X[union].astype(np.float64)
        if not np.isfinite(X).all():
            raise ValueError("horizon models need finite features; use panel.usable_rows()")
        self._mean = X.mean(axis=0)
        scale = X.std(axis=0)
        self._scale = np.where(scale > 0, scale, 1.0)
        k = X.shape[1]
        self._coef = np.empty((k, len(self.horizons)))
        self._intercept = np.empty(len(self.horizons))
        for j, horizon_rows in enumerate(rows):
            y = targets[horizon_rows, j].astype(np.float64)
            if not np.isfinite(y).all():
                raise ValueError(f"horizon {self.horizons[j]}: fit rows must have finite targets")
            Z = (panel.X[horizon_rows].astype(np.float64) - self._mean) / self._scale
            # Ridge on centred targets; alpha scales with the rows so it means the same per fold.
            self._intercept[j] = y.mean()
            gram = Z.T @ Z + self.alpha * len(y) * np.eye(k)
            self._coef[:, j] = np.linalg.solve(gram, Z.T @ (y - self._intercept[j]))
        self.feature_names = panel.feature_names

    def predict(self, panel: Panel, rows: np.ndarray) -> np.ndarray:
        """Forecast log returns, (len(rows), len(horizons)), float64."""
        if not self.feature_names:
            raise RuntimeError("horizon models are not fitted")
        if panel.feature_names != self.feature_names:
            raise ValueError(f"panel features {panel.feature_names} differ from the horizon models' "
                             f"{self.feature_names}")
        Z = (panel.X[np.asarray(rows, dtype=np.int64)].astype(np.float64) - self._mean) / self._scale
        return Z @ self._coef + self._intercept

    def save(self, dir: Path) -> None:
        dir = Path(dir)
        dir.mkdir(parents=True, exist_ok=True)
        state = {
            "horizons": list(self.horizons),
            "alpha": self.alpha,
            "feature_names": list(self.feature_names),
            "mean": self._mean.tolist(),
            "scale": self._scale.tolist(),
            "coef": self._coef.tolist(),
            "intercept": self._intercept.tolist(),
        }
        # repr-exact floats: json writes the shortest string that reads back to the same double
        (dir / STATE_FILE).write_text(json.dumps(state))

    @classmethod
    def load(cls, dir: Path) -> HorizonModels:
        path = Path(dir) / STATE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no horizon models in {dir} (missing {STATE_FILE})")
        state = json.loads(path.read_text())
        model = cls(tuple(state["horizons"]), state["alpha"])
        model.feature_names = tuple(state["feature_names"])
        model._mean = np.array(state["mean"], dtype=np.float64)
        model._scale = np.array(state["scale"], dtype=np.float64)
        model._coef = np.array(state["coef"], dtype=np.float64).reshape(len(model._mean), len(model.horizons))
        model._intercept = np.array(state["intercept"], dtype=np.float64)
        return model
