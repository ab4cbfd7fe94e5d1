"""A tune config: which walk-forward config a study tunes, what it holds out, what it searches.

::

    walkforward: walkforward.yaml   # relative to this file
    holdout_folds: 1                # the last folds: never traded by a trial
    min_trades: 10                  # fewer closed trades in the tuning folds: not a Sharpe
    seed: 7                         # the sampler's seed
    heartbeat_seconds: 60           # a worker silent for twice this is dead; its trial is retried
    objective: sharpe               # or sharpe_drawdown: NSGA-II on (Sharpe up, max drawdown down)
    max_drawdown: 0.10              # sharpe_drawdown: best.yaml is the Pareto trial with the best
                                    # Sharpe among those whose drawdown is within this
    parameters: {...}               # the search space (backtests/tuning/space.py)

Read through ``strategies.settings_file`` like every Sextant config; errors are ConfigError
naming the file and key.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from backtests.config import BacktestConfig, ConfigError, load_config
from backtests.tuning.space import SearchSpace, build_space
from strategies.settings_file import SettingsFileError, convert, read_yaml_mapping


class _TuneFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    walkforward: str
    holdout_folds: Annotated[int, Meta(ge=1)] = 1
    min_trades: Annotated[int, Meta(ge=0)] = 10
    seed: Annotated[int, Meta(ge=0)] = 7
    heartbeat_seconds: Annotated[int, Meta(ge=1, le=3600)] = 60
    objective: Literal["sharpe", "sharpe_drawdown"] = "sharpe"
    max_drawdown: Annotated[float, Meta(gt=0.0, le=1.0)] = 0.10
    parameters: dict[str, Any] = {}


@dataclass(frozen=True)
class TuneConfig:
    source: Path
    walkforward: BacktestConfig
    holdout_folds: int
    min_trades: int
    seed: int
    heartbeat_seconds: int
    space: SearchSpace
    objective: str = "sharpe"
    max_drawdown: float = 0.10

    @property
    def multi_objective(self) -> bool:
        return self.objective == "sharpe_drawdown"


def load_tune_config(path: str | Path, catalog: Path | None = None) -> TuneConfig:
    """The tune config in ``path`` and the walk-forward config it names; ``catalog``
    overrides the walk-forward config's catalog path (``--catalog``)."""
    path = Path(path)
    try:
        raw = convert(read_yaml_mapping(path), _TuneFile, str(path))
    except SettingsFileError as e:
        raise ConfigError(str(e)) from e
    overrides = {"catalog.path": str(catalog)} if catalog else None
    walkforward = load_config(path.parent / raw.walkforward, overrides=overrides)
    if raw.holdout_folds >= walkforward.walk_forward.folds:
        raise ConfigError(f"{path}: 'holdout_folds' {raw.holdout_folds} leaves no fold to tune on: "
                          f"{raw.walkforward} has {walkforward.walk_forward.folds} folds")
    return TuneConfig(
        source=path,
        walkforward=walkforward,
        holdout_folds=raw.holdout_folds,
        min_trades=raw.min_trades,
        seed=raw.seed,
        heartbeat_seconds=raw.heartbeat_seconds,
        space=build_space(raw.parameters, walkforward.strategy, str(path)),
        objective=raw.objective,
        max_drawdown=raw.max_drawdown,
    )
