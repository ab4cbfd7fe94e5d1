"""The trial side of a tuning study: what a worker process runs, and nothing else.

A trial is the backtests of the tuning folds (every fold but the holdout) under one sampled
setting, one fresh process per window (NautilusTrader 1.221 leaks memory across in-process
runs), the windows run one by one so the pruner can stop a trial after any fold. Its objective
is the annualised Sharpe of its daily returns after costs; a trial with fewer closed trades than
``min_trades`` is marked so and scores ``TOO_FEW_TRADES_SCORE``, never a lucky Sharpe of two
trades. Every completed trial's daily return series is kept in the study's own directory
(<out>/tune-<study>/returns/): the DSR and the PBO need the matrix of all of them.

With ``objective: sharpe_drawdown`` a trial scores (Sharpe, max drawdown) and NSGA-II searches
the Pareto front of the two; the pruner is off (Optuna prunes single-objective studies only).

This module imports neither the train step (torch, the model zoo) nor the report (plotly):
a worker pays at start-up only for what a trial runs, which is what lets a trial cost no more
than its backtests (``sextant bench --part tune``). Training and the end of a study are in
``backtests.tuning.study``.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from backtests.trade import TradeResult, measure, window_spec
from backtests.trained import MANIFEST, TrainedRun
from backtests.tuning.config import TuneConfig
from backtests.window import run_windows
from models.names import check_name
from models.splits import Fold
from strategies.settings import StrategySettings


class StudyError(Exception):
    """A study that cannot give what was asked (e.g. no completed trial to report on)."""


TOO_FEW_TRADES_SCORE = -10.0  # below any Sharpe a real strategy shows; the user attribute says why
RUN_DIR_ATTR = "run_dir"


@dataclass(frozen=True)
class StudyFiles:
    """Where a study's own files live: <out>/tune-<study>/."""

    root: Path

    @classmethod
    def of(cls, out_root: Path, study_name: str) -> "StudyFiles":
        check_name(study_name, "study name")
        return cls(Path(out_root) / f"tune-{study_name}")

    @property
    def trials(self) -> Path:
        return self.root / "trials"

    @property
    def trial_returns(self) -> Path:
        return self.root / "returns"

    @property
    def returns(self) -> Path:
        return self.root / "returns.parquet"

    @property
    def holdout(self) -> Path:
        return self.root / "holdout"

    @property
    def best(self) -> Path:
        return self.root / "best.yaml"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"


def study_run(study: optuna.Study) -> TrainedRun:
    """The run a study trades, from the path it recorded (a shared directory when the study
    is shared by several machines)."""
    run_dir = Path(study.user_attrs[RUN_DIR_ATTR])
    if not (run_dir / MANIFEST).is_file():
        raise StudyError(f"study {study.study_name!r} trades the run trained into {run_dir}, which this "
                         "machine cannot read: share that directory (same path) or use another --study")
    return TrainedRun.load(run_dir)


def tuning_folds(config: TuneConfig, run: TrainedRun) -> list[Fold]:
    return list(run.folds[: len(run.folds) - config.holdout_folds])


def holdout_folds(config: TuneConfig, run: TrainedRun) -> list[Fold]:
    return list(run.folds[len(run.folds) - config.holdout_folds:])


def load_study(config: TuneConfig, study_name: str, storage: str | optuna.storages.BaseStorage,
               worker: int = 0) -> optuna.Study:
    """The study with this process's sampler and pruner: TPE with the constant liar, so workers
    running at once do not all propose the same point, seeded per ``worker`` (workers with one
    seed draw the same random start-up points); Wilcoxon over the per-fold values. A
    multi-objective study runs NSGA-II (same per-worker seeds) and never prunes."""
    seed = config.seed + worker
    if config.multi_objective:
        sampler: optuna.samplers.BaseSampler = optuna.samplers.NSGAIISampler(seed=seed)
        pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True, multivariate=True)
        pruner = optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=1)
    return optuna.load_study(study_name=study_name, storage=storage, sampler=sampler, pruner=pruner)


class Objective:
    """One trial: sample settings, trade the tuning folds window by window, score the Sharpe
    (and the max drawdown, for a multi-objective study)."""

    def __init__(self, config: TuneConfig, run: TrainedRun, files: StudyFiles) -> None:
        self.config, self.run, self.files = config, run, files
        self.folds = tuning_folds(config, run)

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        try:
            return self.score(trial)
        except optuna.TrialPruned:
            raise
        except Exception as e:  # re-raised: Optuna marks the trial FAILED and logs the traceback
            trial.set_user_attr("error", f"{type(e).__name__}: {e}")
            raise

    def score(self, trial: optuna.Trial) -> float | tuple[float, float]:
        overlay = self.config.space.sample(trial)
        trial.set_user_attr("strategy", overlay)
        traded = self.trade(trial, self.config.space.settings(overlay))
        trial.set_user_attr("trading", traded.trading)
        trial.set_user_attr("folds", traded.folds)
        traded.daily_returns.rename(trial.number).to_frame().to_parquet(
            self.files.trial_returns / f"trial-{trial.number}.parquet")
        too_few = traded.trading["trades"] < self.config.min_trades
        if too_few:
            trial.set_user_attr("too_few_trades", True)
        sharpe = TOO_FEW_TRADES_SCORE if too_few else float(traded.trading["sharpe"])
        if self.config.multi_objective:
            return sharpe, 1.0 if too_few else float(traded.trading["max_drawdown"])
        return sharpe

    def trade(self, trial: optuna.Trial, settings: StrategySettings) -> TradeResult:
        out = self.files.trials / f"trial-{trial.number}"
        cash = self.run.config.venue.starting_cash
        windows = []
        for fold in self.folds:
            [window] = run_windows([window_spec(self.run, fold, settings, out)])
            windows.append(window)
            if self.config.multi_objective:
                continue
            trial.report(window.final_balance / cash - 1.0, step=fold.index)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after fold {fold.index}")
        return measure(self.run, self.folds, windows, out)


def run_trials(config: TuneConfig, study_name: str, storage: str | optuna.storages.BaseStorage,
               out_root: Path, n_trials: int, worker: int = 0,
               callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = ()) -> None:
    """Run ``n_trials`` trials in this process (a worker's share of the study). A trial that
    raises is FAILED with its error and the study goes on: a failed experiment is a result,
    and its traceback is in the log."""
    study = load_study(config, study_name, storage, worker)
    run = study_run(study)
    files = StudyFiles.of(out_root, study_name)
    files.trial_returns.mkdir(parents=True, exist_ok=True)
    study.optimize(Objective(config, run, files), n_trials=n_trials, catch=(Exception,),
                   callbacks=list(callbacks), gc_after_trial=True)
