"""`sextant sandbox polygon|alpaca` with a port in use or out of range, or a speed that is not
positive and finite, a start the clock cannot hold: a clear message and exit 2, never a traceback."""

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog.jobs import generate_catalog
from sextant.cli import app
from tests.e2e.test_cli import squash

KINDS = ["polygon", "alpaca"]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sandbox-args") / "catalog"
    generate_catalog(path, n_symbols=1, n_days=1, seed=2)
    return path


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def sandbox(kind: str, catalog: Path, *args: str):
    return CliRunner().invoke(app, ["sandbox", kind, "--catalog", str(catalog), *args])


def assert_clean_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # typer.Exit / a usage error, not a crash
    assert "Traceback" not in result.output
    text = squash(result.output.replace("│", ""))  # a usage error is boxed and wrapped
    for fragment in fragments:
        assert squash(fragment) in text, result.output


@pytest.mark.parametrize("kind", KINDS)
def test_a_port_in_use_is_named(kind: str, catalog: Path, taken_port: int):
    assert_clean_error(
        sandbox(kind, catalog, "--port", str(taken_port)),
        f"sandbox cannot listen on 127.0.0.1:{taken_port}: Address already in use",
    )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("port", ["70000", "-1"])
def test_a_port_out_of_range_is_a_usage_error(kind: str, catalog: Path, port: str):
    bound = "less than or equal to 65535" if port == "70000" else "greater than or equal to 0"
    assert_clean_error(sandbox(kind, catalog, "--port", port), "Invalid value for '--port'", bound)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("speed", ["-5", "0", "nan", "inf"])
def test_a_speed_that_is_not_positive_is_a_usage_error(kind: str, catalog: Path, speed: str):
    assert_clean_error(
        sandbox(kind, catalog, "--speed", speed),
        "--speed", "must be a positive number of simulated seconds per second, got",
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_fault_spec_that_cannot_be_built_is_named(kind: str, catalog: Path):
    """Both a bad option and a fault's own check (times >= 1) are messages naming the spec."""
    assert_clean_error(sandbox(kind, catalog, "--fault", "rest:rate_limit:times=0"),
                       "fault spec 'rest:rate_limit:times=0'")
    assert_clean_error(sandbox(kind, catalog, "--fault", "rest:rate_limit:tims=2"),
                       "fault spec 'rest:rate_limit:tims=2': bad option")


@pytest.mark.parametrize("kind", KINDS)
def test_a_start_that_is_not_a_time_is_named(kind: str, catalog: Path):
    assert_clean_error(sandbox(kind, catalog, "--start", "next tuesday", "--speed", "60"),
                       "--start 'next tuesday' is not a time")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("start", "message"), [
    ("", "--start '' is not a time"),  # pd.Timestamp("") is NaT: it reached the clock as a traceback
    ("2999-01-01", "--start '2999-01-01' is outside the supported calendar range 2000-01-01..2030-12-31"),
    ("1700-01-01", "--start '1700-01-01' is outside the supported calendar range"),
])
def test_a_start_the_clock_cannot_hold_is_named(kind: str, catalog: Path, start: str, message: str):
    assert_clean_error(sandbox(kind, catalog, "--start", start, "--speed", "60"), message)


@pytest.mark.parametrize("kind", KINDS)
def test_a_catalog_that_does_not_exist_is_named(kind: str, tmp_path: Path):
    assert_clean_error(sandbox(kind, tmp_path / "typo"), "does not exist")


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--cash", "-5", "must be a positive amount"),
    ("--cash", "inf", "must be a positive amount"),
    ("--cash", "1e400", "must be a positive amount"),
    ("--participation", "0", "must be a share of a bar's volume in (0, 1]"),
    ("--participation", "1.5", "must be a share of a bar's volume in (0, 1]"),
])
def test_alpaca_account_options_out_of_range_are_usage_errors(catalog: Path, option: str, value: str,
                                                              message: str):
    assert_clean_error(sandbox("alpaca", catalog, option, value), option, message)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("host", ["", "  "])
def test_an_empty_host_is_refused_not_every_interface(kind: str, catalog: Path, host: str):
    assert_clean_error(sandbox(kind, catalog, "--host", host), "--host", "give an address to listen on")
