"""A tuning study: train the walk-forward run once, let trials trade its stored signals
(``backtests.tuning.trials``, in worker processes), then judge the winner.

``create_study`` creates the study in its storage (once, before any worker loads it) and trains
the run. After the trials, ``finish_study`` trades the best trial (``select_best``: the best
Sharpe, or for ``sharpe_drawdown`` the Pareto trial with the best Sharpe within the drawdown
limit) and the default equal-weight settings once each on the holdout folds, which no trial has
seen, computes DSR and PBO, and writes best.yaml (a ``--params`` overlay), summary.json and the
report. The study itself (trials, parameters, values) lives in the Optuna storage, so several
processes or machines can share it.
"""

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console

from backtests.metrics import TRADING_DAYS
from backtests.overfitting import OverfittingInputError, overfitting_report
from backtests.trade import trade
from backtests.train import train
from backtests.trained import TrainedRun
from backtests.tuning.config import TuneConfig
from backtests.tuning.objectives import pareto_summary, select_best, study_directions, trial_sharpe
from backtests.tuning.report import write_study_report
from backtests.tuning.trials import (
    RUN_DIR_ATTR,
    StudyError,
    StudyFiles,
    holdout_folds,
    load_study,
    study_run,
    tuning_folds,
)
from backtests.walkforward import ensure_catalog, universe
from strategies.settings import StrategySettings, write_settings_overlay


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
