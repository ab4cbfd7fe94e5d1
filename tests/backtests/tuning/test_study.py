"""A small study end to end: trials trade the stored signals of one trained run, the holdout
stays untouched until the end, a crashing trial is FAILED and the study goes on, and best.yaml
reproduces exactly what the study recorded for its trial."""

import io
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState
from rich.console import Console

from backtests.config import load_config
from backtests.trade import trade
from backtests.trained import TrainedRun
from backtests.tuning.config import load_tune_config
from backtests.tuning.study import create_study, finish_study
from backtests.tuning.trials import StudyFiles, run_trials, tuning_folds
from catalog.jobs import generate_catalog

N_TRIALS = 5
CRASHING_TRIAL = 1
WALKFORWARD = {
    "name": "tiny",
    "walk_forward": {"folds": 3, "train_days": 4, "test_days": 2, "embargo_days": 1},
    "models": {"lightgbm": {"params": {"n_estimators": 30}},
               "lightgbm@small": {"params": {"n_estimators": 10, "num_leaves": 7}}},
    "strategy": {"entry_threshold": 0.6},
}
TUNE = {
    "walkforward": "wf.yaml",
    "holdout_folds": 1,
    "min_trades": 1,
    "seed": 3,
    "parameters": {"weights": {"cap": 0.6}, "entry_threshold": {"low": 0.52, "high": 0.7},
                   "risk.max_positions": {"low": 2, "high": 6}},
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A finished 5-trial study on SQLite whose trial 1 crashes: its returns directory is gone
    while it runs (moved away when trial 0 finishes, back once trial 1 has failed)."""
    work = tmp_path_factory.mktemp("study")
    generate_catalog(work / "catalog", n_symbols=3, n_days=12, seed=11, signal_strength=0.3)
    (work / "wf.yaml").write_text(yaml.safe_dump({**WALKFORWARD, "catalog": {"path": str(work / "catalog")}}))
    (work / "tune.yaml").write_text(yaml.safe_dump(TUNE))
    config = load_tune_config(work / "tune.yaml")
    storage = f"sqlite:///{work / 'study.db'}"
    out = work / "runs"
    files = StudyFiles.of(out, "tiny")
    aside = work / "returns-aside"

    def break_trial_storage(_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.number == CRASHING_TRIAL - 1:
            files.trial_returns.rename(aside)
        elif trial.number == CRASHING_TRIAL:
            aside.rename(files.trial_returns)

    create_study(config, "tiny", storage, out, Console(file=io.StringIO()))
    run_trials(config, "tiny", storage, out, N_TRIALS, callbacks=[break_trial_storage])
    held_out_before_finish = files.holdout.exists()
    summary = finish_study(config, "tiny", storage, out)
    loaded = optuna.load_study(study_name="tiny", storage=storage)
    return config, loaded, files, summary, work, held_out_before_finish


@pytest.mark.slow
def test_a_crashing_trial_is_failed_with_its_error_and_the_study_goes_on(study):
    _, loaded, _, summary, _, _ = study
    states = [t.state for t in loaded.trials]
    assert len(states) == N_TRIALS and states[CRASHING_TRIAL] == TrialState.FAIL
    assert loaded.trials[CRASHING_TRIAL].user_attrs["error"].startswith("OSError: Cannot save file")
    assert all(s in (TrialState.COMPLETE, TrialState.PRUNED) for i, s in enumerate(states) if i != CRASHING_TRIAL)
    assert summary["trials"]["fail"] == 1


@pytest.mark.slow
def test_failed_and_pruned_trials_deflate_the_dsr_but_only_complete_series_enter_the_pbo(study):
    _, loaded, files, summary, _, _ = study
    finished = [t for t in loaded.trials if t.state.is_finished()]
    complete = [t for t in finished if t.state == TrialState.COMPLETE]
    assert summary["overfitting"]["n_trials"] == len(finished) == N_TRIALS  # the failed one counts
    assert summary["overfitting"]["complete_series"] == len(complete) < N_TRIALS
    assert list(pd.read_parquet(files.returns).columns) == [str(t.number) for t in complete]


@pytest.mark.slow
def test_every_trial_weighs_the_models_within_the_cap_and_summing_to_one(study):
    _, loaded, _, _, _, _ = study
    for trial in loaded.trials:
        weights = trial.user_attrs["strategy"]["weights"]
        assert set(weights) == {"lightgbm", "lightgbm@small"}
        assert sum(weights.values()) == pytest.approx(1.0, abs=1e-12)
        assert max(weights.values()) <= 0.6 + 1e-12


@pytest.mark.slow
def test_the_holdout_is_traded_only_after_the_trials_and_never_by_one(study):
    config, _, files, summary, _, held_out_before_finish = study
    run = TrainedRun.load(Path(summary["run_dir"]))
    holdout = {f"fold-{f.index}" for f in run.folds} - {f"fold-{f.index}" for f in tuning_folds(config, run)}
    assert holdout == {f"fold-{i}" for i in summary["holdout_folds"]} and len(holdout) == 1
    assert not held_out_before_finish
    for trial_dir in files.trials.iterdir():
        assert not holdout & {p.name for p in (trial_dir / "windows").iterdir()}
    returns = pd.read_parquet(files.returns)
    last_tuning_end = pd.Timestamp(run.folds[-2].test_end_ns, tz="UTC").tz_convert("America/New_York").date()
    assert max(pd.Timestamp(d).date() for d in returns.index) <= last_tuning_end
    assert summary["holdout"]["looks"] == 1
    assert set(summary["holdout"]) >= {"best", "equal_weight"}
    assert {"dsr", "pbo", "verdict"} <= set(summary["overfitting"])


@pytest.mark.slow
def test_the_study_report_carries_the_verdict_and_the_holdout(study):
    _, _, files, summary, _, _ = study
    page = files.report.read_text()
    assert summary["overfitting"]["verdict"] in page.replace("&#x27;", "'")
    assert "Holdout (never seen by a trial)" in page and "Equity over the tuning folds" in page
    assert "Plotly.newPlot" in page and "<script src=" not in page  # offline: the library is inlined


@pytest.mark.slow
def test_best_yaml_traded_over_the_tuning_folds_gives_the_metrics_the_study_recorded(study, tmp_path):
    config, loaded, files, summary, work, _ = study
    best = loaded.best_trial
    assert summary["best"]["trial"] == best.number and best.user_attrs["trading"]["trades"] > 0
    backtest = load_config(work / "wf.yaml", params=files.best)
    run = TrainedRun.load(Path(summary["run_dir"]))
    traded = trade(run, backtest.strategy, tmp_path, folds=[f.index for f in tuning_folds(config, run)])
    assert traded.trading == best.user_attrs["trading"]
    assert traded.trading["sharpe"] == best.value
