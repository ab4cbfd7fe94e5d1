"""`sextant journal` and `sextant live --journal`: a user's mistake is one line and exit 2,
never a traceback; a DSN's password never reaches the screen."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from live.journal.settings import mask_dsn
from sextant.cli import app
from tests.live.journal_support import dsn, server  # noqa: F401 - fixtures


def run(*args: str):
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result, " ".join(result.output.split())


def assert_refused(result, message: str, said: str) -> None:
    assert result.exit_code == 2, said
    assert isinstance(result.exception, SystemExit) and "Traceback" not in said
    assert message in said, said


@pytest.mark.parametrize("day", ["2024-13-01", "yesterday", "2024-12-3x"])
def test_a_wrong_date_is_one_line(day, tmp_path: Path):
    result, said = run("journal", "day", day, "--data-dir", str(tmp_path))
    assert_refused(result, f"'{day}' is not a date; give YYYY-MM-DD", said)


def test_an_unreachable_dsn_is_named_with_its_password_masked():
    result, said = run("journal", "day", "2024-12-30", "--dsn", "postgresql://trader:hunter2@127.0.0.1:1/journal")
    assert_refused(result, "cannot reach the journal database", said)
    assert "hunter2" not in said and "password=***" in said and "127.0.0.1" in said


def test_no_embedded_database_yet_says_where_it_looked(tmp_path: Path):
    result, said = run("journal", "today", "--data-dir", str(tmp_path / "nothing"))
    assert_refused(result, f"no journal database in {tmp_path / 'nothing'}", said)
    assert not (tmp_path / "nothing").exists()  # reading creates nothing


def test_an_empty_day_is_one_line(dsn):  # noqa: F811
    result, said = run("journal", "day", "2024-12-24", "--dsn", dsn)
    assert_refused(result, "the journal holds nothing on 2024-12-24 (latest days: none yet)", said)


def test_passwords_are_masked_in_both_dsn_forms():
    assert "s3cret" not in mask_dsn("postgresql://bob:s3cret@db:5432/j")
    assert "s3cret" not in mask_dsn("host=db password=s3cret dbname=j")
    assert mask_dsn("host=db password=s3cret dbname=j") == "password=*** dbname=j host=db"
    assert mask_dsn("not a dsn = =") == "<unparsable DSN>"


def test_sextant_live_refuses_an_unknown_journal_sink(market, tmp_path: Path):
    _, models = market
    config = tmp_path / "paper.yaml"
    config.write_text(yaml.safe_dump({"models": {"registry": str(models)},
                                      "strategy": {"weights": {"lightgbm": 1.0}}}))
    result, said = run("live", str(config), "--journal", "postgres,sqlite", "--out", str(tmp_path / "runs"))
    assert_refused(result, "--journal 'postgres,sqlite': unknown sink sqlite; choose from postgres, parquet", said)


def test_a_bad_journal_setting_in_the_config_names_the_key(market, tmp_path: Path):
    _, models = market
    config = tmp_path / "paper.yaml"
    config.write_text(yaml.safe_dump({"models": {"registry": str(models)},
                                      "strategy": {"weights": {"lightgbm": 1.0}},
                                      "journal": {"flush_interval_ms": 0}}))
    result, said = run("live", str(config), "--out", str(tmp_path / "runs"))
    assert_refused(result, "journal.flush_interval_ms", said)
