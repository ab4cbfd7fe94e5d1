"""The PostgreSQL sink: rows handed over on the event loop, written by a thread of its own.

``put`` only appends to a queue. The writer thread wakes every flush interval (or as soon as
``max_batch`` rows wait), and writes what waits in one transaction: each table's rows COPY
into a session-local staging table, then ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``
moves them into the journal. COPY is the fast path (signals come every bar for every
symbol); the conflict clause keyed on ``(run_id, seq)`` makes any write of a row after the
first a no-op, which is what lets a spool be replayed without duplicates.

When the database goes away, batches go to the spool (``live.journal.spool``), in order;
every flush after that first tries to reconnect and replay the spool, then truncates it.
While a spool is pending new batches join its end, so the database receives rows in the
order they happened. A kill -9 loses what had not been flushed: at most one interval.
"""

import collections
import logging
import threading
import time
from pathlib import Path

import msgspec
import psycopg
from psycopg import sql

from live.journal.rows import ROW_TYPES, Row, columns_of, table_of
from live.journal.schema import migrate
from live.journal.settings import mask_dsn
from live.journal.spool import Spool

log = logging.getLogger(__name__)

RECONNECT_SECS = 0.5  # between reconnect attempts while the database is away
_CONNECT_TIMEOUT_SECS = 2


class JournalUnavailableError(Exception):
    """The journal database cannot be reached; the message names it (password masked)."""


def connect(dsn: str) -> psycopg.Connection:
    """A connection to ``dsn`` (autocommit; writes use explicit transactions), or
    JournalUnavailableError with the masked DSN and the server's reason."""
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_SECS)
    except psycopg.OperationalError as e:
        reason = " ".join(str(e).split()) or type(e).__name__  # libpq's lines, as one
        raise JournalUnavailableError(f"cannot reach the journal database {mask_dsn(dsn)}: {reason}") from None


def _stage_name(row_type: type[Row]) -> sql.Identifier:
    return sql.Identifier(f"stage_{table_of(row_type)}")


def prepare_staging(conn: psycopg.Connection) -> None:
    """The session's staging tables ``write_rows`` copies into (once per connection)."""
    for row_type in ROW_TYPES:
        conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS").format(
            _stage_name(row_type), sql.Identifier("journal", table_of(row_type))))


def write_rows(conn: psycopg.Connection, rows: list[Row]) -> None:
    """``rows`` into the journal in one transaction, each at most once (``conn`` has its
    staging tables: ``prepare_staging``)."""
    by_type: dict[type[Row], list[Row]] = collections.defaultdict(list)
    for row in rows:
        by_type[type(row)].append(row)
    with conn.transaction():
        for row_type, group in by_type.items():
            columns = sql.SQL(", ").join(map(sql.Identifier, columns_of(row_type)))
            stage = _stage_name(row_type)
            with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(stage, columns)) as copy:
                for row in group:
                    copy.write_row(msgspec.structs.astuple(row))
            conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
                sql.Identifier("journal", table_of(row_type)), columns, columns, stage))


class PostgresSink:
    """``open`` connects, migrates and replays leftover spools, on the caller's thread (so a
    wrong DSN fails the start with a message); then rows flow through the writer thread."""

    def __init__(self, dsn: str, spool_path: Path, *, flush_interval_secs: float = 0.2,
                 max_batch: int = 5_000) -> None:
        self.dsn = dsn
        self.flush_interval_secs = flush_interval_secs
        self.max_batch = max_batch
        self.flushed = 0  # rows committed to the database (replays included)
        self._spool_path = spool_path
        self._queue: collections.deque[Row] = collections.deque()
        self._wake = threading.Event()
        self._closing = False
        self._conn: psycopg.Connection | None = None
        self._retry_at = 0.0
        self._spool: Spool | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run_until_closed, name="journal-writer", daemon=True)

    def open(self) -> None:
        self._conn = connect(self.dsn)
        migrate(self._conn)
        prepare_staging(self._conn)
        self._spool = Spool(self._spool_path)
        for leftover in Spool.leftovers(self._spool_path.parent, keep=self._spool_path):
            self._replay(leftover)
            leftover.close()
        self._replay(self._spool)
        self._thread.start()

    def put(self, row: Row) -> None:
        self._queue.append(row)
        if len(self._queue) >= self.max_batch:
            self._wake.set()

    def close(self) -> None:
        """Flush what waits, replay the spool if the database is back; what cannot be
        written stays in the spool for the next open, and says so."""
        self._closing = True
        self._wake.set()
        self._thread.join()
        if self._failure is not None:  # a bug in the writer: its traceback, not a silent gap
            raise RuntimeError("the journal's writer thread failed") from self._failure
        assert self._spool is not None
        if self._spool.pending:
            log.warning("journal: the database %s is unreachable; rows kept in %s are written "
                        "when a journal next opens", mask_dsn(self.dsn), self._spool.path)
        self._spool.close()
        if self._conn is not None:
            self._conn.close()

    def _run_until_closed(self) -> None:
        try:
            self._run()
        except BaseException as e:  # kept for close() to raise on the owner's thread
            self._failure = e
            raise

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval_secs)
            self._wake.clear()
            closing = self._closing
            while self._queue:
                self._deliver([self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))])
            if not self._queue and self._spool.pending:
                self._replay(self._spool)
            if closing:
                return

    def _deliver(self, batch: list[Row]) -> None:
        assert self._spool is not None
        if not self._spool.pending and self._write(batch):
            return
        self._spool.append(batch)
        self._replay(self._spool)

    def _replay(self, spool: Spool) -> None:
        """Spooled rows to the database in order, then an empty spool; on failure the spool
        stays whole (rows already written are skipped by their keys next time)."""
        if not spool.pending:
            return
        for batch in spool.batches(self.max_batch):
            if not self._write(batch):
                return
        spool.truncate()
        log.info("journal: the spool %s was replayed into %s", spool.path, mask_dsn(self.dsn))

    def _write(self, batch: list[Row]) -> bool:
        """True once ``batch`` is committed; False (and the connection dropped) when the
        database is away."""
        if self._conn is None and not self._reconnect():
            return False
        try:
            write_rows(self._conn, batch)
        except psycopg.OperationalError as e:
            log.warning("journal: lost the database %s (%s); spooling to %s", mask_dsn(self.dsn),
                        " ".join(str(e).split()) or type(e).__name__, self._spool_path)
            self._conn.close()
            self._conn = None
            self._retry_at = time.monotonic() + RECONNECT_SECS
            return False
        self.flushed += len(batch)
        return True

    def _reconnect(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        self._retry_at = time.monotonic() + RECONNECT_SECS
        try:
            self._conn = connect(self.dsn)
        except JournalUnavailableError:
            return False
        prepare_staging(self._conn)
        return True
