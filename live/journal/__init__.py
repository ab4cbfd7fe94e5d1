"""The live journal: one collector (an actor), pluggable sinks (PostgreSQL, Parquet, memory),
versioned schema, spool-and-replay when the database goes away. ``open_journal`` is the door."""

from live.journal.day import DayReport, EmptyDayError
from live.journal.journal import Journal, JournalConfigError, RunInfo, open_journal
from live.journal.postgres import JournalUnavailableError
from live.journal.schema import JournalSchemaError
from live.journal.settings import JournalSettings

__all__ = ["DayReport", "EmptyDayError", "Journal", "JournalConfigError", "JournalSchemaError",
           "JournalSettings", "JournalUnavailableError", "RunInfo", "open_journal"]
