"""The bars a live node received, in the journal (migration 0004) and read back as a run's
drift side (``Journal.read_run``), on a real PostgreSQL."""

from pathlib import Path

from live.journal import JournalSettings, open_journal
from live.journal.postgres import PostgresSink
from live.journal.rows import AccountRow, BarRow, ModelVersion
from tests.live.journal_support import dsn, server  # noqa: F401 - fixtures

MINUTE = 60_000_000_000
T0 = 1_735_050_660_000_000_000


def bar(seq: int, symbol: str, ts: int) -> BarRow:
    return BarRow(run_id="run", seq=seq, ts_event=ts, ts_init=ts + 5, instrument_id=f"{symbol}.ALPACA",
                  open="100.01", high="100.50", low="99.90", close="100.25", volume="1200")


def test_the_bars_a_run_received_are_read_back_with_its_models_and_equity(dsn: str, tmp_path: Path):  # noqa: F811
    sink = PostgresSink(dsn, tmp_path / "spool" / "run.spool", flush_interval_secs=0.01)
    sink.open()
    rows = [ModelVersion(run_id="run", seq=1, name="lightgbm", version=1, path="/models/lightgbm/v0001"),
            AccountRow(run_id="run", seq=2, ts_event=T0, account_id="ALPACA-1", currency="USD", total="1000.00",
                       free="1000.00", locked="0"),
            bar(3, "S000", T0), bar(4, "S001", T0), bar(5, "S000", T0 + MINUTE),  # S001's second bar lost
            AccountRow(run_id="run", seq=6, ts_event=T0 + MINUTE, account_id="ALPACA-1", currency="USD",
                       total="1012.50", free="1012.50", locked="0")]
    for row in rows:
        sink.put(row)
    sink.close()
    with open_journal(JournalSettings(sinks=("postgres",), spool_dir=str(tmp_path / "spool")), dsn=dsn) as journal:
        run = journal.read_run("run")
    assert run.bars == {("S000.ALPACA", T0), ("S001.ALPACA", T0), ("S000.ALPACA", T0 + MINUTE)}
    assert run.model_dirs == {"lightgbm": "/models/lightgbm/v0001"}
    assert run.equity == [(T0, 1000.0), (T0 + MINUTE, 1012.5)]
    assert run.signals == run.intents == run.fills == []
