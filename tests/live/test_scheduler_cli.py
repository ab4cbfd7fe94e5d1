"""`sextant run`: a rehearsed schedule over catalog days (the real node, both sandboxes), and
the mistakes a user can make (one line, exit 2)."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from live.scheduler import SchedulerLock
from sextant.cli import app


def config_file(tmp_path: Path, models: Path, **fields) -> Path:
    path = tmp_path / "paper.yaml"
    journal = {"data_dir": str(tmp_path / "pg"), "spool_dir": str(tmp_path / "spool")}  # never the user's
    path.write_text(yaml.safe_dump({"universe": ["S000", "S001"], "models": {"registry": str(models)},
                                    "strategy": {"weights": {"lightgbm": 1.0}, "entry_threshold": 0.51},
                                    "journal": journal, **fields}))
    return path


def invoke(*args: str):
    result = CliRunner().invoke(app, ["run", *args])
    return result, " ".join(result.output.split())


@pytest.mark.slow
def test_a_rehearsed_week_with_a_half_day_and_a_holiday_trades_both_sessions(market, tmp_path: Path):
    """2024-12-24 closes at 13:00, the 25th is closed, the 26th is a full day."""
    catalog, models = market
    out = tmp_path / "runs"
    result, text = invoke(str(config_file(tmp_path, models)), "--rehearse", "--catalog", str(catalog),
                          "--from", "2024-12-24", "--to", "2024-12-26", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "2024-12-25: no session (holiday)" in text
    run_dir = out / "rehearsal-paper-2024-12-24-2024-12-26"
    ledger = [json.loads(line) for line in (run_dir / "phases.jsonl").read_text().splitlines()]
    assert [(e["day"], e["phase"], e["outcome"]) for e in ledger] == [
        (day, phase, "done") for day in ("2024-12-24", "2024-12-26")
        for phase in ("pre-open", "session", "close", "post-close")]
    closes = [e for e in ledger if e["phase"] == "close"]
    assert all(e["flat"] and e["fills"] > 0 for e in closes), closes  # both days traded, both ended flat
    assert [e["minutes"] for e in ledger if e["phase"] == "session"] == [205, 385]  # to the flatten minute

    half_day = pd.read_parquet(run_dir / "rehearsal-paper-2024-12-24" / "fills.parquet")
    last_fill = pd.Timestamp(half_day["ts_event"].max(), tz="UTC").tz_convert("America/New_York")
    assert last_fill <= pd.Timestamp("2024-12-24 12:55", tz="America/New_York")  # flat before the 13:00 close
    assert "2024-12-24: 205 minutes" in text and "2024-12-26: 385 minutes" in text


@pytest.mark.parametrize(("args", "message"), [
    (["--rehearse", "--from", "2024-12-24"], "--rehearse needs --from YYYY-MM-DD and --to YYYY-MM-DD"),
    (["--rehearse", "--from", "2024-12-24", "--to", "24/12/2024"], "give dates as YYYY-MM-DD"),
    (["--rehearse", "--from", "2024-12-27", "--to", "2024-12-23"], "start 2024-12-27 is after end 2024-12-23"),
    (["--rehearse", "--from", "2024-12-25", "--to", "2024-12-25"], "holds no NYSE session"),
    (["--rehearse", "--from", "2035-01-02", "--to", "2035-01-03"], "outside the supported calendar range"),
    (["--rehearse", "--from", "2024-12-30", "--to", "2025-01-03"], "no bars on 2025-01-02"),
    (["--from", "2024-12-24"], "--from/--to choose the days of a rehearsal"),
])
def test_bad_days_are_one_line_and_exit_2(market, tmp_path: Path, args: list[str], message: str):
    catalog, models = market
    result, text = invoke(str(config_file(tmp_path, models)), "--catalog", str(catalog), "--out", str(tmp_path), *args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert message in text, text


def test_a_bad_schedule_key_names_it(market, tmp_path: Path):
    _, models = market
    result, text = invoke(str(config_file(tmp_path, models, schedule={"pre_open_minutes": 1})), "--rehearse",
                          "--from", "2024-12-24", "--to", "2024-12-26")
    assert result.exit_code == 2 and "schedule.pre_open_minutes" in text, text


def test_a_second_scheduler_on_the_same_config_is_refused(market, tmp_path: Path, monkeypatch):
    """Before any node or clock: the lock is the first thing a live run takes."""
    _, models = market
    monkeypatch.setenv("ALPACA_API_KEY_ID", "PKTEST")
    monkeypatch.setenv("ALPACA_API_SECRET_KEY", "secret")
    monkeypatch.setenv("POLYGON_API_KEY", "key")
    out = tmp_path / "runs"
    with SchedulerLock(out / "scheduler-paper" / "scheduler.lock"):
        result, text = invoke(str(config_file(tmp_path, models)), "--out", str(out))
    assert result.exit_code == 2, result.output
    assert "another scheduler (pid" in text and "one scheduler at a time" in text, text
