"""Hostile and careless inputs a new user types, found by the second input sweep (issue 8):
each was a traceback, a silent hang or a misleading message. Each must now exit 2 with one
clear line naming the cause, and write nothing."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog.jobs import generate_catalog
from sextant.cli import app
from tests.e2e.test_cli import assert_clean_failure

runner = CliRunner()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "cat"
    generate_catalog(path, n_symbols=2, n_days=3, seed=4)  # sessions 2024-12-26 .. 2024-12-30 (1m bars only)
    return path


@pytest.mark.parametrize(("extra", "cause"), [
    (["--start", "2020-01-02", "--end", "2020-01-03"], "no 1m bars for S000, S001 between 2020-01-02 and 2020-01-03"),
    (["--start", "2024-12-30", "--end", "2024-12-30", "--timeframe", "1d"], "no 1d bars for S000, S001"),
], ids=["sessions-before-the-catalog", "timeframe-not-stored"])
def test_a_replay_of_nothing_the_catalog_holds_is_a_message(catalog: Path, extra: list[str], cause: str):
    result = runner.invoke(app, ["catalog", "replay", "--catalog", str(catalog), "--quiet", *extra])
    assert_clean_failure(result, cause, "sextant catalog info")


@pytest.mark.parametrize(("extra", "cause"), [
    (["--start", "2024-12-31", "--end", "2024-12-01"], "start 2024-12-31 is after end 2024-12-01"),
    (["--start", "2999-01-01", "--end", "2999-01-05"], "outside the supported calendar range"),
    (["--start", "2024-12-02", "--end", "2024-12-03", "--timeframe", "7m"], "unknown timeframe '7m'"),
], ids=["reversed", "far-future", "timeframe"])
def test_ingest_of_a_new_symbol_checks_the_request_before_any_lookup(tmp_path: Path, monkeypatch, extra, cause):
    """A symbol the catalog does not know needs a reference lookup first: a bad range used to
    be hidden behind that lookup's connection error (port 9: nothing listens)."""
    monkeypatch.setenv("POLYGON_API_KEY", "not-used")
    result = runner.invoke(app, ["catalog", "ingest", "--symbols", "AAPL", "--catalog", str(tmp_path / "cat"),
                                 "--base-url", "http://127.0.0.1:9", *extra])
    assert_clean_failure(result, cause)
    assert "Polygon" not in result.output


@pytest.mark.parametrize(("url", "cause"), [
    ("", "Polygon base URL '' is not an http(s) URL with a host"),
    ("ftp://x", "Polygon base URL 'ftp://x' is not an http(s) URL"),
    ("not a url", "Polygon base URL 'not a url' is not an http(s) URL"),
    ("http://127.0.0.1:99999", "Polygon base URL 'http://127.0.0.1:99999': Port out of range"),
])
def test_ingest_refuses_a_base_url_it_cannot_reach_by_name(tmp_path: Path, monkeypatch, url: str, cause: str):
    monkeypatch.setenv("POLYGON_API_KEY", "not-used")
    result = runner.invoke(app, ["catalog", "ingest", "--symbols", "AAPL", "--start", "2024-12-02", "--end",
                                 "2024-12-03", "--catalog", str(tmp_path / "cat"), "--base-url", url])
    assert_clean_failure(result, cause)
    assert "transport error" not in result.output and not (tmp_path / "cat").exists()


def test_generate_refuses_a_market_too_large_to_build(tmp_path: Path):
    """100,000,000 symbols was a MemoryError (33.8 TiB) traceback."""
    result = runner.invoke(app, ["catalog", "generate", "--catalog", str(tmp_path / "big"), "--symbols",
                                 "100000000", "--days", "10"])
    assert_clean_failure(result, "100,000,000 symbols x 10 sessions is 390,000,000,000 minute bars",
                         "at most 20,000,000")
    assert not (tmp_path / "big").exists()


@pytest.mark.parametrize(("sector", "cause"), [
    ("", "empty sector"),
    ("   ", "empty sector"),
    ("Tech\nnology", r"sector 'Tech\nnology' holds a control character"),
    ("x" * 300, "is 300 characters long; a sector name has at most 64"),
])
def test_import_csv_refuses_a_sector_the_caps_could_not_group_by(tmp_path: Path, sector: str, cause: str):
    """An empty sector or one with a newline was stored as is: a sector of its own for the
    25% sector cap, and a broken `catalog info` table."""
    csv = tmp_path / "bars.csv"
    csv.write_text("timestamp,open,high,low,close,volume\n2024-12-30 14:31:00,10,10.5,9.5,10.2,100\n")
    result = runner.invoke(app, ["catalog", "import-csv", str(csv), "--symbol", "ZZZ", "--sector", sector,
                                 "--catalog", str(tmp_path / "cat")])
    assert_clean_failure(result, cause)
    assert not (tmp_path / "cat").exists()


def test_import_csv_trims_the_sector(tmp_path: Path):
    from catalog.store import MarketCatalog

    csv = tmp_path / "bars.csv"
    csv.write_text("timestamp,open,high,low,close,volume\n2024-12-30 14:31:00,10,10.5,9.5,10.2,100\n")
    result = runner.invoke(app, ["catalog", "import-csv", str(csv), "--symbol", "ZZZ", "--sector", " Technology ",
                                 "--catalog", str(tmp_path / "cat")])
    assert result.exit_code == 0, result.output
    assert MarketCatalog(tmp_path / "cat").sectors() == {"ZZZ": "Technology"}
