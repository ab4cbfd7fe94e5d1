"""The walk-forward backtest configuration: typed, validated at load, errors name the key."""

import re
from pathlib import Path
from typing import Any

import msgspec
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from catalog.synthetic import SIGNAL_STRENGTH_MAX, SIGNAL_STRENGTH_MIN
from strategies.risk import RiskRules


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the key."""


# Model names become registry directories and MLSignal column names (comma-joined).
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]*")


def _same_kind(value: Any, default: Any) -> bool:
    """A hyperparameter value fits its default's type (an int is fine where a float is)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class GenerateConfig(_Strict):
    """How to build the embedded default catalog when the configured one does not exist."""

    symbols: int = Field(12, ge=1)
    days: int = Field(120, ge=5)
    seed: int = 7
    signal_strength: float = Field(0.0, ge=SIGNAL_STRENGTH_MIN, le=SIGNAL_STRENGTH_MAX)


class CatalogConfig(_Strict):
    path: Path = Path("data/catalog")
    generate: GenerateConfig = GenerateConfig()


class LabelConfig(_Strict):
    horizon: int = Field(15, ge=1, description="bars ahead the label looks")
    cost: float = Field(0.001, ge=0.0, description="round-trip cost a move must beat")


class WalkForwardConfig(_Strict):
    folds: int = Field(4, ge=1)
    train_days: int = Field(35, ge=2)
    test_days: int = Field(20, ge=1)
    embargo_days: int = Field(1, ge=0)
    anchored: bool = False


class ModelConfig(_Strict):
    weight: float = Field(1.0, ge=0.0)
    params: dict[str, Any] = {}


class StrategyConfig(_Strict):
    entry_threshold: float = Field(0.65, gt=0.5, lt=1.0)
    allow_short: bool = True
    risk: RiskRules = RiskRules()

    @field_validator("risk", mode="before")
    @classmethod
    def _risk(cls, value: Any) -> RiskRules:
        """RiskRules is the strategy's own msgspec config: validate with it, not a twin."""
        if isinstance(value, RiskRules):
            return value
        try:
            return msgspec.convert(value, RiskRules)
        except msgspec.ValidationError as e:
            raise ValueError(str(e).replace("$.", "risk.")) from e

    @field_serializer("risk")
    def _dump_risk(self, risk: RiskRules) -> dict:
        return msgspec.to_builtins(risk)


class VenueConfig(_Strict):
    starting_cash: float = Field(1_000_000.0, gt=0)
    commission_per_share: float = Field(0.005, ge=0)
    min_commission: float = Field(1.0, ge=0)
    slippage_probability: float = Field(0.5, ge=0, le=1, description="chance a fill slips a tick")


class BacktestConfig(_Strict):
    name: str = "walkforward"
    seed: int = 7
    catalog: CatalogConfig = CatalogConfig()
    universe: list[str] | None = None
    labels: LabelConfig = LabelConfig()
    walk_forward: WalkForwardConfig = WalkForwardConfig()
    models: dict[str, ModelConfig] = Field(default_factory=lambda: {
        "lightgbm": ModelConfig(), "xgboost": ModelConfig(), "lstm": ModelConfig()})
    strategy: StrategyConfig = StrategyConfig()
    venue: VenueConfig = VenueConfig()
    workers: int = Field(1, ge=1, description="parallel backtest windows")

    @field_validator("models")
    @classmethod
    def _known_models(cls, models: dict[str, ModelConfig]) -> dict[str, ModelConfig]:
        """Model kinds and hyperparameter names/types fail at load, not after data prep."""
        from models.zoo import MODEL_KINDS  # imported here: torch is heavy

        for name, spec in models.items():
            kind = name.split("@", 1)[0]  # same rule as backtests.walkforward._kind
            if kind not in MODEL_KINDS:
                raise ValueError(f"models.{name}: unknown model kind {kind!r}; known kinds: {sorted(MODEL_KINDS)}")
            if not _MODEL_NAME.fullmatch(name):
                raise ValueError(f"models.{name}: a model name may only use letters, digits and _.@-")
            defaults = MODEL_KINDS[kind].DEFAULTS
            for key, value in spec.params.items():
                if key not in defaults:
                    raise ValueError(f"unknown key 'models.{name}.params.{key}'; valid params: {sorted(defaults)}")
                if not _same_kind(value, defaults[key]):
                    raise ValueError(f"'models.{name}.params.{key}' must be {type(defaults[key]).__name__}, "
                                     f"got {value!r}")
        return models

    @model_validator(mode="after")
    def _weights(self) -> "BacktestConfig":
        if not self.models:
            raise ValueError("models: at least one model is required")
        if sum(m.weight for m in self.models.values()) <= 0:
            raise ValueError("models: at least one model needs a positive weight")
        return self

    def weights(self) -> dict[str, float]:
        return {name: m.weight for name, m in self.models.items()}

    def strategy_settings(self, instrument_ids: list[str]) -> dict[str, Any]:
        """EnsembleStrategyConfig fields for trading ``instrument_ids``: the one translation
        from this file to the strategy, used by backtest windows and replays alike."""
        return {
            "instrument_ids": list(instrument_ids),
            "weights": self.weights(),
            "entry_threshold": self.strategy.entry_threshold,
            "allow_short": self.strategy.allow_short,
            "risk": self.strategy.model_dump(mode="json")["risk"],
        }


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> BacktestConfig:
    """Read and validate a YAML config; relative catalog paths stay relative to the cwd."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: file not found") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: malformed YAML{where}: {getattr(e, 'problem', e)}") from e
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys, got {type(raw).__name__}")
    for dotted, value in (overrides or {}).items():
        try:
            _set_dotted(raw, dotted, value)
        except TypeError as e:
            raise ConfigError(f"{path}: {e}") from e
    try:
        return BacktestConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{path}: " + "; ".join(_describe(err) for err in e.errors())) from e


def _describe(err: dict) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "<root>"
    if err["type"] == "extra_forbidden":
        return f"unknown key '{key}'"
    return f"'{key}': {err['msg']} (got {err.get('input')!r})"


def _set_dotted(raw: dict, dotted: str, value: Any) -> None:
    node = raw
    *parents, leaf = dotted.split(".")
    for i, part in enumerate(parents):
        if node.get(part) is None:  # absent, or a YAML key left empty ("catalog:")
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            key = ".".join(parents[: i + 1])
            raise TypeError(f"'{key}' must be a mapping to set '{dotted}' (got {node!r})")
    node[leaf] = value
