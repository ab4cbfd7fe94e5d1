"""The one torch training loop every network of the zoo (MLP, LSTM, Transformer, CNN) runs on.

A network module only maps a batch of standardised windows (batch, history_bars, inputs) to
logits; everything else lives here once: the purged validation tail of the training window
(``models.zoo.holdout``), a bounded sample of training rows, standardisation fitted on the
fit rows only, batching, the optimizer and learning-rate schedule named by the params, early
stopping that restores the best epoch, determinism per seed, CUDA when present (CPU
otherwise), permutation importance on the validation tail, and persistence.

With a few points of AUC to find in noisy labels, capacity is rarely the constraint,
overfitting is: the defaults train small networks for a few epochs on a sample of rows, and
early stopping decides on data the weights never saw.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from models.dataset import Panel
from models.zoo.base import SignalModel
from models.zoo.holdout import sample_rows, sampled_holdout
from models.zoo.importance import permutation_importance
from models.zoo.windows import check_windows, gather_windows, moments

WEIGHTS_FILE = "weights.pt"
_MIN_IMPROVEMENT = 1e-5  # a validation loss must beat the best by this much to count


def device() -> torch.device:
    """CUDA when present, CPU otherwise (predictions and fits move to it transparently)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TorchModel(SignalModel):
    """A ``SignalModel`` whose subclasses only build their network (``_network``) and, for
    networks reading a subset of the panel's features, name it (``_input_features``)."""

    def __init__(self, params: Mapping[str, Any] | None = None, name: str | None = None) -> None:
        super().__init__(params, name)
        self._net: nn.Module | None = None
        self._inputs: tuple[str, ...] = ()
        self._columns = np.empty(0, np.int64)
        self._mean = np.empty(0, np.float32)
        self._std = np.empty(0, np.float32)
        self._importance: dict[str, float] = {}

    @property
    def history_bars(self) -> int:
        return int(self.params.get("seq_len", 1))

    @abstractmethod
    def _network(self, n_inputs: int) -> nn.Module:
        """A fresh network mapping (batch, history_bars, n_inputs) float32 to (batch,) logits."""

    def _input_features(self, feature_names: Sequence[str]) -> tuple[str, ...]:
        """The panel features the network reads, in input order (default: all of them)."""
        return tuple(feature_names)

    def _fit(self, panel: Panel, rows: np.ndarray, seed: int) -> dict[str, Any]:
        p = self.params
        check_windows(panel, rows, self.history_bars)
        torch.set_num_threads(self.threads)
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        if p["patience"] > 0 and p["valid_fraction"] > 0:
            fit_rows, valid = sampled_holdout(
                panel, rows, p["valid_fraction"], p["max_train_rows"], rng
            )
        else:
            fit_rows, valid = sample_rows(rows, p["max_train_rows"], rng), np.empty(0, np.int64)
        self._bind_inputs(panel.feature_names)
        self._mean, self._std = moments(panel.X[fit_rows][:, self._columns])
        dev = device()
        net = self._network(len(self._columns)).to(dev)
        self._net = net
        optimizer, schedule = _optimizer(net, p)
        loss_fn = nn.BCEWithLogitsLoss()
        y = torch.from_numpy(panel.y[fit_rows]).to(dev)
        best_loss, best_epoch, best_state, epochs_run = np.inf, 0, None, 0
        for epoch in range(1, p["epochs"] + 1):
            net.train()
            order = rng.permutation(fit_rows.size)
            for start in range(0, fit_rows.size, p["batch_size"]):
                batch = order[start : start + p["batch_size"]]
                optimizer.zero_grad()
                x = torch.from_numpy(self._windows(panel.X, fit_rows[batch])).to(dev)
                loss_fn(net(x), y[batch]).backward()
                nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                optimizer.step()
                schedule.step()
            epochs_run = epoch
            if valid.size == 0:
                continue
            loss = _bce(self._logits(panel.X, valid), panel.y[valid])
            if loss < best_loss - _MIN_IMPROVEMENT:
                best_loss, best_epoch = loss, epoch
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            elif epoch - best_epoch >= p["patience"]:
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        self._importance = self._permutation_importance(panel, valid if valid.size else fit_rows, rng)
        return {
            "train_rows": int(fit_rows.size),
            "valid_rows": int(valid.size),
            "epochs_run": epochs_run,
            "best_epoch": best_epoch or epochs_run,
            "valid_loss": None if valid.size == 0 else float(best_loss),
            "device": dev.type,
        }

    def _predict(self, panel: Panel, rows: np.ndarray) -> np.ndarray:
        check_windows(panel, rows, self.history_bars)
        return 1.0 / (1.0 + np.exp(-self._logits(panel.X, rows)))

    def feature_importance(self) -> dict[str, float]:
        """Permutation importance: the increase in mean BCE loss when one feature's window is
        shuffled across up to ``importance_sample`` rows of the validation tail (the training
        rows when there is none); 0 for features the network does not read, empty when
        ``importance_sample`` is 0. Computed at fit time and saved, since the data is not."""
        self._require_fitted()
        return dict(self._importance)

    def _bind_inputs(self, feature_names: Sequence[str]) -> None:
        self._inputs = self._input_features(feature_names)
        missing = [f for f in self._inputs if f not in feature_names]
        if missing:
            raise ValueError(f"{self.kind} input features {missing} are not in the panel")
        self._columns = np.array([list(feature_names).index(f) for f in self._inputs], np.int64)

    def _windows(self, X: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return gather_windows(X, rows, self.history_bars, self._columns, self._mean, self._std)

    def _logits(self, X: np.ndarray, rows: np.ndarray) -> np.ndarray:
        torch.set_num_threads(self.threads)
        step = self.params["predict_batch_size"]
        out = np.empty(rows.size, np.float64)
        for start in range(0, rows.size, step):
            chunk = rows[start : start + step]
            out[start : start + chunk.size] = self._forward(self._windows(X, chunk))
        return out

    def _forward(self, windows: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self._net(torch.from_numpy(windows).to(device())).cpu().numpy()

    def _window_logits(self, windows: np.ndarray) -> np.ndarray:
        step = self.params["predict_batch_size"]
        return np.concatenate([self._forward(windows[i : i + step])
                               for i in range(0, len(windows), step)])

    def _permutation_importance(
        self, panel: Panel, rows: np.ndarray, rng: np.random.Generator
    ) -> dict[str, float]:
        if self.params["importance_sample"] == 0:
            return {}
        sample = sample_rows(rows, self.params["importance_sample"], rng)
        y = panel.y[sample]
        read = permutation_importance(
            lambda w: _bce(self._window_logits(w), y), self._windows(panel.X, sample), self._inputs,
            rng,
        )
        return {name: read.get(name, 0.0) for name in panel.feature_names}

    def _save_state(self, dir: Path) -> dict[str, Any]:
        torch.save(self._net.state_dict(), dir / WEIGHTS_FILE)
        return {
            "artifact": WEIGHTS_FILE,
            "inputs": list(self._inputs),
            "columns": self._columns.tolist(),
            "mean": self._mean.tolist(),
            "std": self._std.tolist(),
            "importance": self._importance,
        }

    def _load_state(self, dir: Path, state: dict[str, Any]) -> None:
        self._inputs = tuple(state["inputs"])
        self._columns = np.asarray(state["columns"], np.int64)
        self._mean = np.asarray(state["mean"], np.float32)
        self._std = np.asarray(state["std"], np.float32)
        self._importance = dict(state["importance"])
        net = self._network(len(self._columns))
        net.load_state_dict(
            torch.load(dir / state["artifact"], map_location="cpu", weights_only=True)
        )
        self._net = net.to(device()).eval()


def _bce(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean binary cross-entropy of logits, in the stable form max(z, 0) - z*y + log(1 + e^-|z|)."""
    z = logits.astype(np.float64)
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))


def _optimizer(
    net: nn.Module, p: Mapping[str, Any]
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """The optimizer ``p["optimizer"]`` names, with L2 ``weight_decay``, and its schedule: a
    constant rate, or with ``warmup_steps`` > 0 a linear warm-up to the rate followed by the
    inverse-square-root decay of the Transformer paper (large early steps on an untrained
    attention layer are what destabilises it)."""
    kinds = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}
    optimizer = kinds[p["optimizer"]](
        net.parameters(), lr=p["learning_rate"], weight_decay=p["weight_decay"]
    )
    warmup = p["warmup_steps"]

    def factor(step: int) -> float:
        if warmup <= 0:
            return 1.0
        step += 1
        return min(step / warmup, (warmup / step) ** 0.5)

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
