"""Live settings: a YAML file (what to trade, how) plus secrets from the environment.

The YAML's ``strategy`` section has the same fields as the walk-forward config's and becomes
the same ``EnsembleStrategyConfig``; the models are the newest versions in a model registry.
Real money is refused unless the file says ``mode: live``, both CLI flags are given, the
Alpaca endpoint is the live one and the key is not a paper key.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec
import yaml

from adapters.alpaca.common import LIVE_BASE_URL, PAPER_BASE_URL, credentials_from_env
from adapters.polygon.common import DEFAULT_REST_URL, DEFAULT_WS_FEED, api_key_from_env
from models.registry import ModelRegistry
from strategies.risk import RiskRules


class LiveConfigError(ValueError):
    """A live config or environment that must not start a node; the message says why."""


class _Section(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class ModelsSection(_Section, kw_only=True):
    registry: str  # a model registry directory, e.g. a walk-forward run's models/
    weights: dict[str, float]


class StrategySection(_Section, kw_only=True):
    entry_threshold: float = 0.65
    allow_short: bool = True
    risk: RiskRules = RiskRules()


class PolygonSection(_Section, kw_only=True):
    base_url: str = DEFAULT_REST_URL
    ws_feed: str = DEFAULT_WS_FEED
    secure: bool = True
    stale_after_secs: float = 90.0


class AlpacaSection(_Section, kw_only=True):
    base_url: str = PAPER_BASE_URL
    stream_url: str | None = None


class LiveConfig(_Section, kw_only=True):
    name: str = "paper"
    mode: Literal["paper", "live"] = "paper"
    trader_id: str = "SEXTANT-001"
    universe: list[str]
    sectors: dict[str, str] = {}  # symbol -> sector for the caps (Alpaca assets carry none)
    models: ModelsSection
    strategy: StrategySection = StrategySection()
    polygon: PolygonSection = PolygonSection()
    alpaca: AlpacaSection = AlpacaSection()
    warmup_sessions: int = 3

    def model_dirs(self) -> dict[str, Path]:
        """The newest saved version of every weighted model."""
        registry = ModelRegistry(Path(self.models.registry))
        return {name: registry.path(name) for name in self.models.weights}

    def strategy_settings(self, instrument_ids: list[str]) -> dict:
        """EnsembleStrategyConfig fields, as a backtest window builds them, plus the claim on
        orders and positions of these instruments that reconciliation restores at start-up
        (else they belong to no strategy, and the flatten before the close would miss them)."""
        return {
            "external_order_claims": list(instrument_ids),
            "instrument_ids": list(instrument_ids),
            "weights": dict(self.models.weights),
            "entry_threshold": self.strategy.entry_threshold,
            "allow_short": self.strategy.allow_short,
            "risk": msgspec.to_builtins(self.strategy.risk),
        }


def load_live_config(path: str | Path) -> LiveConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as e:
        raise LiveConfigError(f"{path}: file not found") from e
    except yaml.YAMLError as e:
        raise LiveConfigError(f"{path}: malformed YAML: {e}") from e
    try:
        config = msgspec.convert(raw or {}, LiveConfig)
    except msgspec.ValidationError as e:
        # msgspec names the key as a JSON path, e.g. "... - at `$.strategy.risk.stop_loss`".
        raise LiveConfigError(f"{path}: {e}") from e
    if not config.universe:
        raise LiveConfigError(f"{path}: 'universe' must name at least one symbol")
    if not config.models.weights or sum(config.models.weights.values()) <= 0:
        raise LiveConfigError(f"{path}: 'models.weights' needs at least one positive weight")
    return config


def check_mode(config: LiveConfig, *, live_flag: bool, understood: bool,
               environ: Mapping[str, str] = os.environ) -> None:
    """Refuse anything that could trade real money by accident, before a node exists.

    Paper is the default. Live needs: ``mode: live`` in the file, ``--live`` and
    ``--i-understand-real-money`` on the command line, the live Alpaca endpoint, a live key
    (Alpaca paper keys start with "PK") and a Polygon key."""
    if config.mode == "paper":
        if live_flag:
            raise LiveConfigError("--live given but the config says mode: paper; refusing to guess")
        if config.alpaca.base_url.rstrip("/") == LIVE_BASE_URL:
            raise LiveConfigError(f"mode: paper but alpaca.base_url is the live endpoint {LIVE_BASE_URL}")
    else:
        missing = [flag for flag, given in (("--live", live_flag), ("--i-understand-real-money", understood))
                   if not given]
        if missing:
            raise LiveConfigError(f"mode: live trades real money and needs {' and '.join(missing)}")
        if config.alpaca.base_url.rstrip("/") != LIVE_BASE_URL:
            raise LiveConfigError(f"mode: live needs alpaca.base_url {LIVE_BASE_URL}, not {config.alpaca.base_url}")
    try:
        credentials = credentials_from_env(environ)
        api_key_from_env(environ)
    except RuntimeError as e:
        raise LiveConfigError(str(e)) from e
    if config.mode == "live" and credentials.key_id.startswith("PK"):
        raise LiveConfigError("mode: live but the Alpaca key is a paper key (PK...); set the live key pair")
