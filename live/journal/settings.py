"""Where the journal writes: the ``journal`` section of a live config.

The database is the system of record (DESIGN): ``SEXTANT_JOURNAL_DSN`` in the environment,
else ``dsn`` here, else the embedded PostgreSQL in ``data_dir``. A DSN can carry a password,
so every message shows it through ``mask_dsn``.
"""

import hashlib
import os
from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec
import psycopg
from msgspec import Meta

DSN_ENV = "SEXTANT_JOURNAL_DSN"
SinkName = Literal["postgres", "parquet"]


class JournalSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``sinks``: postgres (the database, written as events arrive) and/or parquet (files in
    the run's directory under ``--out``, written when the run ends); none keeps the record in
    memory only. ``flush_interval_ms`` bounds what a crash can lose; ``max_batch`` flushes
    early when events come faster."""

    sinks: tuple[SinkName, ...] = ("postgres", "parquet")
    dsn: str | None = None
    data_dir: str = "data/postgres"
    spool_dir: str = "data/journal-spool"
    flush_interval_ms: Annotated[int, Meta(ge=1, le=60_000)] = 200
    max_batch: Annotated[int, Meta(ge=1, le=1_000_000)] = 5_000


def configured_dsn(settings: JournalSettings, environ: Mapping[str, str] = os.environ) -> str | None:
    """The DSN a user gave (environment first), or None for the embedded server."""
    return environ.get(DSN_ENV) or settings.dsn


def database_key(dsn: str) -> str:
    """A short name for the database ``dsn`` points at (its masked form, hashed): spools live
    in a directory per database, so a spool is only ever replayed into the database its rows
    were meant for."""
    return hashlib.sha256(mask_dsn(dsn).encode()).hexdigest()[:16]


def mask_dsn(dsn: str) -> str:
    """``dsn`` with its password replaced by ``***`` (URL or key=value form); a string libpq
    cannot parse is hidden whole, since where its password sits is unknown."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable DSN>"
    if "password" in params:
        params["password"] = "***"
    return psycopg.conninfo.make_conninfo(**params)
