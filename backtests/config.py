"""The walk-forward backtest configuration: typed, validated at load, errors name the key.

Read through ``strategies.settings_file`` (strict YAML, msgspec), like every Sextant config;
the ``strategy`` section is the one ``StrategySettings`` type a live config holds too.
"""

from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from catalog.synthetic import SIGNAL_STRENGTH_MAX, SIGNAL_STRENGTH_MIN
from models.ensemble import STACK_NAME, EnsembleConfig
from models.labels import DEFAULT_COST
from models.names import NAME_PATTERN
from models.outlook import DEFAULT_HORIZON, DEFAULT_VOLATILITY_FEATURE
from models.pipeline import FeatureSpec
from models.promotion import PromotionConfig
from models.selection import SelectionConfig
from models.universe import ScreenRule
from strategies.settings import Name, StrategySettings, read_settings_overlay
from strategies.settings_file import SettingsFileError, convert, read_yaml_mapping


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names the file and the key."""


PositiveInt = Annotated[int, Meta(ge=1)]
Seed = Annotated[int, Meta(ge=0)]  # numpy's and the models' random generators take no negative seed
RunName = Annotated[str, Meta(pattern=NAME_PATTERN)]  # a directory under --out


def _same_kind(value: Any, default: Any) -> bool:
    """A hyperparameter value fits its default's type (an int is fine where a float is)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    if isinstance(default, list) and default:  # a list of sizes or names: each item checked
        return isinstance(value, list) and all(_same_kind(v, default[0]) for v in value)
    return isinstance(value, type(default))


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class GenerateConfig(_Section):
    """How to build the embedded default catalog when the configured one does not exist."""

    symbols: PositiveInt = 12
    days: Annotated[int, Meta(ge=5)] = 120
    seed: Seed = 7
    signal_strength: Annotated[float, Meta(ge=SIGNAL_STRENGTH_MIN, le=SIGNAL_STRENGTH_MAX)] = 0.0


class CatalogConfig(_Section):
    path: Path = Path("data/catalog")
    generate: GenerateConfig = GenerateConfig()


class LabelConfig(_Section):
    horizon: PositiveInt = DEFAULT_HORIZON  # bars ahead the label looks
    cost: Annotated[float, Meta(ge=0.0)] = DEFAULT_COST  # round-trip cost a move must beat


class HorizonConfig(_Section):
    """Horizon models (``models.horizons``): the bar counts forecast, the trading horizon whose
    forecast is a signal's expected return, and the ridge penalty."""

    bars: Annotated[list[PositiveInt], Meta(min_length=1)] = msgspec.field(default_factory=lambda: [1, 5, 30, 60, 390])
    trade: PositiveInt = 30
    alpha: Annotated[float, Meta(gt=0.0)] = 0.1

    def __post_init__(self) -> None:
        if len(set(self.bars)) != len(self.bars):
            raise ValueError(f"'bars' must be distinct, got {self.bars}")
        if self.trade not in self.bars:
            raise ValueError(f"'trade' ({self.trade}) must be one of 'bars' {self.bars}")


class SignalConfig(_Section):
    """``volatility_feature``: the feature column read as a signal's forecast per-bar volatility
    (its risk score and a volatility-targeted stop): a realised volatility by default, a
    forecast-volatility column when a feature block provides one."""

    volatility_feature: str = DEFAULT_VOLATILITY_FEATURE


class WalkForwardConfig(_Section):
    folds: PositiveInt = 4
    train_days: Annotated[int, Meta(ge=2)] = 35
    test_days: PositiveInt = 20
    embargo_days: Annotated[int, Meta(ge=0)] = 1
    anchored: bool = False


class ModelConfig(_Section):
    """A model's hyperparameters: its kind's defaults, then the named ``preset``'s (e.g.
    ``brief``, the product brief's settings), then ``params``. Its weight in the vote is
    ``strategy.weights``."""

    preset: str | None = None
    params: dict[str, Any] = {}


class VenueConfig(_Section):
    starting_cash: Annotated[float, Meta(gt=0.0)] = 1_000_000.0
    commission_per_share: Annotated[float, Meta(ge=0.0)] = 0.005
    min_commission: Annotated[float, Meta(ge=0.0)] = 1.0
    slippage_probability: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.5  # chance a fill slips a tick


def _default_models() -> dict[str, ModelConfig]:
    return {name: ModelConfig() for name in StrategySettings().weights}


class BacktestConfig(_Section):
    """``models`` lists the models to train (name -> hyperparameters); ``strategy.weights``
    gives each of them its weight in the vote, so the two name the same models."""

    name: RunName = "walkforward"
    seed: Seed = 7
    catalog: CatalogConfig = CatalogConfig()
    universe: Annotated[list[str], Meta(min_length=1)] | None = None  # None: every catalog symbol
    labels: LabelConfig = LabelConfig()
    features: FeatureSpec = FeatureSpec()  # blocks beyond the base set (models.pipeline)
    walk_forward: WalkForwardConfig = WalkForwardConfig()
    models: dict[Name, ModelConfig] = msgspec.field(default_factory=_default_models)
    ensemble: EnsembleConfig = EnsembleConfig()
    selection: SelectionConfig | None = None  # None: every model sees every feature
    strategy: StrategySettings = StrategySettings()
    venue: VenueConfig = VenueConfig()
    horizons: HorizonConfig | None = None  # None: no horizon models, no expected return
    signal: SignalConfig = SignalConfig()
    universe_screen: ScreenRule | None = None  # None: trade every symbol of the universe
    workers: PositiveInt = 1  # parallel backtest windows
    promotion: PromotionConfig = PromotionConfig()  # the nightly retrain's guard (backtests.nightly)

    def __post_init__(self) -> None:
        """Model kinds, presets and hyperparameter names/types/choices fail at load, not after
        data prep (from the light kinds table: no ML library is imported)."""
        from models.zoo.kinds import MODEL_KINDS, check_param, preset_params

        if not self.models:
            raise ValueError("'models' at least one model is required")
        for name, spec in self.models.items():
            kind = name.split("@", 1)[0]  # same rule as backtests.train._kind
            if kind not in MODEL_KINDS:
                raise ValueError(f"'models.{name}' unknown model kind {kind!r}; known kinds: {sorted(MODEL_KINDS)}")
            try:
                preset_params(kind, spec.preset)
            except ValueError as e:
                raise ValueError(f"'models.{name}.preset' {e}") from None
            defaults = MODEL_KINDS[kind].defaults
            for key, value in spec.params.items():
                if key not in defaults:
                    raise ValueError(f"unknown key 'models.{name}.params.{key}'; valid params: {sorted(defaults)}")
                if not _same_kind(value, defaults[key]):
                    raise ValueError(f"'models.{name}.params.{key}' must be {type(defaults[key]).__name__}, "
                                     f"got {value!r}")
                try:
                    check_param(key, value)
                except ValueError as e:
                    raise ValueError(f"'models.{name}.params.{key}' {e}") from None
        self._check_model_inputs()
        for key, inner in (("ensemble", self.ensemble.inner_folds if self.ensemble.stacking else 0),
                           ("selection", self.selection.inner_folds if self.selection else 0)):
            # models.splits.inner_splits: a first training stretch and each inner test window
            # take at least a session, and the embargo separates them.
            if inner and self.walk_forward.train_days < inner + 1 + self.walk_forward.embargo_days:
                raise ValueError(f"'{key}.inner_folds' {inner} needs walk_forward.train_days >= "
                                 f"{inner + 1 + self.walk_forward.embargo_days}, got {self.walk_forward.train_days}")
        if set(self.signal_columns()) != set(self.strategy.weights):
            stack = f" and '{STACK_NAME}' (ensemble.method: stack)" if self.ensemble.stacking else ""
            raise ValueError(f"'strategy.weights' must weigh exactly the models in 'models'{stack}: models "
                             f"{sorted(self.models)}, weights {sorted(self.strategy.weights)}")

    def _check_model_inputs(self) -> None:
        """A model that names its input columns (the CNN's ``features``) must find them in the
        feature set; with SHAP selection the columns are only known per fold, so such a model
        must take the selected ones (``features: []``)."""
        from models.pipeline import feature_names
        from models.zoo.kinds import MODEL_KINDS, preset_params

        available = set(feature_names(self.features))
        for name, spec in self.models.items():
            kind = name.split("@", 1)[0]
            params = {**MODEL_KINDS[kind].defaults, **preset_params(kind, spec.preset), **spec.params}
            named = list(params.get("features") or [])
            if named and self.selection is not None:
                raise ValueError(f"'models.{name}.params.features' names its input columns, but 'selection' picks "
                                 "the columns per fold; set it to [] to feed the model the selected features")
            missing = [f for f in named if f not in available]
            if missing:
                raise ValueError(f"'models.{name}.params.features' {missing} are not in the feature set "
                                 f"('features' section gives {len(available)} columns)")

    def signal_columns(self) -> tuple[str, ...]:
        """The probabilities a trained run's MLSignals carry, in order: every model, then the
        stacking meta-learner when there is one; the names ``strategy.weights`` weighs."""
        return (*self.models, STACK_NAME) if self.ensemble.stacking else tuple(self.models)

    def weights(self) -> dict[str, float]:
        return dict(self.strategy.weights)

    def strategy_settings(self, instrument_ids: list[str]) -> dict[str, Any]:
        """EnsembleStrategyConfig fields for trading ``instrument_ids``: the one translation
        from this file to the strategy, used by backtest windows and replays alike."""
        return self.strategy.engine_fields(instrument_ids)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, what metrics.json records; ``parse_config`` reads it back."""
        return msgspec.to_builtins(self, enc_hook=str)


def parse_config(raw: dict[str, Any], source: str = "config") -> BacktestConfig:
    """A mapping (a parsed file, a dumped config) validated as a BacktestConfig. A file that
    lists ``models`` but gives no ``strategy.weights`` weighs each of those models 1 (with
    ``ensemble.method: stack``, the meta-learner 1 and the models 0)."""
    strategy = raw.get("strategy")
    models = raw.get("models")
    try:
        if isinstance(models, dict):
            for name, entry in models.items():  # one by one: msgspec's error would not name the model
                convert(entry, ModelConfig, source, at=f"models.{name}")
            if models and (strategy is None or isinstance(strategy, dict) and "weights" not in strategy):
                raw = {**raw, "strategy": {**(strategy or {}), "weights": _default_weights(models, raw.get("ensemble"))}}
        return convert(raw, BacktestConfig, source)
    except SettingsFileError as e:
        raise ConfigError(str(e)) from e


def _default_weights(models: dict[str, Any], ensemble: Any) -> dict[str, float]:
    """Each model weighs 1 in a vote; a stacked run trades the meta-learner alone."""
    if isinstance(ensemble, dict) and ensemble.get("method") == "stack":
        return dict.fromkeys(models, 0.0) | {STACK_NAME: 1.0}
    return dict.fromkeys(models, 1.0)


def load_config(path: str | Path, overrides: dict[str, Any] | None = None,
                params: str | Path | None = None) -> BacktestConfig:
    """Read and validate a YAML config; relative catalog paths stay relative to the cwd.
    ``params``: a settings overlay (best.yaml) replacing fields of the strategy section."""
    try:
        raw = read_yaml_mapping(path)
    except SettingsFileError as e:
        raise ConfigError(str(e)) from e
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value, path)
    config = parse_config(raw, str(path))
    return config if params is None else _with_params(config, params)


def _with_params(config: BacktestConfig, params: str | Path) -> BacktestConfig:
    """Validated again as a whole, so weights naming other models than ``models`` are refused
    with the overlay's file name."""
    try:
        strategy = read_settings_overlay(params).apply(config.strategy)
    except SettingsFileError as e:
        raise ConfigError(str(e)) from e
    return parse_config({**config.to_dict(), "strategy": msgspec.to_builtins(strategy)}, str(params))


def _set_dotted(raw: dict, dotted: str, value: Any, path: str | Path) -> None:
    node = raw
    *parents, leaf = dotted.split(".")
    for i, part in enumerate(parents):
        if node.get(part) is None:  # absent, or a YAML key left empty ("catalog:")
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            key = ".".join(parents[: i + 1])
            raise ConfigError(f"{path}: '{key}' must be a mapping to set '{dotted}' (got {node!r})")
    node[leaf] = value
