"""Model zoo: the registry of model kinds and the constructors the rest of Sextant calls.

Callers name a kind and hyperparameters (e.g. from a YAML experiment config) and get a
``SignalModel``; they never import a concrete class, so adding a kind is one entry here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from models.zoo.base import SignalModel, read_header
from models.zoo.gbm import LightGBMModel, XGBoostModel
from models.zoo.lstm import LSTMModel

MODEL_KINDS: dict[str, type[SignalModel]] = {
    "lightgbm": LightGBMModel,
    "xgboost": XGBoostModel,
    "lstm": LSTMModel,
}


def _model_class(kind: str) -> type[SignalModel]:
    try:
        return MODEL_KINDS[kind]
    except KeyError:
        raise ValueError(
            f"unknown model kind {kind!r}; known kinds: {sorted(MODEL_KINDS)}"
        ) from None


def build_model(
    kind: str, params: Mapping[str, Any] | None = None, name: str | None = None
) -> SignalModel:
    """A fresh, unfitted model of ``kind``; ValueError names unknown kinds or params."""
    return _model_class(kind)(params, name=name)


def load_model(dir: Path) -> SignalModel:
    """Load a model saved with ``SignalModel.save`` without knowing its kind in advance."""
    return _model_class(read_header(dir)["kind"]).load(dir)


__all__ = ["MODEL_KINDS", "SignalModel", "build_model", "load_model"]
