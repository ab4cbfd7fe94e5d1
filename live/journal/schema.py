"""Versioned schema migrations: ``migrations/NNNN_*.sql``, applied in order at start.

``journal.schema_version`` holds one row per applied migration. Applying is idempotent (only
the missing versions run, each in the transaction that records it) and serialised by an
advisory lock, so two processes starting at once do not race. A database already at a
version newer than this code knows is refused: its tables may not mean what this code
thinks they mean.
"""

from importlib.resources import files

import psycopg

_LOCK_KEY = 0x5E7A_4A0C  # pg_advisory_xact_lock key for "the journal's schema"


class JournalSchemaError(Exception):
    """The database's journal schema is not one this code can write; the message says why."""


def migrations() -> list[tuple[int, str]]:
    """(version, SQL) of every shipped migration, in order; versions are 1, 2, 3, ..."""
    found = sorted(
        (int(f.name.split("_", 1)[0]), f.read_text())
        for f in files("live.journal").joinpath("migrations").iterdir() if f.name.endswith(".sql"))
    assert [v for v, _ in found] == list(range(1, len(found) + 1)), "migration numbers must run 1, 2, 3, ..."
    return found


def schema_version(conn: psycopg.Connection) -> int:
    """The newest applied version; 0 on a database with no journal yet."""
    exists = conn.execute("SELECT to_regclass('journal.schema_version') IS NOT NULL").fetchone()[0]
    if not exists:
        return 0
    return conn.execute("SELECT coalesce(max(version), 0) FROM journal.schema_version").fetchone()[0]


def migrate(conn: psycopg.Connection) -> int:
    """Bring the schema to this code's version; returns it. Refuses a newer database."""
    shipped = migrations()
    latest = shipped[-1][0]
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute("CREATE SCHEMA IF NOT EXISTS journal")
        conn.execute("CREATE TABLE IF NOT EXISTS journal.schema_version ("
                     "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        current = schema_version(conn)
        if current > latest:
            raise JournalSchemaError(
                f"the journal database is at schema version {current}, newer than this Sextant "
                f"knows ({latest}); upgrade Sextant before writing to it")
        for version, sql in shipped[current:]:
            conn.execute(sql)
            conn.execute("INSERT INTO journal.schema_version (version) VALUES (%s)", (version,))
    return latest
