"""The contract every signal model honours, so training, the registry and strategies can treat
every kind of the zoo (trees, forests, SVM, torch networks) interchangeably.

``SignalModel`` is an ABC rather than a Protocol because the checks every model needs (unknown
hyperparameters, label validity, row bounds, feature-name drift between fit and predict) and
the on-disk header live here once; concrete models only implement the ``_``-prefixed hooks.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from models.dataset import Panel
from models.zoo.kinds import check_param

HEADER_FILE = "signal_model.json"


class SignalModel(ABC):
    """A binary classifier of P(y=1) on rows of a ``Panel``.

    Subclasses set ``kind`` and ``DEFAULTS`` (every accepted hyperparameter with its default,
    ``n_jobs`` among them; see ``models.zoo.kinds``) and implement ``_fit``, ``_predict``,
    ``_save_state``, ``_load_state`` and ``feature_importance``. ``name`` identifies the model
    in the registry and defaults to ``kind``.
    """

    kind: ClassVar[str]
    DEFAULTS: ClassVar[Mapping[str, Any]]

    def __init__(self, params: Mapping[str, Any] | None = None, name: str | None = None) -> None:
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.DEFAULTS))
        if unknown:
            raise ValueError(
                f"unknown {self.kind} params {unknown}; valid params: {sorted(self.DEFAULTS)}"
            )
        for key, value in params.items():
            try:
                check_param(key, value)
            except ValueError as e:
                raise ValueError(f"{self.kind} param {key!r}: {e}") from None
        self.params: dict[str, Any] = {**self.DEFAULTS, **params}
        self.name: str = name or self.kind
        self.feature_names: tuple[str, ...] = ()
        self.fit_info: dict[str, Any] = {}
        self._threads = _resolved_threads(self.params["n_jobs"])

    @property
    def threads(self) -> int:
        """Threads the model fits and predicts with: ``params["n_jobs"]`` unless ``set_threads``
        changed it (-1 resolves to every core)."""
        return self._threads

    def set_threads(self, n: int) -> None:
        """Run on ``n`` threads (-1: every core) from now on, without changing ``params``: the
        saved params stay the ones the model was trained with. The live actor predicts one row
        per bar on one thread, where fanning out costs more than it saves."""
        try:
            check_param("n_jobs", n)
        except ValueError as e:
            raise ValueError(f"threads {e}") from None
        self._threads = _resolved_threads(n)

    def describe(self) -> dict[str, Any]:
        """What was trained and how: kind, name, params, features and the fit's own facts
        (``fit_info``: rows fitted and held out, sample sizes, iterations or epochs run)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "params": dict(self.params),
            "features": list(self.feature_names),
            "fit": dict(self.fit_info),
        }

    @property
    def history_bars(self) -> int:
        """Rows of history (the row itself included) a prediction needs; 1 for tabular models.

        Callers select rows with ``panel.usable_rows(model.history_bars)`` and live buffers
        keep at least this many bars beyond the feature warm-up.
        """
        return 1

    def fit(self, panel: Panel, rows: np.ndarray, seed: int) -> None:
        """Train on ``panel`` rows ``rows``, whose labels must all be 0/1 (not NaN).

        The same data, params and ``seed`` give bit-identical predictions (tested), so a
        walk-forward result can be reproduced from the registry's meta alone.

        NaN labels are rejected rather than dropped so a caller's row selection bug (e.g.
        training on rows whose label horizon runs past the data) surfaces immediately.
        """
        rows = _check_rows(panel, rows)
        if rows.size == 0:
            raise ValueError("cannot fit on zero rows")
        if not np.isfinite(panel.y[rows]).all():
            raise ValueError(
                "fit rows must have finite labels; use panel.usable_rows(require_label=True)"
            )
        self.fit_info = self._fit(panel, rows, seed)
        self.feature_names = panel.feature_names

    def predict_proba(self, panel: Panel, rows: np.ndarray) -> np.ndarray:
        """P(y=1) as float64 for each of ``rows``, in the order given."""
        self._require_fitted()
        if panel.feature_names != self.feature_names:
            raise ValueError(
                f"panel features {panel.feature_names} differ from the model's {self.feature_names}"
            )
        rows = _check_rows(panel, rows)
        if rows.size == 0:
            return np.empty(0, np.float64)
        return np.asarray(self._predict(panel, rows), dtype=np.float64)

    def save(self, dir: Path) -> None:
        """Write the model into ``dir`` (created if needed): a JSON header plus artifacts."""
        self._require_fitted()
        dir = Path(dir)
        dir.mkdir(parents=True, exist_ok=True)
        header = {
            "kind": self.kind,
            "name": self.name,
            "params": self.params,
            "feature_names": list(self.feature_names),
            "fit": self.fit_info,
            "state": self._save_state(dir),
        }
        (dir / HEADER_FILE).write_text(json.dumps(header, indent=2))

    @classmethod
    def load(cls, dir: Path) -> Self:
        """Rebuild a model saved by ``save``; the stored kind must match this class."""
        header = read_header(dir)
        if header["kind"] != cls.kind:
            raise ValueError(f"{dir} holds a {header['kind']!r} model, not {cls.kind!r}")
        model = cls(header["params"], name=header["name"])
        model._load_state(Path(dir), header["state"])
        model.feature_names = tuple(header["feature_names"])
        model.fit_info = dict(header["fit"])
        return model

    def _require_fitted(self) -> None:
        if not self.feature_names:
            raise RuntimeError(f"{self.kind} model {self.name!r} is not fitted")

    @abstractmethod
    def feature_importance(self) -> dict[str, float]:
        """Feature name -> importance; each model documents what its numbers mean."""

    @abstractmethod
    def _fit(self, panel: Panel, rows: np.ndarray, seed: int) -> dict[str, Any]:
        """Train on validated rows (in range, labels finite); return the fit's facts for
        ``describe`` (JSON-serialisable: row counts, sample sizes, iterations run)."""

    @abstractmethod
    def _predict(self, panel: Panel, rows: np.ndarray) -> np.ndarray:
        """P(y=1) for validated, non-empty rows."""

    @abstractmethod
    def _save_state(self, dir: Path) -> dict[str, Any]:
        """Write artifacts into ``dir``; return JSON-serialisable state for the header."""

    @abstractmethod
    def _load_state(self, dir: Path, state: dict[str, Any]) -> None:
        """Inverse of ``_save_state``."""


def read_header(dir: Path) -> dict[str, Any]:
    """The JSON header of a saved model, with a clear error if ``dir`` holds none."""
    path = Path(dir) / HEADER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no saved model in {dir} (missing {HEADER_FILE})")
    return json.loads(path.read_text())


def _resolved_threads(n: int) -> int:
    return (os.cpu_count() or 1) if n == -1 else int(n)


def _check_rows(panel: Panel, rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows)
    if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(f"rows must be a 1-D integer array, got {rows.dtype} {rows.shape}")
    if rows.size and (rows.min() < 0 or rows.max() >= len(panel)):
        raise IndexError(f"rows out of range for a panel of {len(panel)} rows")
    return rows.astype(np.int64, copy=False)
