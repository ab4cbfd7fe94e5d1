"""A tuning study: train the walk-forward run once, then let trials trade its stored signals.

A trial is the backtests of the tuning folds (every fold but the holdout) under one sampled
setting, one fresh process per window (NautilusTrader 1.221 leaks memory across in-process
runs), the windows run one by one so the pruner can stop a trial after any fold. Its objective
is the annualised Sharpe of its daily returns after costs; a trial with fewer closed trades than
``min_trades`` is marked so and scores ``TOO_FEW_TRADES_SCORE``, never a lucky Sharpe of two
trades. Every completed trial's daily return series is kept in the study's own directory
(<out>/tune-<study>/returns/): the DSR and the PBO need the matrix of all of them.

With ``objective: sharpe_drawdown`` a trial scores (Sharpe, max drawdown) and NSGA-II searches
the Pareto front of the two; the pruner is off (Optuna prunes single-objective studies only),
and the trial best.yaml takes is the front's best Sharpe among trials whose drawdown is within
``max_drawdown`` (``select_best``).

After the trials, ``finish_study`` trades the best trial and the default equal-weight settings
once each on the holdout folds, which no trial has seen, computes DSR and PBO, and writes
best.yaml (a ``--params`` overlay) and summary.json. The study itself (trials, parameters,
values) lives in the Optuna storage, so several processes or machines can share it.
"""

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console

from backtests.metrics import TRADING_DAYS
from backtests.overfitting import OverfittingInputError, overfitting_report
from backtests.trade import TradeResult, measure, trade, window_spec
from backtests.train import train
from backtests.trained import MANIFEST, TrainedRun
from backtests.tuning.config import TuneConfig
from backtests.tuning.objectives import pareto_summary, select_best, study_directions, trial_sharpe
from backtests.tuning.report import write_study_report
from backtests.walkforward import ensure_catalog, universe
from backtests.window import run_windows
from models.names import check_name
from models.splits import Fold
from strategies.settings import StrategySettings, write_settings_overlay


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


def create_study(config: TuneConfig, study_name: str, storage: str | optuna.storages.BaseStorage,
                 out_root: Path, console: Console, generate_missing_catalog: bool = True) -> TrainedRun:
    """The study in ``storage`` (created once, before any worker loads it) and its trained run:
    trained now for a new study, the study's own run for an existing one (several invocations
    or machines add trials to one study, over the same signals)."""
    directions = study_directions(config)
    study = optuna.create_study(study_name=study_name, storage=storage, directions=directions,
                                load_if_exists=True)
    if [d.name.lower() for d in study.directions] != directions:
        raise StudyError(f"study {study_name!r} optimises {[d.name.lower() for d in study.directions]}; "
                         f"{config.source} asks for objective {config.objective!r}: use another --study name")
    if RUN_DIR_ATTR in study.user_attrs:
        run = study_run(study)
        if study.user_attrs["holdout_folds"] != [f.index for f in holdout_folds(config, run)]:
            raise StudyError(f"study {study_name!r} holds out folds {study.user_attrs['holdout_folds']}; "
                             f"{config.source} asks for {config.holdout_folds}: use another --study name")
        return run
    files = StudyFiles.of(out_root, study_name)
    wf = config.walkforward
    catalog = ensure_catalog(wf, console, generate_missing_catalog)
    console.print(f"[bold]training[/] {wf.name} once for study {study_name}: {wf.walk_forward.folds} folds, "
                  f"models {', '.join(wf.models)}")
    trained = train(wf, catalog, universe(wf, catalog), files.root).run
    study.set_user_attr(RUN_DIR_ATTR, str(trained.run_dir.resolve()))
    study.set_user_attr("holdout_folds", [f.index for f in holdout_folds(config, trained)])
    return trained


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


def finish_study(config: TuneConfig, study_name: str, storage: str | optuna.storages.BaseStorage,
                 out_root: Path) -> dict[str, Any]:
    """Holdout, DSR/PBO, best.yaml and summary.json of the study's trials so far."""
    study = load_study(config, study_name, storage)
    run = study_run(study)
    files = StudyFiles.of(out_root, study_name)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not complete:
        failed = [t for t in study.trials if t.state == TrialState.FAIL]
        errors = sorted({t.user_attrs.get("error", "worker died") for t in failed})[:3]
        raise StudyError(f"study {study_name!r} has no completed trial ({len(failed)} failed: {'; '.join(errors)})")
    returns = returns_matrix(files, complete)
    returns.to_parquet(files.returns)
    best = select_best(config, study)
    write_settings_overlay(files.best, best.user_attrs["strategy"],
                           comment=f"sextant tune: study {study_name}, trial {best.number}, "
                                   f"Sharpe {trial_sharpe(best):.3f} over tuning folds {[f.index for f in tuning_folds(config, run)]}")
    tried = sum(t.state.is_finished() for t in study.trials)
    summary = {
        "study": study_name,
        "run_dir": str(run.run_dir),
        "trials": {state.name.lower(): sum(t.state == state for t in study.trials)
                   for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)},
        "tuning_folds": [f.index for f in tuning_folds(config, run)],
        "holdout_folds": [f.index for f in holdout_folds(config, run)],
        "objective": config.objective,
        "best": {"trial": best.number, "value": trial_sharpe(best), "strategy": best.user_attrs["strategy"],
                 "trading": best.user_attrs["trading"], "too_few_trades": best.user_attrs.get("too_few_trades", False)},
        **({"pareto": pareto_summary(config, study, best)} if config.multi_objective else {}),
        "overfitting": _overfitting(returns, tried),
        "holdout": _holdout(config, study, run, files, best),
        "best_yaml": str(files.best),
        "report": str(files.report),
    }
    files.summary.write_text(json.dumps(summary, indent=2, default=_json_default))
    write_study_report(files.report, study, summary, returns)
    return summary


def returns_matrix(files: StudyFiles, trials: Sequence[FrozenTrial]) -> pd.DataFrame:
    """Sessions x completed trials: each trial's daily out-of-sample returns (tuning folds)."""
    frames = [pd.read_parquet(files.trial_returns / f"trial-{t.number}.parquet") for t in trials]
    matrix = pd.concat(frames, axis=1)
    matrix.columns = [str(t.number) for t in trials]
    return matrix


def equal_weight_settings(config: TuneConfig) -> StrategySettings:
    """The comparison on the holdout: the walk-forward config's settings, every model weighed the same."""
    base = config.walkforward.strategy
    return config.space.settings({"weights": dict.fromkeys(base.weights, 1.0 / len(base.weights))})


def _holdout(config: TuneConfig, study: optuna.Study, run: TrainedRun, files: StudyFiles,
             best: FrozenTrial) -> dict[str, Any]:
    """The best trial and the equal-weight settings, each traded once on the holdout folds; a
    later call for the same best trial reuses the result instead of looking again."""
    key = f"holdout_trial_{best.number}"
    if key not in study.user_attrs:
        folds = [f.index for f in holdout_folds(config, run)]
        legs = {
            "best": config.space.settings(best.user_attrs["strategy"]),
            "equal_weight": equal_weight_settings(config),
        }
        result = {name: trade(run, settings, files.holdout / f"trial-{best.number}" / name, folds=folds).trading
                  for name, settings in legs.items()}
        study.set_user_attr(key, result)
    attrs = study.user_attrs
    looks = sum(k.startswith("holdout_trial_") for k in attrs)  # > 1: the holdout has been peeked at
    return {"trial": best.number, "looks": looks, **attrs[key]}


def _overfitting(returns: pd.DataFrame, tried: int) -> dict[str, Any]:
    """DSR and PBO of the study. N, which deflates the best Sharpe, is every finished trial
    (complete, pruned, failed, and a dead worker's trial even though it was retried): each was
    a try at a lucky maximum, and counting too many tries only makes the test stricter. The
    Sharpe variance and the PBO's matrix use the complete trials' daily return series only: a
    pruned or failed trial has no series over all tuning folds, and padding one would rank an
    unfinished trial as if it had earned nothing."""
    matrix = returns.fillna(0.0).to_numpy()
    n_blocks = min(16, (len(matrix) // 4) * 2)
    try:
        report = overfitting_report(matrix, TRADING_DAYS, n_blocks=max(n_blocks, 2), n_tried=tried)
    except OverfittingInputError as e:
        return {"error": str(e)}
    return {
        "dsr": report.deflated.dsr,
        "pbo": report.overfitting.pbo,
        "n_trials": report.deflated.n_trials,
        "complete_series": matrix.shape[1],
        "n_blocks": report.overfitting.n_blocks,
        "expected_max_sharpe": report.deflated.expected_max_sharpe * math.sqrt(TRADING_DAYS),
        "verdict": report.verdict,
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, np.floating | np.integer):
        return value.item()
    return str(value)
