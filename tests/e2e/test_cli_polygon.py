"""`sextant catalog ingest`, `sextant sandbox polygon` and `sextant catalog replay` as a user
runs them: the sandbox CLI in a real process reached through the massive SDK, ingest and
replay through typer's runner against a sandbox."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import massive
import pandas as pd
import pytest
import urllib3
from typer.testing import CliRunner

from adapters.polygon.sandbox import PolygonSandbox
from catalog.jobs import generate_catalog
from catalog.store import MarketCatalog
from sextant.cli import app
from tests.e2e.test_cli import squash

SEXTANT = Path(sys.executable).parent / "sextant"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli-polygon") / "source"
    generate_catalog(path, n_symbols=2, n_days=3, seed=5)
    return path


def ingest(catalog: Path, base_url: str, *extra: str, env: dict | None = None):
    args = ["catalog", "ingest", "--symbols", "S000,S001", "--start", "2024-12-27", "--end", "2024-12-31",
            "--catalog", str(catalog), "--base-url", base_url, *extra]
    return CliRunner().invoke(app, args, env=env if env is not None else {"POLYGON_API_KEY": "test-key"})


def test_ingest_copies_the_sandbox_catalog_and_a_rerun_fetches_nothing(tmp_path: Path, source: Path):
    with PolygonSandbox(source, api_key="test-key") as sandbox:
        first = ingest(tmp_path / "cat", sandbox.base_url)
        assert first.exit_code == 0, first.output
        assert "S000: 1,170 bars from 3 sessions (0 already in the catalog)" in first.output
        requests = len(sandbox.requests)
        again = ingest(tmp_path / "cat", sandbox.base_url)
        assert again.exit_code == 0, again.output
        assert "S001: 0 bars from 0 sessions (3 already in the catalog)" in again.output
        assert len(sandbox.requests) == requests
    for symbol in ("S000", "S001"):
        pd.testing.assert_frame_equal(MarketCatalog(tmp_path / "cat").read_bars(symbol),
                                      MarketCatalog(source).read_bars(symbol))


def test_ingest_without_a_key_or_with_other_settings_refuses_clearly(tmp_path: Path, source: Path):
    missing = ingest(tmp_path / "cat", "http://127.0.0.1:9", env={"POLYGON_API_KEY": "", "MASSIVE_API_KEY": ""})
    assert missing.exit_code == 2
    assert "setPOLYGON_API_KEYorMASSIVE_API_KEY" in squash(missing.output)
    with PolygonSandbox(source, api_key="test-key") as sandbox:
        assert ingest(tmp_path / "cat", sandbox.base_url).exit_code == 0
        mixed = ingest(tmp_path / "cat", sandbox.base_url, "--unadjusted")
    assert mixed.exit_code == 2
    assert "holds1mbarsingestedwith{'adjusted':True" in squash(mixed.output)


def test_a_failed_symbol_is_named_and_the_exit_code_says_so(tmp_path: Path, source: Path):
    from adapters.polygon.sandbox import Fault

    with PolygonSandbox(source, api_key="test-key",
                        faults=[Fault(kind="truncated", target="rest", symbol="S001")]) as sandbox:
        result = ingest(tmp_path / "cat", sandbox.base_url)
    assert result.exit_code == 2
    assert "S000: 1,170 bars" in result.output
    assert "incomplete" in result.output and "S0012024-12-27..2024-12-31" in squash(result.output)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sandbox_command_serves_the_catalog_to_the_sdk(source: Path):
    port = _free_port()
    server = subprocess.Popen([str(SEXTANT), "sandbox", "polygon", "--catalog", str(source), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        client = massive.RESTClient(api_key="test-key", base=f"http://127.0.0.1:{port}", retries=0)
        deadline = time.monotonic() + 60
        while True:
            try:
                aggs = list(client.list_aggs("S000", 1, "minute", "2024-12-31", "2024-12-31", limit=100))
                break
            except urllib3.exceptions.MaxRetryError:  # the server process is still starting
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        expected = MarketCatalog(source).read_bars("S000", start=pd.Timestamp("2024-12-31 14:30", tz="UTC"))
        assert [a.timestamp + 60_000 for a in aggs] == list(expected.index.asi8 // 1_000_000)
        assert [a.close for a in aggs] == list(expected["close"])
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert f"RESThttp://127.0.0.1:{port}" in squash(output)


def test_replay_command_prints_bars_and_a_summary(source: Path):
    result = CliRunner().invoke(app, ["catalog", "replay", "--catalog", str(source), "--start", "2024-12-31",
                                      "--end", "2024-12-31", "--symbols", "S000", "--only", "bar"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if " bar " in line]
    assert len(lines) == 390
    first = MarketCatalog(source).read_bars("S000", start=pd.Timestamp("2024-12-31 14:30", tz="UTC")).iloc[0]
    assert lines[0].startswith("2024-12-31 09:31:00  bar    S000")
    assert f"c={first.close:.2f}" in lines[0]
    bad = CliRunner().invoke(app, ["catalog", "replay", "--catalog", str(source), "--start", "2024-12-31",
                                   "--end", "2024-12-31", "--only", "bars"])
    assert bad.exit_code == 2 and "unknown kind(s) bars" in bad.output
