"""A tuning study's search space: which strategy settings a trial may change, and how far.

Read from a tune config's ``parameters`` section. Every key is a StrategySettings field
(``entry_threshold``, ``allow_short``, ``risk.<rule>``) or ``weights``; its value is a range
(``{low, high}``, optionally ``log: true``), a list of ``choices``, or a plain value (fixed in
every trial). Each end of a range and each choice is checked against StrategySettings' own
bounds at load, so a study never discovers an impossible setting after hours of trials.

Weights are sampled on the simplex with a per-model cap, and every sample is feasible: TPE
proposes one uniform per model, ``-log(u)`` normalised is a flat Dirichlet draw, and the draw
is projected onto ``{sum w = 1, 0 <= w <= cap}`` by clipping to the cap and redistributing the
excess over the models still under it. Rejecting infeasible draws instead would waste trials
and teach TPE nothing.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from backtests.config import ConfigError
from strategies.settings import StrategySettings, validate_strategy_settings
from strategies.settings_file import SettingsFileError

DEFAULT_WEIGHT_CAP = 0.40
_UNIFORM_FLOOR = 1e-12  # -log(0) is infinite; a draw this small already means "weight ~0"


@dataclass(frozen=True)
class Where:
    """A key of a tune config, for messages: "tune.yaml: 'parameters.risk.stop_loss.low'"."""

    source: str
    key: str

    def at(self, sub: str) -> "Where":
        return Where(self.source, f"{self.key}.{sub}")

    def __str__(self) -> str:
        return f"{self.source}: '{self.key}'"


class Suggester(Protocol):
    """What sampling needs of an Optuna trial (``optuna.Trial`` is one)."""

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...
    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int: ...
    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


@dataclass(frozen=True)
class Range:
    low: float | int
    high: float | int
    log: bool = False


@dataclass(frozen=True)
class Choices:
    values: tuple[Any, ...]


@dataclass(frozen=True)
class SearchSpace:
    """``models``: the models whose weights are tuned (those the walk-forward run trains);
    ``weight_cap``: None keeps ``base``'s weights in every trial; ``tuned``/``fixed``: dotted
    StrategySettings keys; ``base``: the walk-forward config's settings, which fill the rest."""

    base: StrategySettings
    models: tuple[str, ...]
    weight_cap: float | None
    tuned: Mapping[str, Range | Choices]
    fixed: Mapping[str, Any]

    def sample(self, trial: Suggester) -> dict[str, Any]:
        """One trial's strategy overlay (the best.yaml ``strategy`` mapping)."""
        overlay: dict[str, Any] = {}
        for key, value in self.fixed.items():
            _put(overlay, key, value)
        for key, spec in self.tuned.items():
            _put(overlay, key, _suggest(trial, key, spec, self._is_int(key)))
        if self.weight_cap is not None:
            draws = [-math.log(trial.suggest_float(f"weight_u.{m}", _UNIFORM_FLOOR, 1.0)) for m in self.models]
            overlay["weights"] = dict(zip(self.models, capped_simplex(draws, self.weight_cap)))
        return overlay

    def settings(self, overlay: Mapping[str, Any]) -> StrategySettings:
        """``base`` with ``overlay`` applied (how a backtest with ``--params`` applies it)."""
        merged = msgspec.to_builtins(self.base)
        for key, value in overlay.items():
            merged[key] = {**merged[key], **value} if key == "risk" else value
        return validate_strategy_settings(merged, "trial settings")

    def _is_int(self, key: str) -> bool:
        default = _get(msgspec.to_builtins(self.base), key)
        return isinstance(default, int) and not isinstance(default, bool)


def capped_simplex(draws: Sequence[float], cap: float) -> list[float]:
    """``draws`` (positive) normalised to sum 1 with no share above ``cap``: shares over the cap
    are set to it and the excess goes to the others in proportion to their draws, repeated
    until none exceeds it (at most one round per model). Needs ``cap * len(draws) >= 1``."""
    n = len(draws)
    if n == 0 or cap * n < 1.0 - 1e-12:
        raise ValueError(f"cap {cap} x {n} models < 1: no weights can sum to 1")
    weights = [0.0] * n
    free = list(range(n))
    mass = 1.0
    while free:
        total = sum(draws[i] for i in free)
        over = [i for i in free if mass * draws[i] / total > cap]
        if not over:
            for i in free:
                weights[i] = mass * draws[i] / total
            break
        for i in over:
            weights[i] = cap
        mass -= cap * len(over)
        free = [i for i in free if i not in over]
    return weights


def build_space(raw: Mapping[str, Any], base: StrategySettings, source: str) -> SearchSpace:
    """The ``parameters`` mapping of a tune config as a SearchSpace; ConfigError names the key."""
    defaults = msgspec.to_builtins(base)
    known = [k for k in defaults if k not in ("weights", "risk")] + [f"risk.{k}" for k in defaults["risk"]]
    models = tuple(base.weights)
    weight_cap: float | None = None
    tuned: dict[str, Range | Choices] = {}
    fixed: dict[str, Any] = {}
    for key, value in raw.items():
        where = Where(source, f"parameters.{key}")
        if key == "weights":
            weight_cap = _weight_cap(value, len(models), where)
            continue
        if key not in known:
            raise ConfigError(f"{source}: unknown parameter 'parameters.{key}'; tunable: weights, {', '.join(known)}")
        default = _get(defaults, key)
        if isinstance(value, Mapping):
            spec = _spec(value, default, where)
            for end, candidate in _ends(spec):
                _check_bounds(defaults, key, candidate, where.at(end))
            tuned[key] = spec
        else:
            _check_bounds(defaults, key, value, where)
            fixed[key] = value
    return SearchSpace(base=base, models=models, weight_cap=weight_cap, tuned=tuned, fixed=fixed)


def _weight_cap(value: Any, n_models: int, where: Where) -> float:
    if not isinstance(value, Mapping) or set(value) - {"cap"}:
        raise ConfigError(f"{where}: expected a mapping with only 'cap' (e.g. {{cap: {DEFAULT_WEIGHT_CAP}}}), got {value!r}")
    cap = value.get("cap", DEFAULT_WEIGHT_CAP)
    if isinstance(cap, bool) or not isinstance(cap, int | float) or not 0.0 < cap <= 1.0:
        raise ConfigError(f"{where.at('cap')}: must be a number in (0, 1], got {cap!r}")
    if cap * n_models < 1.0 - 1e-12:
        raise ConfigError(f"{where.at('cap')}: {cap} x {n_models} models = {cap * n_models:g} < 1, so no weights "
                          "can sum to 1; raise the cap or train more models")
    return float(cap)


def _spec(value: Mapping[str, Any], default: Any, where: Where) -> Range | Choices:
    if set(value) == {"choices"}:
        choices = value["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where.at('choices')}: expected a non-empty list, got {choices!r}")
        return Choices(tuple(choices))
    if isinstance(default, bool):
        raise ConfigError(f"{where}: a true/false setting takes 'choices: [true, false]' or a fixed value")
    unknown = set(value) - {"low", "high", "log"}
    if unknown or not {"low", "high"} <= set(value):
        raise ConfigError(f"{where}: expected {{low, high}} (optionally log) or {{choices}}, got keys {sorted(value)}")
    low, high, log = value["low"], value["high"], value.get("log", False)
    kind = int if isinstance(default, int) else (int, float)
    for end, bound in (("low", low), ("high", high)):
        if isinstance(bound, bool) or not isinstance(bound, kind):
            raise ConfigError(f"{where.at(end)}: expected {'an integer' if kind is int else 'a number'}, got {bound!r}")
    if not low < high:
        raise ConfigError(f"{where}: empty or inverted range (low {low} must be below high {high})")
    if not isinstance(log, bool) or (log and low <= 0):
        raise ConfigError(f"{where.at('log')}: must be true or false, and a log range needs low > 0")
    return Range(low, high, log)


def _ends(spec: Range | Choices) -> list[tuple[str, Any]]:
    if isinstance(spec, Range):
        return [("low", spec.low), ("high", spec.high)]  # the bounds are intervals: both ends suffice
    return [(f"choices[{i}]", v) for i, v in enumerate(spec.values)]


def _check_bounds(defaults: dict[str, Any], key: str, value: Any, where: Where) -> None:
    trial = {**defaults, "risk": dict(defaults["risk"])}
    _put(trial, key, value)
    try:
        validate_strategy_settings(trial, "strategy settings")
    except SettingsFileError as e:
        raise ConfigError(f"{where}: {value!r} is outside the strategy settings' bounds ({e})") from e


def _suggest(trial: Suggester, key: str, spec: Range | Choices, is_int: bool) -> Any:
    if isinstance(spec, Choices):
        return trial.suggest_categorical(key, list(spec.values))
    if is_int:
        return trial.suggest_int(key, int(spec.low), int(spec.high), log=spec.log)
    return trial.suggest_float(key, float(spec.low), float(spec.high), log=spec.log)


def _put(target: dict[str, Any], dotted: str, value: Any) -> None:
    head, _, rest = dotted.partition(".")
    if rest:
        target.setdefault(head, {})[rest] = value
    else:
        target[head] = value


def _get(source: Mapping[str, Any], dotted: str) -> Any:
    head, _, rest = dotted.partition(".")
    return source[head][rest] if rest else source[head]
