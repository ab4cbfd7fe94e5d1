"""After a rehearsed or a live day: its backtest, the drift report, and where the report goes
(the journal database when the config journals to PostgreSQL, ``drift.json`` in the run's
directory always). The backtest is a function handed in (``DayBacktestHook``): live reaches
the backtest engine only through what ``sextant`` or the scheduler gives it."""

from datetime import date
from pathlib import Path

import msgspec

from live.drift import DayBacktestHook, DayRecord, DriftReport, drift_report, live_record
from live.journal import Journal, JournalSettings, open_journal
from live.rehearsal import RehearsalResult
from models.drift import DriftReference

DRIFT_FILE = "drift.json"


def report_rehearsed_day(result: RehearsalResult, starting_cash: float, backtest: DayBacktestHook,
                         journal: JournalSettings, out_dir: Path) -> DriftReport:
    """The drift report of ``result`` (a day that started with ``starting_cash``), stored."""
    live = live_record(result.signals, result.intents, result.fills, result.bars, result.broker_cash - starting_cash,
                       result.model_dirs, result.equity)
    report = _report(result.run_id, result.day, live, starting_cash, backtest, out_dir)
    if "postgres" in journal.sinks:
        with open_journal(journal) as opened:
            opened.record_drift(report)
    return report


def report_live_day(journal: Journal, run_id: str, day: date, backtest: DayBacktestHook, out_dir: Path) -> DriftReport:
    """The drift report of a live run, its side read back from the journal database (the bars
    the node received included), stored there too. The day starts with the run's first
    account total; its P&L is the last minus the first."""
    run = journal.read_run(run_id)
    start, end = (run.equity[0][1], run.equity[-1][1]) if run.equity else (0.0, 0.0)
    live = live_record(run.signals, run.intents, run.fills, run.bars, end - start, run.model_dirs, run.equity)
    report = _report(run_id, day, live, start, backtest, out_dir)
    journal.record_drift(report)
    return report


def _report(run_id: str, day: date, live: DayRecord, starting_cash: float, backtest: DayBacktestHook,
            out_dir: Path) -> DriftReport:
    """The day's backtest over the minutes the live run traded, compared; drift.json written."""
    backtested = backtest(day, live.model_dirs, starting_cash)
    if live.bars:
        backtested = backtested.through(max(ts for _, ts in live.bars))
    # every model of a fold is saved with the same reference: its training window's features
    reference = DriftReference.load(Path(live.model_dirs[min(live.model_dirs)]))
    report = drift_report(run_id, day, live, backtested, reference)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / DRIFT_FILE).write_bytes(msgspec.json.encode(report))
    return report


def drift_summary(report: DriftReport) -> dict:
    """The few numbers a phase ledger keeps of a day's report."""
    return {"differences": len(report.differences), "unexplained": len(report.unexplained),
            "significant_features": [f.feature for f in report.significant],
            "live_pnl": round(report.live_pnl, 2), "backtest_pnl": round(report.backtest_pnl, 2)}
