"""A study does not fool its user, through the real study code path (SQLite file storage):

* on a random walk (signal_strength 0.0) the best of its trials is not called significant by
  the Deflated Sharpe Ratio, however good its in-study Sharpe looks;
* on a planted edge the best trial's Sharpe on the untouched holdout is positive;
* a multi-objective study (Sharpe vs max drawdown, NSGA-II) scores both, never prunes, takes
  for best.yaml the Pareto trial with the best Sharpe within the drawdown limit, and its report
  shows the front.

Two markets from the same seed, differing only in the planted strength; 4 symbols x 15
sessions, 2 tuning folds of 3 sessions and a holdout fold, light models, a handful of trials.
"""

import io
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState, create_trial
from rich.console import Console

from backtests.config import ConfigError
from backtests.overfitting import DSR_CONFIDENCE
from backtests.tuning.config import load_tune_config
from backtests.tuning.objectives import select_best, trial_sharpe
from backtests.tuning.study import create_study, finish_study
from backtests.tuning.trials import StudyFiles, run_trials
from catalog.jobs import generate_catalog

SEED = 5
TRIALS = 4
WALKFORWARD = {
    "name": "honest",
    "seed": SEED,
    "walk_forward": {"folds": 3, "train_days": 4, "test_days": 3, "embargo_days": 1},
    "models": {"lightgbm": {"params": {"n_estimators": 40}},
               "lightgbm@small": {"params": {"n_estimators": 15, "num_leaves": 7}}},
    "strategy": {"entry_threshold": 0.6},
    "workers": 1,
}
TUNE = {
    "walkforward": "wf.yaml",
    "holdout_folds": 1,
    "min_trades": 3,
    "seed": SEED,
    "parameters": {"weights": {"cap": 0.7}, "entry_threshold": {"low": 0.52, "high": 0.68},
                   "allow_short": {"choices": [True, False]}},
}


def run_study(work: Path, strength: float, trials: int = TRIALS, **tune_changes) -> tuple[dict, optuna.Study, Path]:
    generate_catalog(work / "catalog", n_symbols=4, n_days=15, seed=SEED, signal_strength=strength)
    (work / "wf.yaml").write_text(yaml.safe_dump({**WALKFORWARD, "catalog": {"path": str(work / "catalog")}}))
    (work / "tune.yaml").write_text(yaml.safe_dump({**TUNE, **tune_changes}))
    config = load_tune_config(work / "tune.yaml")
    storage = f"sqlite:///{work / 'study.db'}"
    out = work / "runs"
    create_study(config, "s", storage, out, Console(file=io.StringIO()))
    run_trials(config, "s", storage, out, trials)
    summary = finish_study(config, "s", storage, out)
    return summary, optuna.load_study(study_name="s", storage=storage), out


@pytest.mark.slow
def test_on_a_random_walk_the_best_trial_is_not_called_significant(tmp_path):
    summary, _, _ = run_study(tmp_path, strength=0.0)
    stats = summary["overfitting"]
    assert stats["n_trials"] == TRIALS and stats["complete_series"] >= 2
    assert stats["dsr"] < DSR_CONFIDENCE
    assert "not distinguishable from the best of" in stats["verdict"]


@pytest.mark.slow
def test_on_a_planted_edge_the_best_trial_makes_money_on_the_holdout(tmp_path):
    summary, _, _ = run_study(tmp_path, strength=0.6)
    assert summary["best"]["trading"]["trades"] >= TUNE["min_trades"]
    holdout = summary["holdout"]["best"]
    assert holdout["trades"] > 0 and holdout["sharpe"] > 0.0 and holdout["total_return"] > 0.0


@pytest.mark.slow
def test_a_sharpe_drawdown_study_keeps_the_pareto_trial_with_the_best_sharpe_within_the_limit(tmp_path):
    summary, study, out = run_study(tmp_path, strength=0.6, trials=4, objective="sharpe_drawdown", max_drawdown=0.05)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    finished = [t for t in study.trials if t.state.is_finished()]
    assert all(t.state == TrialState.COMPLETE and len(t.values) == 2 for t in finished)  # never pruned
    for t in finished:
        assert t.values[1] == (1.0 if t.user_attrs.get("too_few_trades") else t.user_attrs["trading"]["max_drawdown"])
    front = study.best_trials
    within = [t for t in front if t.values[1] <= 0.05]
    assert within, "the planted market should give a trial within 5% drawdown"
    expected = max(within, key=trial_sharpe)
    assert summary["best"]["trial"] == expected.number and summary["best"]["value"] == expected.values[0]
    assert summary["pareto"] == {"trials": sorted(t.number for t in front), "max_drawdown_limit": 0.05,
                                 "best_within_limit": True}
    assert yaml.safe_load(StudyFiles.of(out, "s").best.read_text())["strategy"] == expected.user_attrs["strategy"]
    page = StudyFiles.of(out, "s").report.read_text()
    assert "Pareto-front Plot" in page and "Pareto front" in page


def _two_objective_study(points: list[tuple[float, float]]) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for sharpe, drawdown in points:
        study.add_trial(create_trial(values=[sharpe, drawdown]))
    return study


def test_the_pareto_choice_is_the_best_sharpe_within_the_drawdown_limit(tmp_path):
    (tmp_path / "wf.yaml").write_text(yaml.safe_dump(WALKFORWARD))
    config = load_tune_config(_with(tmp_path, max_drawdown=0.1))
    # Front: (3.0, 0.30), (2.0, 0.08), (1.0, 0.02); (1.5, 0.09) is dominated by (2.0, 0.08).
    study = _two_objective_study([(3.0, 0.30), (2.0, 0.08), (1.5, 0.09), (1.0, 0.02)])
    assert select_best(config, study).values == [2.0, 0.08]
    strict = load_tune_config(_with(tmp_path, max_drawdown=0.01))
    assert select_best(strict, study).values == [1.0, 0.02]  # none within: the smallest drawdown


def _with(work: Path, **changes) -> Path:
    (work / "tune.yaml").write_text(yaml.safe_dump({**TUNE, "objective": "sharpe_drawdown", **changes}))
    return work / "tune.yaml"


def test_an_unknown_objective_is_a_message_naming_the_key(tmp_path):
    (tmp_path / "wf.yaml").write_text(yaml.safe_dump(WALKFORWARD))
    with pytest.raises(ConfigError, match="objective"):
        load_tune_config(_with(tmp_path, objective="sortino"))
    with pytest.raises(ConfigError, match="max_drawdown"):
        load_tune_config(_with(tmp_path, max_drawdown=0.0))
