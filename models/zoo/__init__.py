"""Model zoo: the registry of model kinds and the constructors the rest of Sextant calls.

Callers name a kind, an optional preset and hyperparameters (e.g. from a YAML experiment
config) and get a ``SignalModel``; they never import a concrete class, so adding a kind is one
entry in ``models.zoo.kinds``. Importing this package imports no ML library: each kind's
module (and torch, scikit-learn, XGBoost or LightGBM with it) loads when a model of that kind
is first built or loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from models.zoo.base import SignalModel, read_header
from models.zoo.kinds import MODEL_KINDS, model_class, preset_params


def build_model(
    kind: str,
    params: Mapping[str, Any] | None = None,
    name: str | None = None,
    preset: str | None = None,
) -> SignalModel:
    """A fresh, unfitted model of ``kind``: its defaults, then ``preset``'s params, then
    ``params``; ValueError names unknown kinds, presets or params."""
    merged = {**preset_params(kind, preset), **(params or {})}
    return model_class(kind)(merged, name=name)


def load_model(dir: Path) -> SignalModel:
    """Load a model saved with ``SignalModel.save`` without knowing its kind in advance."""
    return model_class(read_header(dir)["kind"]).load(dir)


__all__ = ["MODEL_KINDS", "SignalModel", "build_model", "load_model", "model_class"]
