"""The read-only panel over a journal database: the poller feeds the pages exactly what a
running day's sink would, as rows land; `sextant panel` serves it and refuses every command."""

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from live.journal.postgres import connect, prepare_staging, write_rows
from live.journal.schema import migrate
from live.panel.journal_poller import JournalPoller
from live.panel.live_view import TOPICS, LiveView
from tests.live.journal_support import dsn, server  # noqa: F401 - fixtures
from tests.live.panel.test_live_view import traded_rows


def fixed_clock() -> float:
    return 1_735_300_100.0


def test_the_poller_feeds_the_view_what_the_database_holds_as_it_lands(dsn):  # noqa: F811
    rows = traded_rows()
    direct = LiveView(clock=fixed_clock)
    for row in rows:
        direct.put(row)
    polled = LiveView(clock=fixed_clock)
    poller = JournalPoller(dsn, [polled])
    with connect(dsn) as conn:
        migrate(conn)
        prepare_staging(conn)
        write_rows(conn, rows[:5])
        assert poller.poll(conn) == 5
        write_rows(conn, rows[5:])
        assert poller.poll(conn) == len(rows) - 5
        assert poller.poll(conn) == 0
    for topic in TOPICS:
        assert polled.snapshot(topic) == direct.snapshot(topic), topic


@pytest.mark.slow
def test_sextant_panel_serves_the_journal_read_only(dsn):  # noqa: F811
    with connect(dsn) as conn:
        migrate(conn)
        prepare_staging(conn)
        write_rows(conn, traded_rows())
    process = subprocess.Popen([sys.executable, "-m", "sextant.cli", "panel", "--dsn", dsn, "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "COLUMNS": "400"})
    try:
        line = ""
        while "login?token=" not in line:
            line = process.stdout.readline()
            assert line or process.poll() is None, "sextant panel exited"
        url = line.split("panel (read-only): ", 1)[1].strip()
        session = requests.Session()
        assert session.get(url, timeout=10).status_code == 200
        base = url.split("/login", 1)[0]
        deadline = time.monotonic() + 10
        while not (positions := session.get(base + "/api/trading", timeout=10).json()["positions"]["positions"]):
            assert time.monotonic() < deadline, "the poller never delivered the position"
            time.sleep(0.1)
        assert positions[0]["symbol"] == "S000"
        page = session.get(base + "/", timeout=10).text
        csrf = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        refused = session.post(base + "/api/trading/close", json={"symbol": "S000"},
                               headers={"X-CSRF-Token": csrf}, timeout=10)
        assert refused.status_code == 409 and "read-only" in refused.json()["error"]
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and "panel stopped" in out, out
