"""After a rehearsed day: its backtest, the drift report, and where the report goes (the
journal database when the config journals to PostgreSQL, ``drift.json`` in the run's
directory always). The backtest is a function handed in (``DayBacktestHook``): live reaches
the backtest engine only through what ``sextant`` or the scheduler gives it."""

from pathlib import Path

import msgspec

from live.drift import DayBacktestHook, DriftReport, drift_report, live_record
from live.journal import JournalSettings, open_journal
from live.rehearsal import RehearsalResult
from models.drift import DriftReference

DRIFT_FILE = "drift.json"


def report_rehearsed_day(result: RehearsalResult, starting_cash: float, backtest: DayBacktestHook,
                         journal: JournalSettings, out_dir: Path) -> DriftReport:
    """The drift report of ``result`` (a day that started with ``starting_cash``), stored."""
    live = live_record(result.signals, result.intents, result.fills, result.bars, result.broker_cash - starting_cash,
                       result.model_dirs, result.equity)
    backtested = backtest(result.day, result.model_dirs, starting_cash)
    if result.bars:
        backtested = backtested.through(max(ts for _, ts in result.bars))
    # every model of a fold is saved with the same reference: its training window's features
    reference = DriftReference.load(Path(result.model_dirs[min(result.model_dirs)]))
    report = drift_report(result.run_id, result.day, live, backtested, reference)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / DRIFT_FILE).write_bytes(msgspec.json.encode(report))
    if "postgres" in journal.sinks:
        with open_journal(journal) as opened:
            opened.record_drift(report)
    return report


def drift_summary(report: DriftReport) -> dict:
    """The few numbers a phase ledger keeps of a day's report."""
    return {"differences": len(report.differences), "unexplained": len(report.unexplained),
            "significant_features": [f.feature for f in report.significant],
            "live_pnl": round(report.live_pnl, 2), "backtest_pnl": round(report.backtest_pnl, 2)}
