"""Rehearsals (`sextant live --rehearse`): the day must be one the catalog can replay, and
Ctrl-C stops the day the way it stops a live node (cancel, flatten, journal)."""

import os
import signal
from pathlib import Path

import pandas as pd
import pytest

from live.journal import JournalSettings
from live.rehearsal import RehearsalError, rehearse
from tests.live.conftest import FIRST, LAST, live_config

TRADE_DAY = "2024-12-30"


def test_a_day_outside_the_catalog_names_the_catalogs_range(market):
    catalog, models = market
    with pytest.raises(RehearsalError, match=f"no bars on 2025-01-03: it holds {FIRST} .. {LAST}"):
        rehearse(live_config(models), catalog, "2025-01-03")


def test_a_day_that_is_not_a_session_is_refused(market):
    catalog, models = market
    with pytest.raises(RehearsalError, match="2024-12-25 is not an NYSE session"):
        rehearse(live_config(models), catalog, "2024-12-25")


def test_the_first_day_has_no_warm_up_so_no_signal_can_be_produced(market):
    catalog, models = market
    with pytest.raises(RehearsalError, match=f"no warm-up history .* starts on {FIRST}.*no signal can be produced"):
        rehearse(live_config(models), catalog, FIRST)


@pytest.mark.slow
def test_ctrl_c_stops_the_rehearsal_cancels_flattens_and_writes_the_journal(market, tmp_path: Path):
    """A real SIGINT in the middle of the day (NautilusTrader would take it for the node's
    own loop, stop the node and leave the day running to its end)."""
    catalog, models = market
    journal = tmp_path / "journal"
    progress: list[int] = []
    positions: list[int] = []

    def on_minute(done: int, _total: int) -> None:
        progress.append(done)
        if done == 90:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        rehearse(live_config(models, journal=JournalSettings(sinks=("parquet",))), catalog, TRADE_DAY,
                 out_dir=journal, on_minute=on_minute)
    assert 90 <= progress[-1] < 390  # stopped where the signal came, not at the end
    orders = pd.read_parquet(journal / "orders.parquet")
    fills = pd.read_parquet(journal / "fills.parquet")
    assert len(orders) > 0 and len(fills) > 0  # it traded before the stop
    # every position the fills opened was closed by the stop: net zero per symbol
    signed = fills["last_qty"].astype(float) * fills["side"].map({"BUY": 1, "SELL": -1})
    positions = signed.groupby(fills["instrument_id"]).sum().tolist()
    assert positions and all(qty == 0 for qty in positions)


@pytest.mark.parametrize(("day", "catalog_name", "message"), [
    ("2035-01-02", None, "--day '2035-01-02'"),           # beyond the NYSE calendar
    ("2024-12-30", "typo", "does not exist"),             # a catalog path that is not there
])
def test_cli_rehearsal_mistakes_are_messages(market, tmp_path: Path, day, catalog_name, message):
    import yaml
    from typer.testing import CliRunner

    from sextant.cli import app

    catalog, models = market
    config = tmp_path / "paper.yaml"
    config.write_text(yaml.safe_dump({"models": {"registry": str(models)},
                                      "strategy": {"weights": {"lightgbm": 1.0}}}))
    where = tmp_path / catalog_name if catalog_name else catalog
    result = CliRunner().invoke(app, ["live", str(config), "--rehearse", "--day", day, "--catalog", str(where),
                                      "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert message in " ".join(result.output.split()), result.output
