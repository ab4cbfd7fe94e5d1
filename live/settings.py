"""Live settings: a YAML file (what to trade, how) plus secrets from the environment.

Read through ``strategies.settings_file`` like every Sextant config. The ``strategy`` section
is the ``StrategySettings`` a walk-forward config holds, and becomes the same
``EnsembleStrategyConfig``; the models are the registry's pinned champion ensemble
(``models.promotion``), never merely its newest versions, and the universe defaults to the one
they were trained on. A registry nobody pinned yet (a fresh walk-forward run) gets its newest
ensemble pinned once, explicitly: recorded in its promotion history and logged, so what a node
trades is always a decision someone (or the guarded nightly promotion) can point to. Real money is refused unless the file says
``mode: live``, both CLI flags are given, the Alpaca host is the live one and the key is a
live key; paper trading never reaches the live host nor uses a live key.
"""

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec
from msgspec import Meta

from adapters.alpaca.common import (
    PAPER_BASE_URL,
    AlpacaEndpointError,
    MissingCredentialsError,
    check_endpoints,
    check_key,
    credentials_from_env,
)
from adapters.polygon.common import (
    DEFAULT_REST_URL,
    DEFAULT_WS_FEED,
    MissingApiKeyError,
    api_key_from_env,
)
from catalog.errors import InvalidSymbolError
from catalog.instruments import parse_symbol
from live.journal.settings import JournalSettings
from live.schedule import ScheduleSection
from models.names import NAME_PATTERN
from models.universe import ScreenRule
from strategies.settings import StrategySettings, read_settings_overlay
from strategies.settings_file import SettingsFileError, convert, read_yaml_mapping

if TYPE_CHECKING:
    from models.promotion import Ensemble


_log = logging.getLogger(__name__)


class LiveConfigError(Exception):
    """A live config or environment that must not start a node; the message says why."""


class _Section(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class ModelsSection(_Section, kw_only=True):
    """The models are ``strategy.weights``' names, at the versions of ``registry``'s champion.
    ``retrain``: the walk-forward config whose train step and promotion rule the nightly
    retrain runs after each close (`sextant run`), a path relative to the live config (resolved
    at load); none, the post-close retrains nothing. Its ``catalog.path`` is not read: a night
    retrains on the catalog the day was traded from (``schedule.catalog``, or a rehearsal's)."""

    registry: str  # a model registry directory, e.g. a walk-forward run's models/
    retrain: str | None = None


class PolygonSection(_Section, kw_only=True):
    base_url: str = DEFAULT_REST_URL
    ws_feed: str = DEFAULT_WS_FEED
    secure: bool = True
    stale_after_secs: Annotated[float, Meta(gt=0.0)] = 90.0


class AlpacaSection(_Section, kw_only=True):
    """``allow_custom_host``: permit a host that is neither Alpaca's paper host, its live
    host nor loopback (a proxy); the key must still belong to the mode's account."""

    base_url: str = PAPER_BASE_URL
    stream_url: str | None = None
    allow_custom_host: bool = False


class LiveConfig(_Section, kw_only=True):
    """``universe``: the symbols to trade; omitted, the universe the models were trained on."""

    name: Annotated[str, Meta(pattern=NAME_PATTERN)] = "paper"  # a directory under --out
    mode: Literal["paper", "live"] = "paper"
    trader_id: str = "SEXTANT-001"
    universe: Annotated[list[str], Meta(min_length=1)] | None = None
    sectors: dict[str, str] = {}  # symbol -> sector for the caps (Alpaca assets carry none)
    models: ModelsSection
    strategy: StrategySettings = StrategySettings()
    polygon: PolygonSection = PolygonSection()
    alpaca: AlpacaSection = AlpacaSection()
    warmup_sessions: Annotated[int, Meta(ge=0, le=60)] = 3
    # How long the SignalActor waits for a bar close's missing symbols (no trades, no aggregate).
    close_wait_ms: Annotated[int, Meta(ge=1, le=60_000)] = 1_000
    # The weekly universe screen (models.universe, the walk-forward's rule), run by `sextant run`
    # at pre-open over schedule.catalog: only the stocks it passes get signals that week.
    universe_screen: ScreenRule | None = None
    schedule: ScheduleSection = ScheduleSection()  # `sextant run`'s phase times (live.schedule)
    journal: JournalSettings = JournalSettings()  # where the record of each run goes (live.journal)

    def __post_init__(self) -> None:
        """The endpoint must fit the mode whatever the flags and keys: checked at load, so
        every command that reads a live config refuses a paper config aimed at real money."""
        try:
            check_endpoints(self.alpaca.base_url, self.alpaca.stream_url, paper=self.mode == "paper",
                            allow_custom_host=self.alpaca.allow_custom_host)
        except AlpacaEndpointError as e:
            raise ValueError(f"'alpaca.base_url' {e}") from e
        if self.universe_screen is not None and self.schedule.catalog is None:
            raise ValueError("'universe_screen' screens the bars of 'schedule.catalog', which is not set")

    def model_dirs(self) -> dict[str, Path]:
        """The champion's saved version of every weighted model."""
        from models.registry import ModelRegistry  # imported here: the model zoo loads torch

        registry = ModelRegistry(Path(self.models.registry))
        champion = self.champion()
        return {name: registry.path(name, champion.versions[name]) for name in self.strategy.weights}

    def champion(self) -> "Ensemble":
        """The registry's pinned ensemble; a registry without one gets its newest ensemble
        holding every weighted model pinned, once, with a warning (module docstring)."""
        from models.promotion import champion_or_pin_newest
        from models.registry import ModelRegistry

        registry = ModelRegistry(Path(self.models.registry))
        champion, pinned = champion_or_pin_newest(registry, list(self.strategy.weights))
        if pinned is not None:
            _log.warning("%s had no champion: pinned %s (see `sextant models list --registry %s`)",
                         registry.root, champion.label(), registry.root)
        return champion

    def outlook_fields(self) -> dict:
        """SignalActorConfig fields for the signals' outlook: this config's ensemble and entry
        rule, the volatility feature and horizon the registry's run used, and the champion's
        horizon models (the spec names the newest fold's, which may be a challenger's)."""
        from models.outlook import read_outlook_spec

        root = Path(self.models.registry)
        spec = read_outlook_spec(root)
        horizons = self.champion().horizons_dir
        return {"weights": dict(self.strategy.weights), "entry_threshold": self.strategy.entry_threshold,
                "allow_short": self.strategy.allow_short,
                **spec, "horizons_dir": str(root / horizons) if spec["horizons_dir"] and horizons else None}

    def strategy_settings(self, instrument_ids: list[str]) -> dict:
        """EnsembleStrategyConfig fields, as a backtest window builds them, plus the claim on
        orders and positions of these instruments that reconciliation restores at start-up
        (else they belong to no strategy, and the flatten before the close would miss them)."""
        return {"external_order_claims": list(instrument_ids), **self.strategy.engine_fields(instrument_ids)}


def load_live_config(path: str | Path, params: str | Path | None = None) -> LiveConfig:
    """The validated config with its models found and its universe resolved, so a missing
    registry or model is refused here with a message, not when the node starts. ``params``:
    a settings overlay (a tuning study's best.yaml) replacing fields of the strategy section."""
    weights_source = str(path)
    try:
        config = convert(read_yaml_mapping(path), LiveConfig, str(path))
        if params is not None:
            overlay = read_settings_overlay(params)
            config = msgspec.structs.replace(config, strategy=overlay.apply(config.strategy))
            if "weights" in overlay.strategy:
                weights_source = overlay.source
    except SettingsFileError as e:
        raise LiveConfigError(str(e)) from e
    return _with_models(_with_retrain(config, Path(path)), str(path), weights_source)


def _with_retrain(config: LiveConfig, path: Path) -> LiveConfig:
    """``models.retrain`` resolved against the live config's directory. It must be a file; what
    it holds is the walk-forward schema's to check (``live`` reads no backtest config: the
    command that builds the retrain hook loads it, before anything runs)."""
    if config.models.retrain is None:
        return config
    retrain = path.parent / config.models.retrain
    if not retrain.is_file():
        raise LiveConfigError(f"{path}: 'models.retrain': {retrain} is not a file (the walk-forward config the "
                              "nightly retrain runs; a path relative to this file)")
    return msgspec.structs.replace(config, models=msgspec.structs.replace(config.models, retrain=str(retrain)))


def _with_models(config: LiveConfig, source: str, weights_source: str) -> LiveConfig:
    """``weights_source``: the file the weights came from, the config or its overlay."""
    from models.promotion import PromotionError
    from models.registry import ModelNotFoundError, ModelRegistry, UniverseError

    registry = ModelRegistry(Path(config.models.registry))
    if not registry.root.is_dir():
        raise LiveConfigError(f"{source}: 'models.registry': {registry.root} is not a model registry (no such "
                              "directory); run `sextant backtest` first, or point it at a run's models/")
    names = list(config.strategy.weights)
    try:
        for name in names:
            registry.latest(name)
        champion = config.champion()
    except ModelNotFoundError as e:
        raise LiveConfigError(f"{weights_source}: 'strategy.weights' names a model the registry lacks: {e}; "
                              f"saved models: {registry.names() or 'none'}") from e
    except PromotionError as e:
        raise LiveConfigError(f"{source}: 'models.registry': {e}") from e
    missing = sorted(set(names) - set(champion.versions))
    if missing:
        raise LiveConfigError(f"{weights_source}: 'strategy.weights' names {missing}, which the champion "
                              f"{champion.label()} of {registry.root} lacks; pin an ensemble that has them")
    if config.universe is not None:
        try:
            universe = list(dict.fromkeys(parse_symbol(s) for s in config.universe))
        except InvalidSymbolError as e:
            raise LiveConfigError(f"{source}: 'universe': {e}") from e
        return msgspec.structs.replace(config, universe=universe)
    try:
        universe = registry.trained_universe(names, champion.versions)
    except UniverseError as e:
        raise LiveConfigError(f"{source}: 'universe' is not given and {e}; list the symbols to trade "
                              "under 'universe'") from e
    return msgspec.structs.replace(config, universe=universe)


def check_mode(config: LiveConfig, *, live_flag: bool, understood: bool,
               environ: Mapping[str, str] = os.environ) -> None:
    """Refuse anything that could trade real money by accident, before a node exists.

    Paper is the default. Live needs: ``mode: live`` in the file, ``--live`` and
    ``--i-understand-real-money`` on the command line, the live Alpaca host, a live key and
    a Polygon key. Paper needs a paper key (Alpaca paper keys start with "PK") unless the
    endpoint is a loopback sandbox."""
    paper = config.mode == "paper"
    if paper and live_flag:
        raise LiveConfigError("--live given but the config says mode: paper; refusing to guess")
    if not paper:
        missing = [flag for flag, given in (("--live", live_flag), ("--i-understand-real-money", understood))
                   if not given]
        if missing:
            raise LiveConfigError(f"mode: live trades real money and needs {' and '.join(missing)}")
    try:
        kind = check_endpoints(config.alpaca.base_url, config.alpaca.stream_url, paper=paper,
                               allow_custom_host=config.alpaca.allow_custom_host)
        credentials = credentials_from_env(environ)
        api_key_from_env(environ)
        check_key(credentials.key_id, paper=paper, kind=kind)
    except (AlpacaEndpointError, MissingCredentialsError, MissingApiKeyError) as e:
        raise LiveConfigError(f"mode: {config.mode}: {e}") from e
