"""A small LSTM over the last ``seq_len`` bars of features, for signals that live in the path.

Tree models see one row; this model sees ``panel.X[i - seq_len + 1 : i + 1]`` for row ``i``,
so it can use patterns such as "a shock k bars ago". It is deliberately small (one 32-unit
layer, a few epochs on at most ``max_train_sequences`` sampled windows) so a walk-forward run
trains in seconds on a 2-core CPU; with a few points of AUC to find, capacity is not the
constraint, overfitting is.

Windows are gathered per batch from the raw panel with a strided view (no per-row Python
loop and no full (n, seq_len, f) copy), standardised with per-feature mean/std fitted on the
training rows, and NaN is mapped to 0 (the training mean). A window must lie inside its row's
segment (``panel.usable_rows(seq_len)`` guarantees this), so no window mixes two symbols.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

from models.dataset import Panel
from models.zoo.base import SignalModel

WEIGHTS_FILE = "weights.pt"


class _LSTMNet(nn.Module):
    """LSTM encoder; the last layer's final hidden state feeds a linear logit head."""

    def __init__(self, n_features: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)
        return self.head(h[-1]).squeeze(-1)


class LSTMModel(SignalModel):
    """Sequence classifier on ``seq_len``-bar windows of standardised features."""

    kind = "lstm"
    DEFAULTS = MappingProxyType(
        {
            "seq_len": 60,
            "hidden_size": 32,
            "num_layers": 1,
            "epochs": 4,
            "batch_size": 256,
            "learning_rate": 3e-3,
            "weight_decay": 1e-5,
            "max_train_sequences": 40_000,
            "importance_sample": 1024,  # windows used for permutation importance; 0 disables
            "predict_batch_size": 512,
            "n_jobs": 2,
        }
    )

    def __init__(self, params: Mapping[str, Any] | None = None, name: str | None = None) -> None:
        super().__init__(params, name)
        self._net: _LSTMNet | None = None
        self._mean = np.empty(0, np.float32)
        self._std = np.empty(0, np.float32)
        self._importance: dict[str, float] = {}

    @property
    def history_bars(self) -> int:
        return int(self.params["seq_len"])

    def _fit(self, panel: Panel, rows: np.ndarray, seed: int) -> None:
        p = self.params
        self._check_windows(panel, rows)
        torch.set_num_threads(p["n_jobs"])
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        if rows.size > p["max_train_sequences"]:
            rows = np.sort(rng.choice(rows, p["max_train_sequences"], replace=False))
        self._mean, self._std = _moments(panel.X[rows])
        self._net = _LSTMNet(panel.X.shape[1], p["hidden_size"], p["num_layers"])
        opt = torch.optim.Adam(
            self._net.parameters(), lr=p["learning_rate"], weight_decay=p["weight_decay"]
        )
        loss_fn = nn.BCEWithLogitsLoss()
        y = torch.from_numpy(panel.y[rows])
        self._net.train()
        for _ in range(p["epochs"]):
            order = rng.permutation(rows.size)
            for start in range(0, rows.size, p["batch_size"]):
                batch = order[start : start + p["batch_size"]]
                opt.zero_grad()
                loss = loss_fn(self._net(self._windows(panel.X, rows[batch])), y[batch])
                loss.backward()
                nn.utils.clip_grad_norm_(self._net.parameters(), 1.0)
                opt.step()
        self._net.eval()
        self._importance = self._permutation_importance(panel, rows, rng)

    def _predict(self, panel: Panel, rows: np.ndarray) -> np.ndarray:
        self._check_windows(panel, rows)
        torch.set_num_threads(self.params["n_jobs"])
        step = self.params["predict_batch_size"]
        out = np.empty(rows.size, np.float64)
        with torch.inference_mode():
            for start in range(0, rows.size, step):
                chunk = rows[start : start + step]
                out[start : start + chunk.size] = torch.sigmoid(
                    self._net(self._windows(panel.X, chunk))
                ).numpy()
        return out

    def feature_importance(self) -> dict[str, float]:
        """In-sample permutation importance (empty if ``importance_sample`` is 0).

        For each feature, its whole ``seq_len``-bar trajectory is shuffled across a sample of
        up to ``importance_sample`` training windows and the increase in mean BCE loss is
        recorded (can be slightly negative for unused features). Computed once at fit time and
        saved with the model, because the training data is not kept. It measures how much the
        fitted network relies on a feature, not out-of-sample value.
        """
        self._require_fitted()
        return dict(self._importance)

    def _permutation_importance(
        self, panel: Panel, rows: np.ndarray, rng: np.random.Generator
    ) -> dict[str, float]:
        k = min(self.params["importance_sample"], rows.size)
        if k == 0:
            return {}
        sample = np.sort(rng.choice(rows, k, replace=False))
        windows = self._windows(panel.X, sample)
        y = torch.from_numpy(panel.y[sample])
        loss_fn = nn.BCEWithLogitsLoss()
        perm = torch.from_numpy(rng.permutation(k))
        with torch.inference_mode():
            base = loss_fn(self._net(windows), y).item()
            result = {}
            for j, name in enumerate(panel.feature_names):
                shuffled = windows.clone()
                shuffled[:, :, j] = windows[perm, :, j]
                result[name] = loss_fn(self._net(shuffled), y).item() - base
        return result

    def _windows(self, X: np.ndarray, rows: np.ndarray) -> torch.Tensor:
        """Standardised (len(rows), seq_len, f) float32 windows ending at each row.

        The strided view makes every window a contiguous block of the C-ordered panel, so
        the gather is one block copy per row done inside numpy; standardisation then runs in
        place on that copy.
        """
        seq_len = self.params["seq_len"]
        view = sliding_window_view(X, (seq_len, X.shape[1]))[:, 0]  # (n - seq_len + 1, L, f)
        w = view[rows - (seq_len - 1)]
        w -= self._mean
        w /= self._std
        np.copyto(w, 0.0, where=~np.isfinite(w))
        return torch.from_numpy(w)

    def _check_windows(self, panel: Panel, rows: np.ndarray) -> None:
        short = rows - panel.segment_start[rows] < self.params["seq_len"] - 1
        if short.any():
            raise ValueError(
                f"{int(short.sum())} rows have fewer than seq_len={self.params['seq_len']} rows "
                "of history in their segment; select rows with panel.usable_rows(seq_len)"
            )

    def _save_state(self, dir: Path) -> dict[str, Any]:
        torch.save(self._net.state_dict(), dir / WEIGHTS_FILE)
        return {
            "artifact": WEIGHTS_FILE,
            "n_features": int(self._mean.size),
            "mean": self._mean.tolist(),
            "std": self._std.tolist(),
            "importance": self._importance,
        }

    def _load_state(self, dir: Path, state: dict[str, Any]) -> None:
        p = self.params
        self._net = _LSTMNet(state["n_features"], p["hidden_size"], p["num_layers"])
        self._net.load_state_dict(
            torch.load(dir / state["artifact"], map_location="cpu", weights_only=True)
        )
        self._net.eval()
        self._mean = np.asarray(state["mean"], np.float32)
        self._std = np.asarray(state["std"], np.float32)
        self._importance = dict(state["importance"])


def _moments(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean/std over finite values; constant or all-NaN features get (0, 1)."""
    finite = np.isfinite(X)
    count = np.maximum(finite.sum(axis=0), 1)
    mean = np.where(finite, X, 0.0).sum(axis=0, dtype=np.float64) / count
    var = (np.where(finite, X - mean, 0.0) ** 2).sum(axis=0) / count
    std = np.sqrt(var)
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)
