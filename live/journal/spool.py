"""The local append-only file rows go to while the database is away.

One JSON line per row (msgspec, tagged by table, so a line decodes back to the same row),
fsynced per batch: what a batch handed over survives a crash of the process. The file is
locked while its sink has it open, so a later process replays only files no one is writing
(a crashed run's leftovers), never a running sink's.
"""

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import msgspec

from live.journal.rows import AnyRow, Row

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyRow)


class Spool:
    def __init__(self, path: Path) -> None:
        """Raises BlockingIOError when another process holds ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise
        self.pending = os.fstat(self._fd).st_size > 0

    @classmethod
    def leftovers(cls, directory: Path, keep: Path) -> Iterator["Spool"]:
        """Spool files in ``directory`` that no running sink holds (a crashed run's), other
        than ``keep``, each locked for the caller to replay and close."""
        for path in sorted(directory.glob("*.jsonl")):
            if path == keep:
                continue
            try:
                yield cls(path)
            except BlockingIOError:  # a running sink holds it
                continue

    def append(self, rows: list[Row]) -> None:
        buf = bytearray()
        for row in rows:
            _encoder.encode_into(row, buf, len(buf))
            buf += b"\n"
        os.write(self._fd, buf)
        os.fsync(self._fd)
        self.pending = True

    def batches(self, size: int) -> Iterator[list[Row]]:
        """The spooled rows in the order they were appended, ``size`` at a time. A torn last
        line (the process died inside a write) is skipped: its batch was never fsynced whole."""
        batch: list[Row] = []
        with open(self.path, "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    break
                batch.append(_decoder.decode(line))
                if len(batch) == size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def truncate(self) -> None:
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)
        self.pending = False

    def close(self, *, remove_if_empty: bool = True) -> None:
        empty = not self.pending
        if empty and remove_if_empty:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)  # releases the lock
