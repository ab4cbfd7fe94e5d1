"""`sextant run --rehearse --panel`: the panel beside a rehearsed schedule, from the command
line (the printed URL, the shared journal), and its option mistakes (one line, exit 2)."""

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from live.journal import JournalSettings, open_journal
from sextant.cli import app
from tests.live.test_scheduler_cli import config_file

DAY = "2024-12-27"


@pytest.mark.slow
def test_a_rehearsal_with_the_panel_prints_its_url_and_journals_the_operators_actions(market, tmp_path: Path):
    catalog, models = market
    config = config_file(tmp_path, models)
    process = subprocess.Popen(
        [sys.executable, "-m", "sextant.cli", "run", str(config), "--rehearse", "--catalog", str(catalog),
         "--from", DAY, "--to", DAY, "--out", str(tmp_path / "runs"), "--no-drift", "--panel",
         "--panel-port", "0", "--pace", "0.02"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "400"})
    lines = []
    try:
        while not any("panel: http://127.0.0.1:" in line for line in lines):
            lines.append(process.stdout.readline())
            assert lines[-1] or process.poll() is None, "".join(lines)
        url = lines[-1].split("panel: ", 1)[1].strip()
        session = requests.Session()
        assert session.get(url, timeout=10).status_code == 200
        base = url.split("/login", 1)[0]
        while session.get(base + "/api/status", timeout=10).json()["control"]["node"] != "running":
            assert process.poll() is None, "the rehearsal ended before its node ran"
            time.sleep(0.1)  # the session's node is trading: the action belongs to its day
        csrf = session.get(base + "/", timeout=10).text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        answer = session.post(base + "/api/control/entries", json={"enabled": False},
                              headers={"X-CSRF-Token": csrf}, timeout=30)
        assert answer.json()["ok"] is True, answer.text
    finally:
        out, _ = process.communicate(timeout=300)
    lines.append(out)
    assert process.returncode == 0, "".join(lines)
    assert sum("login?token=" in line for line in lines) == 1  # printed once
    settings = JournalSettings(sinks=(), data_dir=str(tmp_path / "pg"))
    with open_journal(settings, must_exist=True) as journal:
        decisions = journal.read_day(date.fromisoformat(DAY)).decisions
    assert [(d["kind"], d["subject"], d["details"]["outcome"]) for d in decisions] == [("panel", "entries off", "done")]


def test_a_panel_host_beyond_loopback_needs_the_flag(market, tmp_path: Path):
    catalog, models = market
    result = CliRunner().invoke(app, ["run", str(config_file(tmp_path, models)), "--rehearse", "--catalog",
                                      str(catalog), "--from", DAY, "--to", DAY, "--out", str(tmp_path / "runs"),
                                      "--panel", "--panel-host", "0.0.0.0"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "--panel-allow-remote" in text and "Traceback" not in result.output, text
