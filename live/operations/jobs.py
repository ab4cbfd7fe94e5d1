"""Background jobs an operator starts from the panel (an incremental ingest, a retrain), with
their progress.

One job of each kind at a time: a second start while one runs is refused (``JobRunningError``),
since two ingests into one catalog, or two retrains of one registry, would race for the same
files. Progress (``done`` of ``total`` and a message) and the outcome go to ``publish(topic,
payload)`` under the topic ``"jobs"``, so a page watches without polling; nothing here knows
about the web. Each payload holds every kind's latest status (``{"jobs": {kind: status}}``):
a hub that keeps only a topic's newest payload still has the outcome of each.

A job's expected failures (the exception types it declares: a vendor refusing, a catalog
error) end it "failed" with their message. Anything else is a bug: it ends the job "failed"
too, the page shows its text, and its traceback goes to the log, where the bug can be found.
"""

import logging
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

_log = logging.getLogger(__name__)

TOPIC = "jobs"
Publish = Callable[[str, dict], None]
# progress(done, total, message): the job's own units (sessions ingested, steps done)
Progress = Callable[[int, int, str], None]
JobState = Literal["running", "done", "failed"]


class JobRunningError(Exception):
    """A job of that kind is already running; the message says which and since when."""


@dataclass(frozen=True)
class Job:
    """What a job does: ``run(progress)`` returns its JSON-able result. ``expected``: the
    exception types that are failures of the work, not bugs (no traceback logged)."""

    kind: str
    run: Callable[[Progress], dict]
    expected: tuple[type[Exception], ...] = ()


@dataclass(frozen=True)
class JobStatus:
    """A job's state as the page shows it (``payload``)."""

    kind: str
    state: JobState
    started: str
    done: int = 0
    total: int = 0
    message: str = ""
    finished: str | None = None
    result: dict = field(default_factory=dict)
    error: str | None = None

    def payload(self) -> dict:
        return {"kind": self.kind, "state": self.state, "started": self.started, "done": self.done,
                "total": self.total, "message": self.message, "finished": self.finished,
                "result": self.result, "error": self.error}


class JobRunner:
    """Runs ``Job``s on their own threads, at most one per kind (module docstring)."""

    def __init__(self, publish: Publish) -> None:
        self._publish = publish
        self._lock = threading.Lock()
        self._status: dict[str, JobStatus] = {}
        self._threads: dict[str, threading.Thread] = {}

    def start(self, job: Job) -> JobStatus:
        """Start ``job`` in the background; JobRunningError while one of its kind runs."""
        with self._lock:
            current = self._status.get(job.kind)
            if current is not None and current.state == "running":
                raise JobRunningError(f"a {job.kind} job is already running (started {current.started[:19]} UTC, "
                                      f"{current.done}/{current.total}); wait for it to finish")
            status = JobStatus(kind=job.kind, state="running", started=_now(), message="starting")
            self._status[job.kind] = status
            thread = threading.Thread(target=self._run, args=(job,), name=f"job-{job.kind}", daemon=True)
            self._threads[job.kind] = thread
        self._publish_all()
        thread.start()
        return status

    def status(self, kind: str) -> JobStatus | None:
        """The running or last job of ``kind`` (None: none ran in this process)."""
        with self._lock:
            return self._status.get(kind)

    def statuses(self) -> dict[str, JobStatus]:
        with self._lock:
            return dict(self._status)

    def wait(self, kind: str, timeout: float | None = None) -> JobStatus | None:
        """Block until the job of ``kind`` ends (or ``timeout``); its status then."""
        with self._lock:
            thread = self._threads.get(kind)
        if thread is not None:
            thread.join(timeout)
        return self.status(kind)

    def _run(self, job: Job) -> None:
        try:
            result = job.run(lambda done, total, message: self._update(job.kind, done=done, total=total,
                                                                       message=message))
        except job.expected as exc:
            self._update(job.kind, state="failed", error=str(exc), finished=_now())
        except Exception as exc:  # noqa: BLE001 - a bug in a background job: logged with its traceback, shown failed
            _log.error("%s job crashed:\n%s", job.kind, traceback.format_exc())
            self._update(job.kind, state="failed", error=f"{type(exc).__name__}: {exc} (a bug; traceback in the log)",
                         finished=_now())
        else:
            self._update(job.kind, state="done", result=result, finished=_now())

    def _update(self, kind: str, **changes: object) -> None:
        with self._lock:
            self._status[kind] = replace(self._status[kind], **changes)
        self._publish_all()

    def payload(self) -> dict:
        """The "jobs" topic's payload: every kind's latest status."""
        with self._lock:
            return {"jobs": {kind: status.payload() for kind, status in self._status.items()}}

    def _publish_all(self) -> None:
        self._publish(TOPIC, self.payload())


def _now() -> str:
    return datetime.now(UTC).isoformat()
