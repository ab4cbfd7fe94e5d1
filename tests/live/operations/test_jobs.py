"""JobRunner (live.operations.jobs) and the operator's ingest and retrain jobs
(live.operations.day_jobs): one of a kind at a time, progress published, outcomes kept."""

import logging
import threading
from datetime import date
from pathlib import Path

import psycopg
import pytest

from adapters.polygon.sandbox import PolygonSandbox
from catalog.store import MarketCatalog, writer_lock
from live.journal import JournalSettings, open_journal
from live.operations.day_jobs import INGEST, RETRAIN, ingest_job, retrain_job
from live.operations.jobs import TOPIC, Job, JobRunner, JobRunningError
from live.settings import PolygonSection
from tests.live.conftest import SYMBOLS, live_config
from tests.live.journal_support import dsn, server  # noqa: F401 - fixtures

pytestmark = pytest.mark.timeout(120)


class Published(list):
    def __call__(self, topic: str, payload: dict) -> None:
        self.append((topic, payload))

    def of(self, kind: str) -> list[dict]:
        """The statuses of ``kind`` as published, one per change of it."""
        seen = [p["jobs"][kind] for t, p in self if t == TOPIC and kind in p["jobs"]]
        return [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]]


def test_a_second_job_of_a_kind_is_refused_while_the_first_runs_and_others_run_beside_it():
    published = Published()
    runner = JobRunner(published)
    release = threading.Event()

    def blocking(progress) -> dict:
        progress(1, 3, "one of three")
        release.wait(10)
        return {"answer": 42}

    runner.start(Job("ingest", blocking))
    with pytest.raises(JobRunningError, match="an? ingest job is already running"):
        runner.start(Job("ingest", blocking))
    runner.start(Job("retrain", lambda progress: {}))  # another kind runs at once
    assert runner.wait("retrain", 10).state == "done"
    release.set()
    status = runner.wait("ingest", 10)
    assert status.state == "done" and status.result == {"answer": 42} and status.finished is not None
    states = [(p["state"], p["done"], p["total"]) for p in published.of("ingest")]
    assert states[0] == ("running", 0, 0) and ("running", 1, 3) in states and states[-1][0] == "done"
    runner.start(Job("ingest", lambda progress: {}))  # the finished one no longer blocks
    assert runner.wait("ingest", 10).state == "done"


def test_an_expected_failure_ends_failed_with_its_message_and_a_bug_keeps_its_traceback(caplog):
    runner = JobRunner(Published())

    def refused(progress) -> dict:
        raise LookupError("no such catalog")

    def buggy(progress) -> dict:
        return {}["missing"]

    runner.start(Job("ingest", refused, expected=(LookupError,)))
    failed = runner.wait("ingest", 10)
    assert failed.state == "failed" and failed.error == "no such catalog"
    with caplog.at_level(logging.ERROR, logger="live.operations.jobs"):
        runner.start(Job("retrain", buggy))
        crashed = runner.wait("retrain", 10)
    assert crashed.state == "failed" and crashed.error.startswith("KeyError: 'missing'")
    assert "Traceback" in caplog.text and "buggy" in caplog.text


def test_the_ingest_job_brings_the_sessions_before_the_day_from_polygon_with_progress(market, tmp_path: Path,
                                                                                        monkeypatch):
    source, models = market
    dest = tmp_path / "catalog"
    monkeypatch.setenv("POLYGON_API_KEY", "key")
    published = Published()
    runner = JobRunner(published)
    with PolygonSandbox(source, api_key="key") as polygon:
        config = live_config(models, polygon=PolygonSection(base_url=polygon.base_url))
        runner.start(ingest_job(config, dest, date(2024, 12, 27)))
        status = runner.wait(INGEST, 60)
    assert status.state == "done", status.error
    assert status.result["sessions_fetched"] == {s: config.schedule.ingest_sessions for s in SYMBOLS}
    total = config.schedule.ingest_sessions * len(SYMBOLS)
    assert (status.done, status.total) == (total, total)
    assert status.message == f"{total} symbol-sessions fetched ({status.result['bars_written']:,} bars), 0 already held"
    done = [p["done"] for p in published.of(INGEST) if p["state"] == "running" and p["total"]]
    assert done == sorted(done) and done[-1] == total  # counted up to the whole
    assert set(MarketCatalog(dest).sectors()) == set(SYMBOLS)


def test_the_ingest_job_fails_naming_what_it_could_not_fetch(market, tmp_path: Path, monkeypatch):
    source, models = market
    monkeypatch.setenv("POLYGON_API_KEY", "wrong")
    runner = JobRunner(Published())
    with PolygonSandbox(source, api_key="key") as polygon:
        config = live_config(models, polygon=PolygonSection(base_url=polygon.base_url))
        runner.start(ingest_job(config, tmp_path / "catalog", date(2024, 12, 27)))
        status = runner.wait(INGEST, 60)
    assert status.state == "failed" and "S000" in status.error and "re-run to resume" in status.error


def test_the_ingest_job_while_the_schedulers_ingest_writes_the_catalog_fails_naming_it(market, tmp_path: Path,
                                                                                        monkeypatch):
    """The scheduler's pre-open ingest (another thread of `sextant run`) holds the catalog:
    the operator's ingest is refused before it fetches anything, and says whose turn it is."""
    source, models = market
    dest = tmp_path / "catalog"
    monkeypatch.setenv("POLYGON_API_KEY", "key")
    runner = JobRunner(Published())
    with PolygonSandbox(source, api_key="key") as polygon, writer_lock(dest, "the pre-open's ingest"):
        config = live_config(models, polygon=PolygonSection(base_url=polygon.base_url))
        runner.start(ingest_job(config, dest, date(2024, 12, 27)))
        status = runner.wait(INGEST, 60)
        fetched = [r for r in polygon.requests if "/aggs/" in r.path]
    assert status.state == "failed" and "the pre-open's ingest into catalog" in status.error, status.error
    assert fetched == []


def test_the_retrain_job_runs_the_hook_for_the_day_and_journals_its_decision(market, dsn):  # noqa: F811
    _, models = market
    config = live_config(models)
    asked: list = []

    def hook(plan) -> dict:
        asked.append(plan)
        return {"action": "wait", "reason": "too few sessions", "champion": {"fold": 0}}

    runner = JobRunner(Published())
    with open_journal(JournalSettings(sinks=("postgres",)), dsn=dsn) as journal:
        runner.start(retrain_job(config, hook, journal, date(2024, 12, 27)))
        status = runner.wait(RETRAIN, 30)
    assert status.state == "done" and status.message == "wait; champion fold 0"
    assert [p.day for p in asked] == [date(2024, 12, 27)] and asked[0].is_session
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT kind, subject, trading_day FROM journal.decisions").fetchall()
    assert rows == [("promotion", "wait; champion fold 0", date(2024, 12, 27))]
    assert status.result["journal_decision"]


def test_a_retrain_that_could_not_train_ends_failed_with_the_reason(market):
    _, models = market
    runner = JobRunner(Published())
    with open_journal(JournalSettings(sinks=())) as journal:
        runner.start(retrain_job(live_config(models), lambda plan: {"action": "failed", "reason": "3 sessions"},
                                 journal, date(2024, 12, 27)))
        status = runner.wait(RETRAIN, 30)
    assert status.state == "failed" and status.error == "3 sessions"
