"""The local append-only file rows go to while the database is away.

One length-prefixed msgpack frame per row (msgspec, tagged by table, so a frame decodes back
to the same row; msgpack, not JSON lines, because JSON has no NaN and a signal's outlook can
be NaN), fsynced per batch: what a batch handed over survives a crash of the process. The file is
locked while its sink has it open, so a later process replays only files no one is writing
(a crashed run's leftovers), never a running sink's.
"""

import fcntl
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import msgspec

from live.journal.rows import AnyRow, Row

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AnyRow)
_LENGTH = struct.Struct("<I")


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
        for path in sorted(directory.glob("*.spool")):
            if path == keep:
                continue
            try:
                yield cls(path)
            except BlockingIOError:  # a running sink holds it
                continue

    def append(self, rows: list[Row]) -> None:
        buf = bytearray()
        for row in rows:
            frame = _encoder.encode(row)
            buf += _LENGTH.pack(len(frame))
            buf += frame
        os.write(self._fd, buf)
        os.fsync(self._fd)
        self.pending = True

    def batches(self, size: int) -> Iterator[list[Row]]:
        """The spooled rows in the order they were appended, ``size`` at a time. A torn last
        frame (the process died inside a write) is skipped: its batch was never fsynced whole."""
        data = memoryview(self.path.read_bytes())
        batch: list[Row] = []
        at = 0
        while at + _LENGTH.size <= len(data):
            (length,) = _LENGTH.unpack_from(data, at)
            end = at + _LENGTH.size + length
            if end > len(data):
                break
            batch.append(_decoder.decode(data[at + _LENGTH.size:end]))
            at = end
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch

    def truncate(self) -> None:
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)
        self.pending = False

    def close(self) -> None:
        """Releases the file; an empty one (all replayed) is removed."""
        if not self.pending:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)  # releases the lock
