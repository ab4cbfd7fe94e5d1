"""The strategy's settings: the one type for how the ensemble trades, with one set of bounds.

A walk-forward config, a live config and a tuner (its search space, its best.yaml) all hold a
``StrategySettings``; ``engine_fields`` turns it into the engine-facing
``EnsembleStrategyConfig`` a backtest window or a live node runs. ``validate_strategy_settings``
checks a plain mapping of them on its own; a ``SettingsOverlay`` (a tuner's best.yaml, given
to ``sextant backtest``/``sextant live`` with ``--params``) replaces some of them.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import msgspec
import yaml
from msgspec import Meta

from models.names import NAME_PATTERN
from strategies.risk import RiskRules
from strategies.settings_file import convert, read_yaml_mapping

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


class _OverlayFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    strategy: dict[str, Any]


@dataclass(frozen=True)
class SettingsOverlay:
    """Strategy settings that replace those of a config: the best.yaml file format.

    ::

        strategy:                      # any subset of StrategySettings' fields
          weights: {lightgbm: 0.4, xgboost: 0.35, lstm: 0.25}
          entry_threshold: 0.7
          risk: {stop_loss: 0.015}     # only these risk rules; the others stay the config's

    ``weights`` is replaced whole (a model left out does not vote with its old weight), the
    ``risk`` rules one by one. The result is validated with StrategySettings' own bounds, so
    an overlay is refused for exactly what a config would be refused for. ``source`` (the
    file) starts every error message."""

    source: str
    strategy: Mapping[str, Any]

    def apply(self, settings: StrategySettings) -> StrategySettings:
        """``settings`` with this overlay's fields; SettingsFileError names the file and key."""
        merged = msgspec.to_builtins(settings)
        for key, value in self.strategy.items():
            nested = key == "risk" and isinstance(value, Mapping)
            merged[key] = {**merged[key], **value} if nested else value
        return convert(merged, StrategySettings, self.source, at="strategy")


def read_settings_overlay(path: str | Path) -> SettingsOverlay:
    """The overlay in ``path``, checked on its own (keys, types, bounds); whether its weights
    name the models a config trains or a registry holds is for the config that applies it."""
    overlay = SettingsOverlay(str(path), convert(read_yaml_mapping(path), _OverlayFile, str(path)).strategy)
    overlay.apply(StrategySettings())
    return overlay


def write_settings_overlay(path: str | Path, strategy: Mapping[str, Any], comment: str = "") -> None:
    """Write ``strategy`` (fields of StrategySettings) as an overlay file, ``comment`` (e.g.
    which study and trial it comes from) as its header; refused unless it reads back."""
    overlay = SettingsOverlay(str(path), dict(strategy))
    overlay.apply(StrategySettings())
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    Path(path).write_text(header + yaml.safe_dump({"strategy": dict(strategy)}, sort_keys=False))
