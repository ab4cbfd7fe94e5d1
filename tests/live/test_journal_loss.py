"""The journal loses nothing: the database stopped and restarted under a running sink, a
crashed run's spool replayed by the next, a writer killed with SIGKILL mid-stream. All on a
real PostgreSQL server (its process stopped, not a mock)."""

import math
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from nautilus_trader.model.identifiers import InstrumentId

from live.journal import JournalSettings, RunInfo, open_journal
from live.journal.postgres import PostgresSink, prepare_staging, write_rows
from live.journal.settings import database_key
from live.journal.spool import Spool
from strategies.signals import MLSignal
from tests.live.journal_support import (  # noqa: F401 - fixtures
    dsn,
    new_database,
    seqs,
    server,
    signal_row,
    spool_files,
    start_server,
    stop_server,
)

ROOT = Path(__file__).resolve().parents[2]


def ml_signal() -> MLSignal:
    return MLSignal(ts_event=1, ts_init=1, instrument_id=InstrumentId.from_str("S000.ALPACA"), models="lightgbm",
                    probabilities=np.array([0.6]), decision="BUY", confidence=0.6, expected_return=0.001,
                    risk_score=2, volatility=0.01, horizon=30, horizons="30", horizon_returns=np.array([0.001]))


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_the_database_stopped_mid_session_loses_and_duplicates_nothing(server, dsn, tmp_path):  # noqa: F811
    _, handle = server
    spool_dir = tmp_path / "spool"
    sink = PostgresSink(dsn, spool_dir / "run.spool", flush_interval_secs=0.02, max_batch=100)
    sink.open()
    for seq in range(1, 501):
        sink.put(signal_row("run", seq))
    wait_for(lambda: sink.flushed == 500, "the first rows to be written")
    stop_server(handle)
    try:
        for seq in range(501, 1001):
            sink.put(signal_row("run", seq))
        wait_for(lambda: (spool_dir / "run.spool").stat().st_size > 0, "the rows to be spooled")
    finally:
        start_server(handle)
    for seq in range(1001, 1201):
        sink.put(signal_row("run", seq))
    wait_for(lambda: sink.flushed >= 1200, "the spool to be replayed")
    sink.close()
    assert seqs(dsn, "signals", "run") == list(range(1, 1201))  # each row once, none missing
    with psycopg.connect(dsn) as conn:  # the values came back from the spool intact
        probabilities, expected_return = conn.execute(
            "SELECT probabilities, expected_return FROM journal.signals WHERE seq = 777").fetchone()
        assert probabilities == [777 / 1e6] and math.isnan(expected_return)
    assert spool_files(spool_dir) == []  # replayed, then removed


def test_a_row_written_before_the_connection_dropped_is_not_written_twice(dsn, tmp_path):  # noqa: F811
    """A commit that reached the server but whose answer was lost spools the batch too: the
    replay must skip what is already there."""
    sink = PostgresSink(dsn, tmp_path / "spool" / "run.spool")
    sink.open()
    sink.close()
    rows = [signal_row("run", seq) for seq in range(1, 11)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        prepare_staging(conn)
        write_rows(conn, rows[:6])  # committed
    spool = Spool(tmp_path / "spool" / "crashed-run.spool")
    spool.append(rows)  # and spooled again, all of them
    spool.close()
    sink = PostgresSink(dsn, tmp_path / "spool" / "next-run.spool")
    sink.open()  # replays the leftover spool of the crashed run
    sink.close()
    assert seqs(dsn, "signals", "run") == list(range(1, 11))
    assert spool_files(tmp_path / "spool") == []


def test_a_spool_held_by_a_running_sink_is_not_replayed_by_another(dsn, tmp_path):  # noqa: F811
    held = Spool(tmp_path / "spool" / "running.spool")
    held.append([signal_row("running", 1)])
    other = PostgresSink(dsn, tmp_path / "spool" / "other.spool")
    other.open()
    other.close()
    assert seqs(dsn, "signals", "running") == []
    held.close()


WRITER = """
import sys, time
from live.journal import JournalSettings, RunInfo, open_journal
from live.journal.postgres import PostgresSink
from tests.live.journal_support import signal_row
sink = PostgresSink(sys.argv[1], __import__('pathlib').Path(sys.argv[2]), flush_interval_secs=0.02, max_batch=200)
sink.open()
reported, seq = -1, 0
while True:
    for _ in range(50):
        seq += 1
        sink.put(signal_row("killed", seq))
    if sink.flushed != reported:
        reported = sink.flushed
        print(reported, flush=True)
    time.sleep(0.002)
"""


def test_a_writer_killed_with_sigkill_keeps_everything_up_to_its_last_flush(dsn, tmp_path):  # noqa: F811
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, dsn, str(tmp_path / "spool" / "w.spool")],
                              env=env, stdout=subprocess.PIPE, text=True)
    try:
        flushed = 0
        for line in writer.stdout:
            flushed = int(line)
            if flushed >= 3000:
                break
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    written = seqs(dsn, "signals", "killed")
    # a prefix of what was put, with no gap, at least as long as the last flush it reported
    assert written == list(range(1, len(written) + 1))
    assert len(written) >= flushed >= 3000


def test_spools_are_kept_per_database_so_one_is_never_replayed_into_another(server, tmp_path):  # noqa: F811
    """A run against database A that ends with a spool must not be replayed into B."""
    base, _ = server
    a, b = new_database(base, "spool_a"), new_database(base, "spool_b")
    assert database_key(a) != database_key(b)
    leftover = Spool(tmp_path / "spool" / database_key(a) / "crashed.spool")
    leftover.append([signal_row("crashed", 1)])
    leftover.close()
    settings = JournalSettings(sinks=("postgres",), spool_dir=str(tmp_path / "spool"))
    run = RunInfo(trading_day=date(2024, 12, 30), name="t", mode="paper")
    with open_journal(settings, dsn=b) as journal:
        journal.collector(run)
    assert seqs(b, "signals", "crashed") == []
    with open_journal(settings, dsn=a) as journal:
        journal.collector(run)
    assert seqs(a, "signals", "crashed") == [1]


def test_a_journal_runs_day_after_day_each_run_finished_on_its_own(dsn, tmp_path):  # noqa: F811
    """A scheduler keeps one journal open for the week: finishing a day's run writes all of
    it (database and files) while the journal stays open for the next."""
    settings = JournalSettings(sinks=("postgres", "parquet"), spool_dir=str(tmp_path / "spool"))
    with open_journal(settings, dsn=dsn) as journal:
        for day in (date(2024, 12, 30), date(2024, 12, 31)):
            collector = journal.collector(RunInfo(trading_day=day, name="week", mode="paper"),
                                          out_dir=tmp_path / day.isoformat())
            collector.on_data(ml_signal())  # as the node's data engine hands it a signal
            journal.finish(collector)
            assert seqs(dsn, "signals", collector.config.run_id) == [1]
            assert len(pd.read_parquet(tmp_path / day.isoformat() / "signals.parquet")) == 1
