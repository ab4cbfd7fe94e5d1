"""A worker killed between creating its trial and its first heartbeat: optuna's
``fail_stale_trials`` never judges a trial without a heartbeat, so the supervisor gives it one
(``heartbeat_orphans``) and it fails and is retried like any stale trial."""

import time

import optuna
from optuna.trial import TrialState

from backtests.tuning.storage import open_storage
from backtests.tuning.workers import heartbeat_orphans


def test_a_trial_that_never_sent_a_heartbeat_is_failed_and_retried(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_seconds=1)
    study = optuna.create_study(study_name="s", storage=storage)
    orphan = study.ask()  # RUNNING, and its worker never wrote a heartbeat
    time.sleep(storage.grace_period + 0.2)
    optuna.storages.fail_stale_trials(study)
    assert study.trials[orphan.number].state == TrialState.RUNNING  # optuna alone waits for ever

    heartbeat_orphans(storage, study)
    time.sleep(storage.grace_period + 1.2)  # sqlite's now() has whole seconds
    optuna.storages.fail_stale_trials(study)
    trials = study.trials
    assert trials[orphan.number].state == TrialState.FAIL
    assert [t.state for t in trials[orphan.number + 1:]] == [TrialState.WAITING]  # the retry, same parameters
