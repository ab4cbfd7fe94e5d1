"""`sextant tune` end to end on the embedded PostgreSQL: two workers on one study run exactly
the trials asked for, a worker killed mid-trial costs no trial and leaves none RUNNING, and
user mistakes are one-line messages."""

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from rich.console import Console

from backtests.tuning.config import load_tune_config
from backtests.tuning.storage import open_storage
from backtests.tuning.study import create_study
from backtests.tuning.trials import StudyFiles
from backtests.tuning.workers import run_workers, study_progress
from catalog.database import embedded_postgres
from catalog.jobs import generate_catalog

SEXTANT = Path(sys.executable).parent / "sextant"
WALKFORWARD = {
    "name": "tiny",
    "walk_forward": {"folds": 3, "train_days": 3, "test_days": 2, "embargo_days": 1},
    "models": {"lightgbm": {"params": {"n_estimators": 20}},
               "lightgbm@small": {"params": {"n_estimators": 8, "num_leaves": 7}}},
    "strategy": {"entry_threshold": 0.6},
}
TUNE = {"walkforward": "wf.yaml", "holdout_folds": 1, "min_trades": 1, "seed": 5, "heartbeat_seconds": 1,
        "parameters": {"weights": {"cap": 0.7}, "entry_threshold": {"low": 0.52, "high": 0.7}}}


def write_study_configs(work: Path, **tune_changes) -> Path:
    generate_catalog(work / "catalog", n_symbols=2, n_days=10, seed=9, signal_strength=0.3)
    (work / "wf.yaml").write_text(yaml.safe_dump({**WALKFORWARD, "catalog": {"path": str(work / "catalog")}}))
    (work / "tune.yaml").write_text(yaml.safe_dump({**TUNE, **tune_changes}))
    return work / "tune.yaml"


def sextant(*args: str, cwd: Path, path: Path | None = None) -> subprocess.CompletedProcess:
    """``path``: the only directory on PATH (the command's own interpreter is absolute)."""
    env = {**os.environ, "COLUMNS": "200", **({"PATH": str(path)} if path else {})}
    return subprocess.run([str(SEXTANT), *args], check=False, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)


def assert_exactly(study: optuna.Study, n_trials: int) -> None:
    progress = study_progress(study)
    assert progress.done == n_trials and progress.running == 0
    assert not [t for t in study.trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    points = [tuple(sorted(t.params.items())) for t in study.trials if t.state.is_finished()
              and t.number not in {t2.system_attrs.get("failed_trial") for t2 in study.trials}]
    assert len(points) == len(set(points)) == n_trials  # no trial run twice, none lost


@pytest.mark.slow
def test_two_workers_on_the_embedded_postgres_run_exactly_the_trials_asked_for(tmp_path):
    write_study_configs(tmp_path)
    result = sextant("tune", "tune.yaml", "--trials", "4", "--workers", "2", "--study", "pair", "--out", "runs",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "best trial" in result.stdout and "holdout" in result.stdout
    files = StudyFiles.of(tmp_path / "runs", "pair")
    assert files.best.is_file() and files.summary.is_file() and files.returns.is_file()
    with embedded_postgres(tmp_path / "data" / "postgres") as url:
        assert_exactly(optuna.load_study(study_name="pair", storage=url), 4)
        shown = sextant("tune", "show", "--study", "pair", "--out", "runs", cwd=tmp_path)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "top trials" in shown.stdout and "best.yaml" in shown.stdout


@pytest.mark.slow
def test_a_worker_killed_mid_trial_costs_no_trial_and_leaves_none_running(tmp_path):
    config = load_tune_config(write_study_configs(tmp_path))
    killed: list[int] = []

    def kill_one_worker_mid_trial(progress) -> None:
        if not killed and progress.running and len(progress.workers) == 2:
            os.kill(progress.workers[0], signal.SIGKILL)
            killed.append(progress.workers[0])

    with embedded_postgres(tmp_path / "pg") as url:
        create_study(config, "killed", open_storage(url, config.heartbeat_seconds), tmp_path / "runs",
                     Console(file=io.StringIO()))
        run_workers(config, "killed", url, tmp_path / "runs", n_trials=4, workers=2,
                    on_progress=kill_one_worker_mid_trial)
        study = optuna.load_study(study_name="killed", storage=url)
        assert killed
        stale = [t for t in study.trials if t.state == TrialState.FAIL and "error" not in t.user_attrs]
        assert stale, "the killed worker's trial should have been failed by its stale heartbeat"
        retries = {t.system_attrs.get("failed_trial") for t in study.trials}
        assert all(t.number in retries for t in stale)  # each was run again, same parameters
        assert_exactly(study, 4)


def test_tune_mistakes_are_messages_naming_the_key(tmp_path):
    (tmp_path / "wf.yaml").write_text(yaml.safe_dump(WALKFORWARD))
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump({**TUNE, "parameters": {"weights": {"cap": 0.4}}}))
    result = sextant("tune", "tune.yaml", "--trials", "2", "--storage", "sqlite:///s.db", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'parameters.weights.cap': 0.4 x 2 models = 0.8 < 1" in " ".join(result.stdout.split())
    shown = sextant("tune", "show", cwd=tmp_path)
    assert shown.returncode == 2 and "needs --study" in shown.stdout
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(TUNE))
    bad_storage = sextant("tune", "tune.yaml", "--storage", "notadb://x", cwd=tmp_path)
    assert bad_storage.returncode == 2 and "cannot open the study storage" in bad_storage.stdout


def test_tune_dashboard_without_the_extra_is_a_message_naming_it(tmp_path):
    (tmp_path / "bin").mkdir()
    result = sextant("tune", "dashboard", "--study", "s", "--storage", "sqlite:///s.db", cwd=tmp_path,
                     path=tmp_path / "bin")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "optional extra 'dashboard'" in result.stdout and "sextant[dashboard]" in result.stdout
    assert "needs --study" in sextant("tune", "dashboard", cwd=tmp_path).stdout


def fake_dashboard(bin_dir: Path) -> Path:
    """An ``optuna-dashboard`` on PATH that records its arguments and exits: no server, no browser."""
    bin_dir.mkdir()
    program = bin_dir / "optuna-dashboard"
    program.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {bin_dir / "argv.txt"}\n')
    program.chmod(0o755)
    return bin_dir / "argv.txt"


def test_tune_dashboard_opens_the_studys_own_storage(tmp_path):
    argv = fake_dashboard(tmp_path / "bin")
    optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}")
    given = sextant("tune", "dashboard", "--study", "s", "--storage", "sqlite:///s.db", "--port", "8099",
                    cwd=tmp_path, path=tmp_path / "bin")
    assert given.returncode == 0, given.stdout + given.stderr
    assert argv.read_text().split() == ["sqlite:///s.db", "--host", "127.0.0.1", "--port", "8099"]
    missing = sextant("tune", "dashboard", "--study", "nope", "--storage", "sqlite:///s.db", cwd=tmp_path,
                      path=tmp_path / "bin")
    assert missing.returncode == 2 and "no study 'nope'" in missing.stdout

    with embedded_postgres(tmp_path / "data" / "postgres") as url:  # the default storage
        optuna.create_study(study_name="s", storage=url)
    default = sextant("tune", "dashboard", "--study", "s", cwd=tmp_path, path=tmp_path / "bin")
    assert default.returncode == 0, default.stdout + default.stderr
    opened = argv.read_text().split()[0]
    assert opened == url and opened.startswith("postgresql+psycopg://")
