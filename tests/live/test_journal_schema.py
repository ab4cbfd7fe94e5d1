"""Journal schema migrations on a real PostgreSQL: a fresh database gets every migration, a
second start changes nothing, a database newer than the code is refused."""

import psycopg
import pytest

from live.journal import JournalSchemaError, JournalSettings, open_journal
from live.journal.schema import migrate, migrations, schema_version
from tests.live.journal_support import dsn, server  # noqa: F401 - fixtures

TABLES = {"run_events", "model_versions", "orders", "order_events", "fills", "positions",
          "account_states", "signals", "daily_summaries", "decisions", "schema_version",
          "drift_reports", "drift_differences", "drift_features", "bars", "strategy_decisions"}


def tables(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'journal'")}


def test_a_fresh_database_gets_every_migration_in_order(dsn):  # noqa: F811
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert schema_version(conn) == 0
        assert migrate(conn) == len(migrations())
        assert tables(conn) == TABLES
        versions = [r[0] for r in conn.execute("SELECT version FROM journal.schema_version ORDER BY version")]
        assert versions == [v for v, _ in migrations()]


def test_a_database_at_an_older_version_gets_only_the_missing_migrations(dsn):  # noqa: F811
    first, *later = migrations()
    assert later, "this test needs a second migration"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA journal")
        conn.execute("CREATE TABLE journal.schema_version (version integer PRIMARY KEY, "
                     "applied_at timestamptz NOT NULL DEFAULT now())")
        conn.execute(first[1])  # a journal written by the code of version 1
        conn.execute("INSERT INTO journal.schema_version (version) VALUES (1)")
        conn.execute("INSERT INTO journal.model_versions VALUES ('run', 1, 'lightgbm', 3, '/m/v0003')")
        assert migrate(conn) == later[-1][0]
        assert tables(conn) == TABLES
        assert conn.execute("SELECT count(*) FROM journal.model_versions").fetchone()[0] == 1


def test_migrating_again_is_a_no_op_that_keeps_the_rows(dsn):  # noqa: F811
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        conn.execute("INSERT INTO journal.model_versions VALUES ('run', 1, 'lightgbm', 3, '/m/v0003')")
        applied = conn.execute("SELECT version, applied_at FROM journal.schema_version").fetchall()
        migrate(conn)
        assert conn.execute("SELECT version, applied_at FROM journal.schema_version").fetchall() == applied
        assert conn.execute("SELECT count(*) FROM journal.model_versions").fetchone()[0] == 1


def test_a_database_at_a_future_version_is_refused(dsn, tmp_path):  # noqa: F811
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        conn.execute("INSERT INTO journal.schema_version (version) VALUES (99)")
        known = len(migrations())
        with pytest.raises(JournalSchemaError, match=rf"schema version 99, newer than this Sextant knows \({known}\)"):
            migrate(conn)
    settings = JournalSettings(sinks=("postgres",), spool_dir=str(tmp_path / "spool"))
    with pytest.raises(JournalSchemaError, match="upgrade Sextant"):
        open_journal(settings, dsn=dsn)
