"""A real embedded PostgreSQL for the journal tests (never a mocked database), a fresh
database per test, and the means to stop and restart the server under a running sink."""

import itertools
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from catalog.database import embedded_postgres_dsn
from live.journal.rows import SignalRow

_names = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, object]]:
    """(the server's DSN, its pgserver handle). Not under pytest's tmp_path: as root, pgserver
    runs PostgreSQL as its own user, which must reach the data directory (pytest's are 0700)."""
    root = Path(tempfile.mkdtemp(prefix="sextant-journal-pg-"))
    root.chmod(0o711)
    data_dir = root / "pg"
    with embedded_postgres_dsn(data_dir) as dsn, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pgserver
        from pgserver._commands import pg_ctl  # noqa: F401 - imported here, under the filter

        yield dsn, pgserver.get_server(data_dir)
    shutil.rmtree(root, ignore_errors=True)


def new_database(base: str, name: str | None = None) -> str:
    """The DSN of a new, empty database ``name`` (default: a fresh one) on the server at ``base``."""
    name = name or f"journal_{next(_names)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return psycopg.conninfo.make_conninfo(base, dbname=name)


@pytest.fixture
def dsn(server) -> str:
    """A new, empty database on the module's server."""
    return new_database(server[0])


def stop_server(handle) -> None:
    """Stop the PostgreSQL server process (fast shutdown: open connections are cut)."""
    from pgserver._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=handle.pgdata, user=handle.system_user)


def start_server(handle) -> None:
    handle.ensure_postgres_running()


def signal_row(run_id: str, seq: int) -> SignalRow:
    return SignalRow(run_id=run_id, seq=seq, ts_event=1_735_000_000_000_000_000 + seq * 60_000_000_000,
                     instrument_id="S000.ALPACA", models="lightgbm", probabilities=[seq / 1e6],
                     decision="BUY", confidence=0.5,
                     expected_return=float("nan") if seq % 7 == 0 else 0.001,  # NaN: no outlook yet
                     risk_score=2, volatility=0.01,
                     horizon=30, horizons="1,5,30", horizon_returns=[0.1, 0.2, 0.3])


def seqs(dsn: str, table: str, run_id: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute(
            f"SELECT seq FROM journal.{table} WHERE run_id = %s ORDER BY seq", (run_id,))]


def spool_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.spool")) if directory.exists() else []
