"""What a study optimises and which of its trials wins.

``objective: sharpe`` maximises the Sharpe over the tuning folds. ``sharpe_drawdown`` also
minimises the max drawdown (NSGA-II): there is then no single best trial but a Pareto front,
and best.yaml takes the front's best Sharpe among trials within ``max_drawdown``, the limit a
user would impose anyway, rather than a weighted blend of the two whose weights nobody can
justify.
"""

import optuna
from optuna.trial import FrozenTrial

from backtests.tuning.config import TuneConfig


def study_directions(config: TuneConfig) -> list[str]:
    """Sharpe up; with ``sharpe_drawdown`` also max drawdown down."""
    return ["maximize", "minimize"] if config.multi_objective else ["maximize"]


def trial_sharpe(trial: FrozenTrial) -> float:
    """A finished trial's Sharpe, the first (or only) objective value."""
    return trial.values[0]


def select_best(config: TuneConfig, study: optuna.Study) -> FrozenTrial:
    """The trial best.yaml takes: the best Sharpe; in a multi-objective study the best Sharpe on
    the Pareto front among trials within ``max_drawdown`` or, when none is, the front's
    smallest drawdown (the closest the study came to the limit; the summary says so)."""
    if not config.multi_objective:
        return study.best_trial
    front = study.best_trials
    within = [t for t in front if t.values[1] <= config.max_drawdown]
    if within:
        return max(within, key=trial_sharpe)
    return min(front, key=lambda t: t.values[1])


def pareto_summary(config: TuneConfig, study: optuna.Study, best: FrozenTrial) -> dict:
    """The summary.json ``pareto`` entry of a multi-objective study."""
    return {"trials": sorted(t.number for t in study.best_trials),
            "max_drawdown_limit": config.max_drawdown,
            "best_within_limit": best.values[1] <= config.max_drawdown}
