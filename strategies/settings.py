"""The strategy's settings: the one type for how the ensemble trades, with one set of bounds.

A walk-forward config, a live config and a tuner (its search space, its best.yaml) all hold a
``StrategySettings``; ``engine_fields`` turns it into the engine-facing
``EnsembleStrategyConfig`` a backtest window or a live node runs. ``validate_strategy_settings``
checks a plain mapping of them on its own.
"""

import math
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from models.names import NAME_PATTERN
from strategies.risk import RiskRules
from strategies.settings_file import convert

# A name that is also a registry directory and an MLSignal column (see models/names.py).
Name = Annotated[str, Meta(pattern=NAME_PATTERN)]
# Entering needs the ensemble to lean one way: 0.5 would trade coin flips, 1.0 never trades.
EntryThreshold = Annotated[float, Meta(gt=0.5, lt=1.0)]
MAX_WEIGHT = 1000.0  # weights are relative; a bound keeps inf and typos out
DEFAULT_WEIGHTS = {"lightgbm": 1.0, "xgboost": 1.0, "lstm": 1.0}


class StrategySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``weights``: model name -> weight in the ensemble vote (0 = trained and reported, not
    voting; at least one positive). The other fields are DESIGN.md's defaults."""

    weights: dict[Name, float] = msgspec.field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    entry_threshold: EntryThreshold = 0.65
    allow_short: bool = True
    risk: RiskRules = RiskRules()

    def __post_init__(self) -> None:
        for name, weight in self.weights.items():
            if not (math.isfinite(weight) and 0.0 <= weight <= MAX_WEIGHT):
                raise ValueError(f"'weights.{name}' must be between 0 and {MAX_WEIGHT:g}, got {weight!r}")
        if not any(w > 0 for w in self.weights.values()):
            raise ValueError("'weights' needs at least one model with a positive weight")

    def engine_fields(self, instrument_ids: list[str]) -> dict[str, Any]:
        """EnsembleStrategyConfig fields for trading ``instrument_ids``."""
        return {
            "instrument_ids": list(instrument_ids),
            "weights": dict(self.weights),
            "entry_threshold": self.entry_threshold,
            "allow_short": self.allow_short,
            "risk": msgspec.to_builtins(self.risk),
        }


def validate_strategy_settings(raw: Mapping[str, Any], source: str = "strategy settings") -> StrategySettings:
    """``raw`` (e.g. a tuning trial's parameters) as settings; SettingsFileError names the key."""
    return convert(raw, StrategySettings, source)
