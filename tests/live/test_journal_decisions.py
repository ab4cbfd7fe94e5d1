"""Decisions with their evidence (a promotion, a refusal) go to the journal once and are
shown with their day by `sextant journal`."""

from datetime import date

import psycopg
import pytest
from typer.testing import CliRunner

from live.journal import JournalConfigError, JournalSettings, open_journal
from sextant.cli import app
from tests.live.journal_support import dsn, server  # noqa: F401 - fixtures

DAY = date(2024, 12, 30)
EVIDENCE = {"metric": "sharpe", "champion": {"version": 2, "sharpe": 0.8},
            "challenger": {"version": 3, "sharpe": 1.1}, "margin": 0.1, "promoted": True}


def test_a_decision_is_stored_once_with_its_evidence(dsn, tmp_path):  # noqa: F811
    settings = JournalSettings(sinks=("postgres",), spool_dir=str(tmp_path / "spool"))
    with open_journal(settings, dsn=dsn) as journal:
        decision = journal.record_decision("promotion", "lightgbm v3 over v2", EVIDENCE, DAY)
        assert journal.record_decision("promotion", "lightgbm v3 over v2", EVIDENCE, DAY,
                                       decision_id=decision) == decision
        report = journal.read_day(DAY)
    assert report.runs == [] and [(d["kind"], d["subject"], d["details"]) for d in report.decisions] == [
        ("promotion", "lightgbm v3 over v2", EVIDENCE)]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM journal.decisions").fetchone()[0] == 1
    shown = CliRunner().invoke(app, ["journal", "day", DAY.isoformat(), "--dsn", dsn], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    assert "promotion" in shown.output and "lightgbm v3 over v2" in shown.output


def test_a_journal_without_a_database_cannot_record_a_decision():
    with open_journal(JournalSettings(sinks=())) as journal, pytest.raises(JournalConfigError, match="lacks postgres"):
        journal.record_decision("promotion", "x", {}, DAY)
