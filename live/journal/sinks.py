"""Where the collector's rows go. A sink's ``put`` runs on the node's event loop, so it only
hands the row over (no I/O); ``close`` runs on the owner's thread after the node stops."""

from collections import defaultdict
from pathlib import Path
from typing import Protocol

import msgspec
import pandas as pd

from live.journal.rows import Row, table_of
from strategies.records import INTENT_COLUMNS, SIGNAL_COLUMNS

_KEY = ("run_id", "seq")


class Sink(Protocol):
    def put(self, row: Row) -> None: ...

    def close(self) -> None: ...


class MemorySink:
    """The run's rows by table, as dicts, in the order they happened (what a rehearsal
    returns and the Parquet files hold)."""

    def __init__(self) -> None:
        self.tables: dict[str, list[dict]] = defaultdict(list)

    def put(self, row: Row) -> None:
        self.tables[table_of(type(row))].append(msgspec.structs.asdict(row))

    def close(self) -> None:
        pass

    def records(self, table: str) -> list[dict]:
        """The rows of ``table`` without the journal's keys."""
        return [{k: v for k, v in r.items() if k not in _KEY} for r in self.tables.get(table, [])]


class ParquetSink(MemorySink):
    """The rehearsal journal's files in ``out_dir``: signals.parquet and orders.parquet with
    the columns the parity readers know (``strategies.records``), fills.parquet, and one file
    per other table that has rows. Written at close: a file per run, not per event."""

    def __init__(self, out_dir: Path) -> None:
        super().__init__()
        self.out_dir = out_dir

    def close(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        fixed = {"signals": SIGNAL_COLUMNS, "orders": INTENT_COLUMNS, "fills": None}
        for table in sorted(set(self.tables) | set(fixed)):
            frame = pd.DataFrame(self.tables.get(table, []))
            columns = fixed.get(table)
            if columns is not None:
                frame = frame.reindex(columns=[*columns, *(c for c in frame.columns
                                                           if c not in columns and c not in _KEY)])
            frame.to_parquet(self.out_dir / f"{table}.parquet")
