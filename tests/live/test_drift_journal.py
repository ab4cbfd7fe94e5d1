"""Drift reports in the journal database (migration 0003) and `sextant journal drift`: a
report reads back as written, a run's report written again replaces it, and a user's mistake
is one line."""

from datetime import date
from pathlib import Path

from live.drift import Difference, DriftReport
from live.journal import JournalSettings, open_journal
from models.drift import FeatureDrift
from tests.live.journal_support import dsn, server  # noqa: F401 - fixtures
from tests.live.test_journal_cli import assert_refused, run

DAY = date(2024, 12, 31)


def report(run_id: str = "a1b2c3d4e5", unexplained: bool = True) -> DriftReport:
    differences = [Difference(kind="signal", key="S001.ALPACA @ 120", reason="missing bar live", detail="no live signal")]
    if unexplained:
        differences.append(Difference(kind="order", key="S000.ALPACA #2", reason="unexplained",
                                      detail="quantity 9 live vs 10 backtest"))
    return DriftReport(
        trading_day=DAY, run_id=run_id,
        counts={"live_signals": 10, "backtest_signals": 11, "live_orders": 3, "backtest_orders": 3,
                "live_fills": 2, "backtest_fills": 2},
        live_pnl=-12.5, backtest_pnl=-12.5, differences=differences,
        features=[FeatureDrift(feature="vol_30", psi=0.61, level="significant", rows=390),
                  FeatureDrift(feature="ret_1", psi=0.02, level="stable", rows=390)],
        live_equity=[(1, 100_000.0), (2, 99_987.5)], backtest_equity=[(1, 100_000.0), (2, 99_987.5)])


def test_a_report_reads_back_as_written_and_writing_it_again_replaces_it(dsn):  # noqa: F811
    with open_journal(JournalSettings(sinks=("postgres",)), dsn=dsn) as journal:
        journal.record_drift(report())
        assert journal.read_drift(DAY) == [report()]
        journal.record_drift(report(unexplained=False))
        (again,) = journal.read_drift(DAY)
    assert again == report(unexplained=False) and again.unexplained == []


def test_sextant_journal_drift_highlights_what_matters_and_writes_the_page(dsn, tmp_path: Path):  # noqa: F811
    with open_journal(JournalSettings(sinks=("postgres",)), dsn=dsn) as journal:
        journal.record_drift(report())
    page = tmp_path / "drift.html"
    result, said = run("journal", "drift", "2024-12-31", "--dsn", dsn, "--html", str(page))
    assert result.exit_code == 0, said
    assert "2 differences, 1 unexplained" in said
    cells = " ".join(said.replace("│", " ").split())
    assert "unexplained differences" in cells and "S000.ALPACA #2 quantity 9 live vs 10 backtest" in cells
    assert "vol_30 0.610 significant" in cells and "missing bar live 1" in cells
    text = page.read_text()
    assert "feature drift: PSI" in text and "equity: live vs backtest" in text and "quantity 9 live" in text


def test_a_day_without_a_report_is_one_line(dsn):  # noqa: F811
    with open_journal(JournalSettings(sinks=("postgres",)), dsn=dsn) as journal:
        journal.record_drift(report())
    result, said = run("journal", "drift", "2024-12-30", "--dsn", dsn)
    assert_refused(result, "the journal holds no drift report on 2024-12-30 (latest: 2024-12-31)", said)


def test_no_journal_and_a_wrong_date_are_one_line(tmp_path: Path):
    result, said = run("journal", "drift", "2024-12-31", "--data-dir", str(tmp_path / "nothing"))
    assert_refused(result, f"no journal database in {tmp_path / 'nothing'}", said)
    result, said = run("journal", "drift", "2024-12-3x", "--data-dir", str(tmp_path))
    assert_refused(result, "'2024-12-3x' is not a date; give YYYY-MM-DD", said)
