"""The journal as one object: where it writes (the sinks the settings pick), the collector
a node runs, and the reading of a day back (``sextant journal``).

    with open_journal(config.journal, out_dir=run_dir) as journal:
        collector = journal.collector(RunInfo(...))   # an actor for the node
        ...run the node...
        journal.finish(collector)                     # optional: a scheduler's day is over
    # leaving finishes every run (the database flushed, the Parquet files written) and stops
    # the embedded server if the journal started it
"""

import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Self

from psycopg.types.json import Jsonb

from catalog.database import embedded_postgres_dsn
from live.drift import DriftReport
from live.journal.day import DayReport, read_day
from live.journal.drift import read_drift, write_drift
from live.journal.postgres import PostgresSink, connect
from live.journal.run_rows import RunRows, read_run
from live.journal.schema import migrate
from live.journal.settings import JournalSettings, configured_dsn, database_key
from live.journal.sinks import ParquetSink, Sink

if TYPE_CHECKING:  # the collector imports NautilusTrader: only runs that have a node pay for it
    from live.journal.collector import JournalCollector


class JournalConfigError(Exception):
    """Journal settings that cannot work as given; the message names the setting."""


@dataclass(frozen=True)
class RunInfo:
    """What a run is: its NYSE session (New York date), name, mode and the model versions
    it trades (name -> saved model directory)."""

    trading_day: date
    name: str
    mode: str
    model_dirs: dict[str, str] = field(default_factory=dict)


class Journal:
    def __init__(self, settings: JournalSettings, dsn: str | None, out_dir: Path | None,
                 also: Sequence[Sink], stack: ExitStack) -> None:
        self.settings = settings
        self.dsn = dsn
        self._out_dir = out_dir
        self._also = tuple(also)
        self._stack = stack
        self._runs: dict[str, list[Sink]] = {}  # run id -> the sinks opened for it

    def collector(self, run: RunInfo, out_dir: Path | None = None) -> "JournalCollector":
        """The actor for one run of a node, writing to this journal's sinks; ``out_dir``: the
        Parquet sink's directory for this run (default: the journal's). A process running
        several runs (a scheduler, day after day) ends each with ``finish``."""
        from live.journal.collector import JournalCollector, JournalCollectorConfig

        out_dir = out_dir or self._out_dir
        if "parquet" in self.settings.sinks and out_dir is None:
            raise JournalConfigError("'journal.sinks' has parquet but this run has no output directory")
        run_id = uuid.uuid4().hex
        sinks: list[Sink] = list(self._also)
        if "postgres" in self.settings.sinks:
            assert self.dsn is not None
            spool_dir = Path(self.settings.spool_dir) / database_key(self.dsn)
            sink = PostgresSink(self.dsn, spool_dir / f"{run_id}.spool",
                                flush_interval_secs=self.settings.flush_interval_ms / 1000,
                                max_batch=self.settings.max_batch)
            sink.open()
            sinks.append(sink)
        if "parquet" in self.settings.sinks:
            sinks.append(ParquetSink(out_dir))
        self._runs[run_id] = [s for s in sinks if s not in self._also]
        return JournalCollector(JournalCollectorConfig(
            run_id=run_id, trading_day=run.trading_day.isoformat(), name=run.name, mode=run.mode,
            model_dirs=dict(run.model_dirs)), sinks)

    def record_decision(self, kind: str, subject: str, details: dict, trading_day: date,
                        decision_id: str | None = None) -> str:
        """Store a decision and its evidence (``details``: JSON-able), e.g. kind "promotion",
        subject "lightgbm v3 over v2", the metrics of both. Written at once, not batched: a
        decision is rare and must not wait on a run. Returns its id; the same ``decision_id``
        twice is stored once."""
        if self.dsn is None:
            raise JournalConfigError("the journal has no database to record in ('journal.sinks' lacks postgres)")
        decision_id = decision_id or uuid.uuid4().hex
        with connect(self.dsn) as conn:
            conn.execute("INSERT INTO journal.decisions VALUES (%s, %s, %s, %s, %s, %s) "
                         "ON CONFLICT (decision_id) DO NOTHING",
                         (decision_id, time.time_ns(), trading_day, kind, subject, Jsonb(details)))
        return decision_id

    def read_day(self, day: date) -> DayReport:
        """Everything the database holds about the runs of ``day``."""
        if self.dsn is None:
            raise JournalConfigError("the journal has no database to read ('journal.sinks' lacks postgres)")
        with connect(self.dsn) as conn:
            return read_day(conn, day)

    def record_drift(self, report: DriftReport) -> None:
        """Store a day's drift report (``live.drift``), replacing an earlier one of its run."""
        with connect(self._database("record in")) as conn:
            write_drift(conn, report)

    def read_run(self, run_id: str) -> RunRows:
        """What the database holds of one run (a live day's drift report reads its side here)."""
        with connect(self._database("read")) as conn:
            return read_run(conn, run_id)

    def read_drift(self, day: date) -> list[DriftReport]:
        """The drift reports of ``day``'s runs (``NoDriftReportError`` when there is none)."""
        with connect(self._database("read")) as conn:
            return read_drift(conn, day)

    def _database(self, verb: str) -> str:
        if self.dsn is None:
            raise JournalConfigError(f"the journal has no database to {verb} ('journal.sinks' lacks postgres)")
        return self.dsn

    def finish(self, collector: "JournalCollector") -> None:
        """Flush and close the sinks of ``collector``'s run (its node has stopped)."""
        _close_all(self._runs.pop(collector.config.run_id))

    def close(self) -> None:
        """Finish every run not finished yet, then stop the embedded server if this journal
        started it."""
        with self._stack:
            _close_all([sink for sinks in self._runs.values() for sink in sinks])
            self._runs.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_all(sinks: list[Sink]) -> None:
    """Close ``sinks`` in order, each even if one before it fails (the failure surfaces after)."""
    with ExitStack() as closing:
        for sink in reversed(sinks):  # callbacks run last-in first-out: in order
            closing.callback(sink.close)


def open_journal(settings: JournalSettings, *, dsn: str | None = None, out_dir: Path | None = None,
                 also: Sequence[Sink] = (), must_exist: bool = False) -> Journal:
    """The journal ``settings`` describe. The database (``dsn``, else the environment's
    SEXTANT_JOURNAL_DSN, else ``settings.dsn``, else the embedded server in
    ``settings.data_dir``) is reached and migrated here, so a wrong DSN or a newer schema
    stops a start before any node runs. ``also``: sinks of the caller's (a rehearsal keeps
    its record in memory). ``must_exist``: refuse to create an embedded database (reading)."""
    if "postgres" not in settings.sinks and not must_exist:
        return Journal(settings, None, out_dir, also, ExitStack())
    with ExitStack() as stack:
        dsn = dsn or configured_dsn(settings)
        if dsn is None:
            data_dir = Path(settings.data_dir)
            if must_exist and not (data_dir / "PG_VERSION").is_file():
                raise JournalConfigError(
                    f"no journal database in {data_dir} ('journal.data_dir'); pass --dsn, or "
                    "run `sextant live` with the postgres journal first")
            dsn = stack.enter_context(embedded_postgres_dsn(data_dir))
        with connect(dsn) as conn:
            migrate(conn)
        return Journal(settings, dsn, out_dir, also, stack.pop_all())
