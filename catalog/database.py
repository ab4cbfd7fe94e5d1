"""The embedded PostgreSQL: a real server in the project's data directory, started on demand.

When no database URL is configured, tuning studies (and later the live journal) use this one,
so a fresh machine needs nothing installed: ``pgserver`` ships PostgreSQL 16 in its wheel,
starts in well under a second and listens on a unix socket inside ``data_dir`` only (no TCP
port to collide or to expose). Processes that open the same directory share one server; it
stops when the last of them closes it.
"""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_DATA_DIR = Path("data/postgres")


@contextmanager
def embedded_postgres(data_dir: Path = DEFAULT_DATA_DIR) -> Iterator[str]:
    """The SQLAlchemy URL (psycopg 3 over the server's unix socket) of the embedded server in
    ``data_dir``, created there the first time; the server runs until the block ends."""
    with embedded_postgres_dsn(data_dir) as dsn:
        yield sqlalchemy_url(dsn)


@contextmanager
def embedded_postgres_dsn(data_dir: Path = DEFAULT_DATA_DIR) -> Iterator[str]:
    """``embedded_postgres`` for libpq clients (psycopg itself): the ``postgresql://`` URI."""
    with warnings.catch_warnings():
        # pgserver keeps a lock in the user's runtime directory; without a login session (a
        # container, CI, a service) platformdirs falls back to /tmp/runtime-<uid> and warns
        # on import, which would greet every user of these commands with nothing to act on.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pgserver  # imported here: only commands that use the embedded server pay for it

    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with pgserver.get_server(data_dir, cleanup_mode="stop") as server:
        yield server.get_uri()


def sqlalchemy_url(libpq_uri: str) -> str:
    """``postgresql://...`` as SQLAlchemy's psycopg 3 dialect URL (its default is psycopg2)."""
    scheme, sep, rest = libpq_uri.partition("://")
    if scheme not in ("postgresql", "postgres") or not sep:
        return libpq_uri
    return f"postgresql+psycopg://{rest}"
