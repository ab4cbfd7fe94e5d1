"""The two jobs an operator can start during the day: the incremental ingest pre-open runs and
the nightly retrain post-close runs, the very same functions, started by hand.

The ingest brings the schedule's catalog up to the session before ``day`` (what pre-open's
``live.daily_ingest`` does) with its progress counted in sessions over all symbols. The
retrain runs the run's ``RetrainHook`` for ``day``'s plan through ``live.retrain`` so its
decision is journaled like a night's; whatever it pins is loaded at the next pre-open.
"""

import threading
from datetime import date
from pathlib import Path

from adapters.polygon.common import MissingApiKeyError, api_key_from_env
from catalog.errors import CatalogError
from catalog.ingest import BarSourceError
from live.daily_ingest import ingest_recent_sessions
from live.journal import Journal
from live.operations.jobs import Job, Progress
from live.retrain import decision_subject, retrain_after_close
from live.schedule import day_plan
from live.scheduler import RetrainHook
from live.settings import LiveConfig

INGEST, RETRAIN = "ingest", "retrain"


class IngestIncompleteError(Exception):
    """Some symbols' sessions could not be fetched; the message lists them (a re-run resumes)."""


class RetrainFailedError(Exception):
    """The night's step could not train or judge (the hook's reason); the champion stays."""


def ingest_job(config: LiveConfig, catalog: Path, day: date) -> Job:
    """The ``config.schedule.ingest_sessions`` sessions before ``day`` that ``catalog`` lacks,
    from the Polygon REST endpoint of ``config``."""
    symbols = list(config.universe or ())

    def run(progress: Progress) -> dict:
        api_key = api_key_from_env()
        counted = _SessionCount(symbols, config.schedule.ingest_sessions, progress)
        report = ingest_recent_sessions(catalog, symbols, day, config.schedule.ingest_sessions,
                                        base_url=config.polygon.base_url, api_key=api_key,
                                        sectors=dict(config.sectors), on_progress=counted)
        if report.failures:
            raise IngestIncompleteError("; ".join(str(f) for f in report.failures))
        bars = sum(report.bars_written.values())
        progress(counted.total, counted.total, f"{sum(report.sessions_fetched.values())} symbol-sessions fetched "
                                               f"({bars:,} bars), {sum(report.sessions_skipped.values())} already held")
        return {"sessions_fetched": dict(report.sessions_fetched), "sessions_skipped": dict(report.sessions_skipped),
                "bars_written": bars}

    return Job(INGEST, run, expected=(MissingApiKeyError, CatalogError, BarSourceError, IngestIncompleteError))


def retrain_job(config: LiveConfig, retrain: RetrainHook, journal: Journal, day: date) -> Job:
    """The nightly retrain and guarded promotion for ``day``, journaled as a night's decision."""
    plan = day_plan(day, config.schedule, config.strategy.risk.flatten_minutes_before_close)

    def run(progress: Progress) -> dict:
        progress(0, 1, f"training a challenger on the sessions through {day} and judging the waiting one")
        record = retrain_after_close(retrain, plan, journal)
        if record.get("action") == "failed":
            raise RetrainFailedError(record.get("reason", "the retrain failed"))
        progress(1, 1, decision_subject(record))
        return record

    return Job(RETRAIN, run, expected=(RetrainFailedError,))


class _SessionCount:
    """``ingest_bars``' per-symbol progress (called from its worker threads) as one count of
    sessions over every symbol (``sessions_each`` per symbol)."""

    def __init__(self, symbols: list[str], sessions_each: int, progress: Progress) -> None:
        self._done = dict.fromkeys(symbols, 0)
        self.total = sessions_each * len(symbols)
        self._progress = progress
        self._lock = threading.Lock()

    def __call__(self, symbol: str, done: int, total: int) -> None:
        with self._lock:
            self._done[symbol] = done
            finished = sum(self._done.values())
        self._progress(finished, self.total, f"{symbol}: {done}/{total} sessions")
