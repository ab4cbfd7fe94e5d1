"""What a signal says to a reader: decision, confidence, expected return, risk score, horizon.

The brief's signal output, computed once here for both producers of MLSignal rows (the train
step in batch, the live SignalActor for one bar), so a stored signal and a published one say
the same thing for the same inputs. The EnsembleStrategy decides its entries with the same
``decide``; it re-decides on every signal under its own (possibly tuned) settings, so a stored
``decision`` records what the settings the signals were produced with decide.

Risk score mapping (absolute, so it needs no fitting and cannot look ahead): the forecast
per-bar volatility sigma is scaled to a session, ``sigma * sqrt(390)``, and every
``RISK_SCORE_STEP`` (0.5%) of daily volatility is one point: score = ceil(daily / 0.5%),
clipped to 1..10. So 1 = under 0.5% a day (a quiet ETF), 4 = 1.5-2% (a typical large cap),
10 = 4.5% or more; 0 = no finite forecast (warm-up, or an old signal catalog).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.ensemble import ensemble_probability

BUY, SELL, HOLD = "BUY", "SELL", "HOLD"
BARS_PER_SESSION = 390
RISK_SCORE_STEP = 0.005
RISK_SCORE_MAX = 10
DEFAULT_VOLATILITY_FEATURE = "rv_60"  # a realised volatility of models.features
DEFAULT_HORIZON = 15  # bars: the default label horizon (backtests.config.LabelConfig)
OUTLOOK_FILE = "outlook.json"  # in a model registry's root: how its run computed the outlook


def decide(probability: float, threshold: float, allow_short: bool) -> str:
    """BUY when the ensemble is at least ``threshold`` sure the price rises, SELL when (shorts
    allowed) it is as sure it falls, HOLD otherwise: the entry rule of the strategy."""
    if probability >= threshold:
        return BUY
    if allow_short and probability <= 1.0 - threshold:
        return SELL
    return HOLD


def confidence(probability: float, decision: str) -> float:
    """The ensemble's probability of the side decided; for HOLD, of the likelier side."""
    if decision == BUY:
        return probability
    if decision == SELL:
        return 1.0 - probability
    return max(probability, 1.0 - probability)


def risk_scores(volatility: np.ndarray) -> np.ndarray:
    """1..10 from per-bar volatility (module docstring); 0 where it is not finite."""
    volatility = np.asarray(volatility, dtype=np.float64)
    daily = volatility * math.sqrt(BARS_PER_SESSION)
    finite = np.isfinite(daily)
    points = np.ceil(np.where(finite, daily, 0.0) / RISK_SCORE_STEP)
    return np.where(finite, np.clip(points, 1, RISK_SCORE_MAX), 0).astype(np.int64)


@dataclass(frozen=True)
class OutlookRule:
    """How the outlook of a signal is computed: the ensemble and entry rule of the strategy
    settings, the feature column read as forecast volatility, and the trading horizon (bars)
    whose horizon-model forecast is the expected return."""

    weights: Mapping[str, float]
    entry_threshold: float
    allow_short: bool
    volatility_feature: str
    horizon: int

    def volatility_column(self, feature_names: tuple[str, ...]) -> int:
        try:
            return feature_names.index(self.volatility_feature)
        except ValueError:
            raise ValueError(f"volatility feature {self.volatility_feature!r} is not a feature column; "
                             f"have {list(feature_names)}") from None


@dataclass(frozen=True)
class Outlook:
    """Per row: the columns MLSignal carries besides the models' probabilities."""

    decision: list[str]
    confidence: np.ndarray
    expected_return: np.ndarray
    risk_score: np.ndarray
    volatility: np.ndarray
    horizon: int
    horizons: tuple[int, ...]
    horizon_returns: np.ndarray  # (rows, len(horizons))

    def __len__(self) -> int:
        return len(self.volatility)

    def take(self, rows: np.ndarray) -> Outlook:
        """The outlook of ``rows`` (indices or a boolean mask) only."""
        picked = np.arange(len(self))[rows]
        return Outlook(
            decision=[self.decision[i] for i in picked.tolist()],
            confidence=self.confidence[picked],
            expected_return=self.expected_return[picked],
            risk_score=self.risk_score[picked],
            volatility=self.volatility[picked],
            horizon=self.horizon,
            horizons=self.horizons,
            horizon_returns=self.horizon_returns[picked],
        )


def outlook(
    rule: OutlookRule,
    probabilities: Mapping[str, np.ndarray],
    volatility: np.ndarray,
    horizons: tuple[int, ...] = (),
    horizon_returns: np.ndarray | None = None,
) -> Outlook:
    """The outlook of rows whose models gave ``probabilities`` (name -> array), whose
    volatility feature is ``volatility`` and whose horizon models forecast
    ``horizon_returns`` (one column per ``horizons``; none when no horizon model is trained).
    The expected return is the forecast at ``rule.horizon`` (NaN without horizon models)."""
    volatility = np.asarray(volatility, dtype=np.float64)
    n = len(volatility)
    returns = np.empty((n, 0)) if horizon_returns is None else np.asarray(horizon_returns, np.float64)
    if returns.shape != (n, len(horizons)):
        raise ValueError(f"horizon returns of shape {returns.shape} for {n} rows x horizons {horizons}")
    if horizons and rule.horizon not in horizons:
        raise ValueError(f"trading horizon {rule.horizon} is not one of the horizon models' {horizons}")
    ensemble = np.atleast_1d(np.asarray(ensemble_probability(probabilities, rule.weights), np.float64))
    decisions = [decide(p, rule.entry_threshold, rule.allow_short) for p in ensemble.tolist()]
    expected = returns[:, horizons.index(rule.horizon)] if horizons else np.full(n, np.nan)
    return Outlook(
        decision=decisions,
        confidence=np.array([confidence(p, d) for p, d in zip(ensemble.tolist(), decisions)], np.float64),
        expected_return=np.ascontiguousarray(expected, np.float64),
        risk_score=risk_scores(volatility),
        volatility=volatility,
        horizon=rule.horizon,
        horizons=tuple(horizons),
        horizon_returns=returns,
    )


def write_outlook_spec(registry_root: Path, volatility_feature: str, horizon: int, horizons_dir: str | None) -> None:
    """Record beside a run's models how its signals' outlook was computed, so a live actor
    loading those models computes it the same way. ``horizons_dir``: relative to the root."""
    spec = {"volatility_feature": volatility_feature, "horizon": horizon, "horizons_dir": horizons_dir}
    Path(registry_root).mkdir(parents=True, exist_ok=True)
    (Path(registry_root) / OUTLOOK_FILE).write_text(json.dumps(spec, indent=2))


def read_outlook_spec(registry_root: Path) -> dict:
    """The SignalActorConfig fields of ``write_outlook_spec`` (the horizon models' directory
    made absolute); the defaults, without horizon models, for a registry that has none."""
    path = Path(registry_root) / OUTLOOK_FILE
    if not path.is_file():
        return {"volatility_feature": DEFAULT_VOLATILITY_FEATURE, "horizon": DEFAULT_HORIZON, "horizons_dir": None}
    spec = json.loads(path.read_text())
    if spec["horizons_dir"] is not None:
        spec["horizons_dir"] = str(Path(registry_root) / spec["horizons_dir"])
    return spec
