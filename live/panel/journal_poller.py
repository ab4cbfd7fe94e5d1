"""JournalPoller: the read-only panel's rows, read from the journal database as they land.

Every ~0.5 s it reads the rows of the day's newest run written since the last poll (by
``seq``, across all tables, in the order they happened) and hands each, as the journal's own
row struct, to the listeners a live run's PanelSink would feed: the pages cannot tell a
watched journal from a running day, except that nothing can be commanded.
"""

import threading
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Self

import msgspec
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from live.journal.postgres import connect
from live.journal.rows import ROW_TYPES, Row, table_of
from live.journal.sinks import Sink

POLL_SECS = 0.5


class JournalPoller:
    """``day``: the trading day to watch (None: the newest the journal holds, and a later
    one as soon as a run starts on it)."""

    def __init__(self, dsn: str, listeners: Sequence[Sink], day: date | None = None,
                 poll_secs: float = POLL_SECS) -> None:
        self.dsn = dsn
        self.listeners = listeners
        self.day = day
        self.poll_secs = poll_secs
        self._run_id: str | None = None
        self._seq = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sextant-panel-poller", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with connect(self.dsn) as conn:
            while not self._stop.is_set():
                self.poll(conn)
                conn.commit()  # a new snapshot for the next poll
                self._stop.wait(self.poll_secs)

    def poll(self, conn: psycopg.Connection) -> int:
        """Hand the rows written since the last poll to the listeners; how many there were."""
        run_id = self._newest_run(conn)
        if run_id is None:
            return 0
        if run_id != self._run_id:
            self._run_id, self._seq = run_id, 0
        rows = sorted(self._rows_after(conn, run_id, self._seq), key=lambda r: r.seq)
        for row in rows:
            for listener in self.listeners:
                listener.put(row)
        if rows:
            self._seq = rows[-1].seq
        return len(rows)

    def _newest_run(self, conn: psycopg.Connection) -> str | None:
        day_filter = sql.SQL("") if self.day is None else sql.SQL("WHERE trading_day = %(day)s")
        found = conn.execute(sql.SQL("SELECT run_id FROM journal.run_events {} ORDER BY trading_day DESC, ts DESC "
                                     "LIMIT 1").format(day_filter), {"day": self.day}).fetchone()
        return None if found is None else found[0]

    def _rows_after(self, conn: psycopg.Connection, run_id: str, seq: int) -> list[Row]:
        cur = conn.cursor(row_factory=dict_row)
        rows: list[Row] = []
        for row_type in ROW_TYPES:
            query = sql.SQL("SELECT * FROM journal.{} WHERE run_id = %s AND seq > %s ORDER BY seq").format(
                sql.Identifier(table_of(row_type)))
            rows += [_as_row(row_type, r) for r in cur.execute(query, (run_id, seq))]
        return rows


def _as_row(row_type: type[Row], record: dict) -> Row:
    """A database record as the journal's row struct: numerics back to the strings the row
    held, a JSON column (an order event's details) back to its text."""
    fields = {}
    for key, value in record.items():
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, dict):
            value = msgspec.json.encode(value).decode()
        fields[key] = value
    return msgspec.convert(fields, row_type)
