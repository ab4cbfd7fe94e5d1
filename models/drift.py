"""Feature drift: how far the inputs a model sees live have moved from what it was trained on.

The measure is the Population Stability Index per feature, over bins cut at the deciles of the
training window's values (plus one bin each side of its range): PSI = sum over bins of (p_live - p_train) * ln(p_live / p_train).
The usual reading (credit scoring, where PSI comes from): below 0.1 the distribution is stable,
0.1 to 0.25 it has moved, above 0.25 it has shifted enough that the model's training no longer
describes what it sees. Only the bin edges and the training fractions are kept, so the
reference saved with a model is a few numbers per feature, not its training rows.

Empty bins get a floor (``EPSILON``) before the logarithm: a live day never falling in one
decile is a large, finite PSI instead of an infinite one. Non-finite values (warm-up rows,
degenerate windows) are left out on both sides and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import numpy as np
from msgspec import Meta

DRIFT_FILE = "drift.json"
BINS = 10
EPSILON = 1e-4
MODERATE, SIGNIFICANT = 0.1, 0.25
Level = Literal["stable", "moderate", "significant"]


class FeatureReference(msgspec.Struct, frozen=True, kw_only=True):
    """One feature's training distribution: interior bin edges and each bin's fraction."""

    edges: tuple[float, ...]
    fractions: tuple[float, ...]
    rows: int


class FeatureDrift(msgspec.Struct, frozen=True, kw_only=True):
    feature: str
    psi: float
    level: Level
    rows: int  # finite live values compared


class DriftReference(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The training window's feature distributions, saved beside a model (``drift.json``)."""

    features: dict[str, FeatureReference]
    bins: Annotated[int, Meta(ge=2, le=100)] = BINS

    @classmethod
    def fit(cls, X: np.ndarray, names: Sequence[str], bins: int = BINS) -> DriftReference:
        """From the training rows ``X`` (rows x features, columns named ``names``)."""
        if X.ndim != 2 or X.shape[1] != len(names):
            raise ValueError(f"X has shape {X.shape}; expected (rows, {len(names)})")
        features = {}
        for j, name in enumerate(names):
            values = X[:, j][np.isfinite(X[:, j])]
            edges = _edges(values, bins)
            fractions = _fractions(edges, values)
            features[name] = FeatureReference(edges=tuple(edges.tolist()), fractions=tuple(fractions.tolist()),
                                              rows=len(values))
        return cls(features=features, bins=bins)

    def compare(self, X: np.ndarray, names: Sequence[str]) -> list[FeatureDrift]:
        """PSI of each feature of ``X`` (live rows, columns named ``names``) against the
        reference, for the features both hold; a feature with no finite live value is left out."""
        out = []
        for j, name in enumerate(names):
            ref = self.features.get(name)
            if ref is None or ref.rows == 0:
                continue
            values = X[:, j][np.isfinite(X[:, j])]
            if len(values) == 0:
                continue
            value = psi(np.asarray(ref.fractions), _fractions(np.asarray(ref.edges), values))
            out.append(FeatureDrift(feature=name, psi=value, level=level(value), rows=len(values)))
        return out

    def save(self, dir: Path) -> None:
        (Path(dir) / DRIFT_FILE).write_bytes(msgspec.json.encode(self))

    @classmethod
    def load(cls, dir: Path) -> DriftReference | None:
        """The reference saved in ``dir``; None for a model saved without one."""
        path = Path(dir) / DRIFT_FILE
        return msgspec.json.decode(path.read_bytes(), type=cls) if path.is_file() else None


def _edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Bin edges: the training quantiles, plus one bin below the training minimum and one
    above its maximum (empty in training), so a live value outside the training range, or any
    value but the constant of a constant feature, lands in a bin of its own. Repeated
    quantiles (a discrete feature) merge their bins."""
    if len(values) == 0:
        return np.array([])
    inner = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    low, high = values.min(), values.max()
    return np.unique(np.r_[np.nextafter(low, -np.inf), inner, high])


def _fractions(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Share of ``values`` per bin; bin i holds edges[i-1] < v <= edges[i]."""
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI of two bin-fraction vectors (each summing to 1), empty bins floored at EPSILON."""
    e, a = np.maximum(expected, EPSILON), np.maximum(actual, EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def level(value: float) -> Level:
    return "significant" if value > SIGNIFICANT else "moderate" if value > MODERATE else "stable"
