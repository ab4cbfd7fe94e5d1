"""An exclusive lock on a file that names its holder, for work that must not run twice at
once on the same files: one ingest into a catalog, one retrain of a model registry, one
scheduler of a trading day.

It is an ``flock``, so the kernel drops it when the holder dies (even by kill -9) and a stale
file never blocks anyone; and it is taken per open file, so two threads of one process (the
scheduler's pre-open ingest and the one an operator starts from the panel) exclude each
other as two processes do. The file holds the holder's pid, what it does and since when, so
a refusal can say who to wait for.
"""

import fcntl
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Self

_POLL_SECS = 0.2


class LockHeldError(Exception):
    """Someone else holds the lock; the message names them. Callers raise a subclass that
    belongs to their own package's errors (``busy``)."""


class FileLock:
    """``with FileLock(path, "an ingest into catalog X", busy=CatalogBusyError, wait_secs=0):``
    holds the lock for the block. Held by someone else, it waits up to ``wait_secs`` (0:
    not at all), then raises ``busy`` naming the holder and what it does, and ``remedy``."""

    def __init__(self, path: Path, purpose: str, *, busy: type[LockHeldError] = LockHeldError,
                 wait_secs: float = 0.0, remedy: str = "wait for it to finish (one at a time)") -> None:
        self.path = path
        self.purpose = purpose
        self.busy = busy
        self.wait_secs = wait_secs
        self.remedy = remedy
        self._file: IO[str] | None = None

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = self.path.open("a+")
        deadline = time.monotonic() + self.wait_secs
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    f.seek(0)
                    holder = f.read().strip() or "a process that did not say who it is"
                    f.close()
                    waited = f" (waited {self.wait_secs:g} s)" if self.wait_secs else ""
                    raise self.busy(f"{holder} holds the lock {self.path}{waited}; {self.remedy}") from None
                time.sleep(_POLL_SECS)
        f.seek(0)
        f.truncate()
        f.write(f"{self.purpose} (pid {os.getpid()}, since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC)\n")
        f.flush()
        self._file = f
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._file is not None
        self._file.truncate(0)
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._file = None
