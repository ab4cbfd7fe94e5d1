"""Worker processes on one study: N processes, one connection each, exactly N trials in total.

The supervisor (the ``sextant tune`` process) never runs a trial: it splits the trials still
to run among fresh worker processes and watches the study. Each worker runs its share with
``optimize`` (heartbeats on), so per-worker shares add up to exactly the trials asked for:
no worker can start one more because another was slow to report. A worker that dies leaves
its trial RUNNING until its heartbeat is stale; the supervisor (or any live worker) then marks
it failed and the retry callback queues a copy with the same parameters, which the next round
of workers runs first. A stale trial that was retried does not count, so the study ends with
exactly ``n_trials`` finished trials and none RUNNING.
"""

import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.storages._rdb import models as rdb_models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import TrialState

from backtests.tuning.config import TuneConfig
from backtests.tuning.objectives import trial_sharpe
from backtests.tuning.storage import open_storage
from backtests.tuning.trials import load_study, run_trials

POLL_SECONDS = 1.0  # how often the supervisor looks at the study (progress, dead workers)


@dataclass(frozen=True)
class StudyProgress:
    """``done``: finished trials that count towards the total (a retried stale trial does not)."""

    done: int
    complete: int
    pruned: int
    failed: int
    running: int
    best: float | None
    workers: tuple[int, ...]  # pids of the live worker processes


def study_progress(study: optuna.Study, workers: tuple[int, ...] = ()) -> StudyProgress:
    trials = study.get_trials(deepcopy=False)
    retried = {RetryHeartbeatStaleTrialCallback.retried_trial_number(t) for t in trials} - {None}
    counted = [t for t in trials if t.state.is_finished() and t.number not in retried]
    complete = [t for t in counted if t.state == TrialState.COMPLETE]
    return StudyProgress(
        done=len(counted),
        complete=len(complete),
        pruned=sum(t.state == TrialState.PRUNED for t in counted),
        failed=sum(t.state == TrialState.FAIL for t in counted),
        running=sum(t.state == TrialState.RUNNING for t in trials),
        best=max((trial_sharpe(t) for t in complete), default=None),
        workers=workers,
    )


def run_workers(config: TuneConfig, study_name: str, storage_url: str, out_root: Path, n_trials: int,
                workers: int, on_progress: Callable[[StudyProgress], None] = lambda _: None) -> StudyProgress:
    """Run trials in ``workers`` processes until the study holds ``n_trials`` counted ones."""
    storage = open_storage(storage_url, config.heartbeat_seconds)
    study = load_study(config, study_name, storage)
    context = multiprocessing.get_context("spawn")  # no fork after torch/LightGBM threads started
    started = 0  # workers started so far: each gets its own sampler seed
    while True:
        heartbeat_orphans(storage, study)
        fail_stale_trials(study)  # a dead worker's trial: FAIL, and a retry queued
        progress = study_progress(study)
        on_progress(progress)
        remaining = n_trials - progress.done - progress.running
        if remaining <= 0 and progress.running == 0:
            return progress
        if remaining <= 0:  # only trials of dead workers are left: wait for their heartbeat to go stale
            time.sleep(POLL_SECONDS)
            continue
        shares = [remaining // workers + (i < remaining % workers) for i in range(workers)]
        procs = [context.Process(target=_worker, args=(config, study_name, storage_url, out_root, share, started + i),
                                 name=f"sextant-tune-worker-{started + i}")
                 for i, share in enumerate(shares) if share]
        started += len(procs)
        for proc in procs:
            proc.start()
        while any(p.is_alive() for p in procs):
            on_progress(study_progress(study, tuple(p.pid for p in procs if p.is_alive())))
            time.sleep(POLL_SECONDS)
        for proc in procs:
            proc.join()


def heartbeat_orphans(storage: RDBStorage, study: optuna.Study) -> None:
    """A first heartbeat for each RUNNING trial that never sent one and started more than the
    grace period ago. A worker killed between creating its trial and its heartbeat thread's
    first write leaves such a trial, and optuna's ``fail_stale_trials`` only judges trials that
    have a heartbeat: the study would wait on it for ever. With this one it goes stale a grace
    period later and takes the usual path (failed, retried). A live worker writes its first
    heartbeat as its trial starts, long before the grace period is over."""
    grace = timedelta(seconds=storage.grace_period)
    now = datetime.now()  # optuna stamps datetime_start with the local naive time
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.datetime_start is None or now - trial.datetime_start < grace:
            continue
        with _create_scoped_session(storage.scoped_session) as session:
            beats = session.query(rdb_models.TrialHeartbeatModel).filter_by(trial_id=trial._trial_id).count()
        if not beats:
            storage.record_heartbeat(trial._trial_id)


def _worker(config: TuneConfig, study_name: str, storage_url: str, out_root: Path, n_trials: int,
            index: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the supervisor shows progress
    run_trials(config, study_name, open_storage(storage_url, config.heartbeat_seconds), out_root, n_trials, index)
