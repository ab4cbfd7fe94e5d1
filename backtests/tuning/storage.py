"""The Optuna storage a study lives in: any URL, set up for several workers sharing it.

Each process keeps one connection (SQLAlchemy's default pool would open up to 15 per worker)
and checks it before use, so a connection the server dropped is noticed rather than failing a
trial. Heartbeats mark a trial whose worker died (killed, machine lost) as failed after the
grace period, and the retry callback puts a fresh copy of it back in the queue, so no trial
stays RUNNING forever and none is lost. A trial that raised is not retried: it is a result.
"""

import sqlalchemy.exc
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from catalog.database import sqlalchemy_url

# One pooled connection per process, and one overflow connection (closed as soon as it is
# returned): Optuna 5's RDBStorage opens a second connection while it checks the schema at
# start-up, and the heartbeat thread writes while a trial's thread may hold the first; with
# max_overflow 0 both wait out the pool timeout and fail (measured on PostgreSQL 16).
ENGINE_KWARGS = {"pool_size": 1, "max_overflow": 1, "pool_pre_ping": True}
MAX_RETRIES = 3  # a trial that kills its worker this often is a bug to look at, not to retry


class StorageError(Exception):
    """A study storage that cannot be opened (bad URL, server unreachable); the message says which."""


def open_storage(url: str, heartbeat_seconds: int) -> RDBStorage:
    """The storage at ``url`` (``postgresql://`` means psycopg 3); a worker silent for twice
    ``heartbeat_seconds`` is presumed dead."""
    url = sqlalchemy_url(url)
    kwargs = ENGINE_KWARGS if not url.startswith("sqlite") else {"pool_pre_ping": True}
    try:
        return RDBStorage(
            url,
            engine_kwargs=dict(kwargs),
            heartbeat_interval=heartbeat_seconds,
            grace_period=2 * heartbeat_seconds,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES),
        )
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.OperationalError) as e:
        raise StorageError(f"--storage {_redacted(url)}: cannot open the study storage: {e}") from e


def _redacted(url: str) -> str:
    """``url`` without its password: a storage URL may carry one, and messages are logged."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return "<unparsable URL>"


