"""The strategy's decisions through the journal: the real EnsembleStrategy publishing in a
BacktestEngine, the real JournalCollector beside it writing to a real PostgreSQL (migration
0005) and to Parquet; read back by ``Journal.read_run`` and shown by `sextant journal day`."""

from collections import Counter
from datetime import date
from pathlib import Path

import msgspec
import pandas as pd
from nautilus_trader.model.enums import AccountType
from typer.testing import CliRunner

from live.journal import JournalSettings, open_journal
from live.journal.collector import JournalCollector, JournalCollectorConfig
from live.journal.postgres import PostgresSink
from live.journal.rows import StrategyDecisionRow
from live.journal.sinks import MemorySink, ParquetSink
from live.journal.spool import Spool
from sextant.cli import app
from strategies.risk import RiskRules
from tests.live.journal_support import dsn, server  # noqa: F401 - fixtures
from tests.strategies.conftest import EQUAL_WEIGHTS, START_CASH, build_engine
from tests.strategies.test_decisions import DAY, a_day_of_decisions


def test_every_decision_reaches_the_database_and_the_parquet_file(dsn: str, tmp_path: Path):  # noqa: F811
    memory = MemorySink()
    database = PostgresSink(dsn, tmp_path / "spool" / "run.spool", flush_interval_secs=0.01)
    database.open()
    files = ParquetSink(tmp_path / "journal")
    run = build_engine(a_day_of_decisions(), rules=RiskRules(), threshold=0.65, allow_short=True,
                       weights=EQUAL_WEIGHTS, cash=START_CASH, account_type=AccountType.MARGIN,
                       traded=["AAA", "BBB", "CCC", "DDD", "FFF"], publish_decisions=True)
    run.engine.add_actor(JournalCollector(JournalCollectorConfig(
        run_id="run", trading_day=DAY, name="decisions", mode="backtest", model_dirs={}),
        [memory, database, files]))
    try:
        run.engine.run()
    finally:
        run.engine.dispose()
        database.close()
        files.close()

    published = [{"ts_event": d.ts_event, "ts_init": d.ts_init, "instrument_id": d.instrument_id.value,
                  "probability": d.probability, "threshold": d.threshold, "action": d.action,
                  "reason": d.reason, "client_order_id": d.client_order_id} for d in run.decisions]
    assert len(published) == 9 and memory.records("strategy_decisions") == published
    with open_journal(JournalSettings(sinks=("postgres",), spool_dir=str(tmp_path / "spool")), dsn=dsn) as journal:
        assert journal.read_run("run").decisions == published
        report = journal.read_day(date.fromisoformat(DAY))
    counts = Counter((d["action"], d["reason"]) for d in published)
    assert {(c["action"], c["reason"]): c["n"] for c in report.strategy_decisions} == counts
    assert pd.read_parquet(tmp_path / "journal" / "strategy_decisions.parquet").drop(
        columns=["run_id", "seq"]).to_dict("records") == published

    shown = CliRunner().invoke(app, ["journal", "day", DAY, "--dsn", dsn], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    table = shown.output[shown.output.index("strategy decisions"):]
    assert "outside_entry_window" in table and "enter_long" in table and "below_threshold" in table


def test_a_spooled_decision_is_replayed_once(dsn: str, tmp_path: Path):  # noqa: F811
    """A run that died while the database was away left its decisions in the spool: the next
    journal on that database writes them, once."""
    row = StrategyDecisionRow(run_id="crashed", seq=1, ts_event=1_735_570_860_000_000_000,
                              ts_init=1_735_570_860_000_500_000, instrument_id="S000.ALPACA", probability=0.71,
                              threshold=0.65, action="enter_long", reason="", client_order_id="O-1")
    spool = Spool(tmp_path / "spool" / "crashed.spool")
    spool.append([row, row])
    spool.close()
    sink = PostgresSink(dsn, tmp_path / "spool" / "next.spool")
    sink.open()
    sink.close()
    with open_journal(JournalSettings(sinks=("postgres",), spool_dir=str(tmp_path / "spool")), dsn=dsn) as journal:
        stored = journal.read_run("crashed").decisions
    assert stored == [{k: v for k, v in msgspec.structs.asdict(row).items() if k not in ("run_id", "seq")}]
