"""Every model kind's class location, CPU-sized defaults and named presets, without the libraries.

The config check and the live settings validate model names, params and presets against this
table; importing torch, scikit-learn, XGBoost or LightGBM costs seconds and hundreds of MB, so
the classes are only imported (``model_class``) when a model is actually built or loaded.

Defaults are sized for the CI: walk-forwards on 2 shared cores, tens of thousands of rows per
fold, a few seconds per fit. The ``brief`` presets are the product brief's settings, for a
machine that can afford them. ``n_jobs`` is the thread count a model trains and predicts with
(-1: all cores); a caller lowers it at run time with ``SignalModel.set_threads``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class KindSpec:
    """``target`` is "module:Class"; ``presets`` maps a preset name to the params it overrides."""

    target: str
    defaults: Mapping[str, Any]
    presets: Mapping[str, Mapping[str, Any]]


def _frozen(base: Mapping[str, Any] | None = None, **params: Any) -> Mapping[str, Any]:
    """A read-only mapping of ``base`` updated with ``params``."""
    return MappingProxyType({**(base or {}), **params})


_GBM: dict[str, Any] = {
    "n_estimators": 200,
    "learning_rate": 0.05,
    "max_depth": 4,
    "subsample": 0.7,
    "colsample": 0.7,
    "reg_lambda": 10.0,
    "early_stopping_rounds": 20,  # 0 disables early stopping
    "valid_fraction": 0.2,  # most recent share of train rows used only for early stopping
    "n_jobs": 2,
}

# The torch models share one training loop (models.zoo.training) and so one vocabulary.
_TORCH: dict[str, Any] = {
    "epochs": 4,  # at most; early stopping on the purged validation tail often stops sooner
    "patience": 2,  # epochs without a better validation loss before stopping; 0 disables
    "valid_fraction": 0.2,
    "batch_size": 256,
    "optimizer": "adam",  # adam | rmsprop
    "learning_rate": 3e-3,
    "weight_decay": 1e-5,  # L2 penalty on the weights
    "warmup_steps": 0,  # > 0: linear warm-up over this many steps, then inverse-sqrt decay
    "dropout": 0.0,
    "max_train_rows": 20_000,  # rows sampled from the training window (sequence kinds: 10k)
    "importance_sample": 1024,  # validation rows used for permutation importance; 0 disables
    "predict_batch_size": 1024,
    # One thread: on a 2-core machine with anything else running, torch's OpenMP threads spin
    # against each other (measured 8-25x slower forward passes at 2 threads under load).
    "n_jobs": 1,
}

# The 20 CNN input columns (see models.features): returns at six scales, volatility and range,
# trend and oscillators, volume, and time of day. Level-like features (EMA/SMA distances beyond
# 21 bars, OBV slopes) are left out: over a 30-bar image they hardly change.
CNN_FEATURES = (
    "ret_1", "ret_5", "ret_15", "ret_30", "ret_60", "ret_z_15",
    "rv_15", "rv_60", "rv_ratio_15_390", "hl_range", "bar_body", "atr_14",
    "rsi_14", "macd_hist", "bb_pctb", "close_ema_9", "ema_9_21",
    "vol_ratio_15", "vwap_dev", "tod",
)  # fmt: skip

MODEL_KINDS: Mapping[str, KindSpec] = MappingProxyType(
    {
        "lightgbm": KindSpec(
            "models.zoo.gbm:LightGBMModel",
            _frozen(_GBM, num_leaves=15, min_child_samples=200),
            _frozen(),
        ),
        "xgboost": KindSpec(
            "models.zoo.gbm:XGBoostModel",
            _frozen(_GBM, min_child_weight=50.0),
            _frozen(brief=_frozen(n_estimators=500, learning_rate=0.1, max_depth=8)),
        ),
        "random_forest": KindSpec(
            "models.zoo.forest:RandomForestModel",
            _frozen(
                n_estimators=100,
                max_depth=8,
                min_samples_split=10,
                min_samples_leaf=100,
                max_features=0.3,  # share of features tried per split
                max_samples=0.2,  # share of train rows bootstrapped per tree
                n_jobs=2,
            ),
            _frozen(
                brief=_frozen(
                    n_estimators=200, max_depth=15, min_samples_split=10, min_samples_leaf=1,
                    max_samples=1.0, n_jobs=-1,
                )
            ),
        ),
        "svm": KindSpec(
            "models.zoo.svm:SVMModel",
            _frozen(
                max_train_rows=2_000,  # RBF kernel fits are quadratic in rows: a bounded sample
                C=1.0,
                gamma=0.0,  # 0: scikit-learn's "scale" (1 / (n_features * var(X)))
                valid_fraction=0.2,  # purged tail the Platt calibration is fitted on
                importance_sample=512,
                n_jobs=1,
            ),
            _frozen(brief=_frozen(max_train_rows=20_000)),
        ),
        "mlp": KindSpec(
            "models.zoo.mlp:MLPModel",
            _frozen(_TORCH, hidden_sizes=[32, 16], dropout=0.1),
            _frozen(brief=_frozen(hidden_sizes=[128, 64, 32], max_train_rows=200_000)),
        ),
        "lstm": KindSpec(
            "models.zoo.lstm:LSTMModel",
            _frozen(_TORCH, seq_len=60, hidden_sizes=[32], max_train_rows=10_000),
            _frozen(
                brief=_frozen(
                    seq_len=60, hidden_sizes=[128, 64, 32], batch_size=256, optimizer="adam",
                    learning_rate=1e-3, epochs=30, patience=3, max_train_rows=200_000,
                )
            ),
        ),
        "transformer": KindSpec(
            "models.zoo.transformer:TransformerModel",
            _frozen(
                _TORCH, warmup_steps=50, max_train_rows=10_000,
                seq_len=30, d_model=16, heads=2, layers=1,
            ),
            _frozen(
                brief=_frozen(
                    seq_len=120, d_model=64, heads=4, layers=2, dropout=0.1, warmup_steps=400,
                    learning_rate=1e-3, epochs=30, patience=3, max_train_rows=200_000,
                )
            ),
        ),
        "cnn": KindSpec(
            "models.zoo.cnn:CNNModel",
            _frozen(
                _TORCH,
                optimizer="rmsprop",
                learning_rate=1e-3,
                max_train_rows=10_000,
                seq_len=30,
                features=list(CNN_FEATURES),  # [] = every panel feature
                channels=[8, 16],
                dense=16,
            ),
            _frozen(
                brief=_frozen(
                    channels=[32, 64], dense=50, dropout=0.3, weight_decay=0.01,
                    optimizer="rmsprop", learning_rate=5e-4, epochs=30, patience=3,
                    max_train_rows=200_000,
                )
            ),
        ),
    }
)

# Params whose value must be one of a few words, or lie in a range; checked with the rest of a
# config, before any data is read (a type check alone would let epochs: 0 through).
CHOICES: Mapping[str, tuple[str, ...]] = MappingProxyType({"optimizer": ("adam", "rmsprop")})
_AT_LEAST_ONE = (
    "n_estimators", "max_depth", "min_child_samples", "num_leaves", "min_samples_split",
    "min_samples_leaf", "max_train_rows", "epochs", "batch_size", "predict_batch_size",
    "seq_len", "d_model", "heads", "layers", "dense",
)  # fmt: skip
RANGES: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        **dict.fromkeys(_AT_LEAST_ONE, (1, float("inf"))),
        **dict.fromkeys(("valid_fraction", "dropout"), (0.0, 0.9)),
        **dict.fromkeys(("subsample", "colsample", "max_features", "max_samples"), (0.01, 1.0)),
        **dict.fromkeys(("learning_rate", "C"), (1e-9, float("inf"))),
        **dict.fromkeys(
            ("reg_lambda", "weight_decay", "gamma", "min_child_weight", "early_stopping_rounds",
             "patience", "warmup_steps", "importance_sample"), (0, float("inf"))
        ),
    }
)


def check_param(key: str, value: Any) -> None:
    """ValueError (saying what is allowed) if ``value`` is outside what ``key`` accepts."""
    if key in CHOICES and value not in CHOICES[key]:
        raise ValueError(f"must be one of {list(CHOICES[key])}, got {value!r}")
    if not isinstance(value, int | float) or isinstance(value, bool):
        if key in ("hidden_sizes", "channels") and (not value or min(value) < 1):
            raise ValueError(f"must be a non-empty list of sizes >= 1, got {value!r}")
        return
    if key == "n_jobs" and (value == 0 or value < -1):
        raise ValueError(f"must be >= 1 or -1 (every core), got {value!r}")
    if key in RANGES:
        low, high = RANGES[key]
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}, got {value!r}")


def kind_spec(kind: str) -> KindSpec:
    try:
        return MODEL_KINDS[kind]
    except KeyError:
        raise ValueError(
            f"unknown model kind {kind!r}; known kinds: {sorted(MODEL_KINDS)}"
        ) from None


def preset_params(kind: str, preset: str | None) -> dict[str, Any]:
    """The params ``preset`` sets for ``kind`` ({} for None); ValueError names unknown presets."""
    if preset is None:
        return {}
    presets = kind_spec(kind).presets
    if preset not in presets:
        raise ValueError(
            f"unknown {kind} preset {preset!r}; known presets: {sorted(presets) or 'none'}"
        )
    return dict(presets[preset])


def check_choice(key: str, value: Any) -> None:
    """ValueError if ``key`` takes one of a few words and ``value`` is none of them."""
    if key in CHOICES and value not in CHOICES[key]:
        raise ValueError(f"must be one of {list(CHOICES[key])}, got {value!r}")


def model_class(kind: str) -> type:
    """The ``SignalModel`` subclass of ``kind``, importing its library on first use."""
    module, _, cls = kind_spec(kind).target.partition(":")
    return getattr(importlib.import_module(module), cls)
