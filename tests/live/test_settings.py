"""Live settings: the YAML names its bad keys, and real money is refused unless every guard
is satisfied (file, both flags, live endpoint, a live key, a Polygon key)."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from live.settings import LiveConfigError, check_mode, load_live_config
from sextant.cli import app
from tests.e2e.test_cli import squash

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PAPER_ENV = {"ALPACA_API_KEY_ID": "PKTEST", "ALPACA_API_SECRET_KEY": "s", "POLYGON_API_KEY": "p"}
LIVE_ENV = {"ALPACA_API_KEY_ID": "AKTEST", "ALPACA_API_SECRET_KEY": "s", "POLYGON_API_KEY": "p"}


def test_shipped_configs_load():
    paper, live = load_live_config(CONFIGS / "paper.yaml"), load_live_config(CONFIGS / "live.yaml")
    assert paper.mode == "paper" and live.mode == "live"
    assert paper.strategy == live.strategy and paper.strategy.risk.stop_loss == 0.02
    settings = paper.strategy_settings(["S000.ALPACA"])
    assert settings["external_order_claims"] == ["S000.ALPACA"] and settings["entry_threshold"] == 0.65


def _stop_loss_as_text(raw: dict) -> None:
    raw["strategy"]["risk"]["stop_loss"] = "two"


def _unknown_polygon_key(raw: dict) -> None:
    raw["polygon"]["feed"] = "x"


def _empty_universe(raw: dict) -> None:
    raw["universe"] = []


def _no_weight(raw: dict) -> None:
    raw["models"]["weights"] = {"lightgbm": 0.0}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_stop_loss_as_text, r"at `\$.strategy.risk.stop_loss`"),
        (_unknown_polygon_key, r"unknown field `feed` - at `\$.polygon`"),
        (_empty_universe, "'universe' must name at least one symbol"),
        (_no_weight, "at least one positive weight"),
    ],
)
def test_bad_configs_name_the_key(tmp_path: Path, change, message: str):
    raw = yaml.safe_load((CONFIGS / "paper.yaml").read_text())
    change(raw)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(LiveConfigError, match=message):
        load_live_config(path)


def test_paper_needs_keys_and_refuses_the_live_flag():
    paper = load_live_config(CONFIGS / "paper.yaml")
    check_mode(paper, live_flag=False, understood=False, environ=PAPER_ENV)
    with pytest.raises(LiveConfigError, match="ALPACA_API_KEY_ID"):
        check_mode(paper, live_flag=False, understood=False, environ={"POLYGON_API_KEY": "p"})
    with pytest.raises(LiveConfigError, match="POLYGON_API_KEY"):
        check_mode(paper, live_flag=False, understood=False, environ={k: v for k, v in PAPER_ENV.items()
                                                                       if k != "POLYGON_API_KEY"})
    with pytest.raises(LiveConfigError, match="config says mode: paper"):
        check_mode(paper, live_flag=True, understood=True, environ=PAPER_ENV)


def test_real_money_needs_every_guard():
    live = load_live_config(CONFIGS / "live.yaml")
    check_mode(live, live_flag=True, understood=True, environ=LIVE_ENV)
    with pytest.raises(LiveConfigError, match="needs --live and --i-understand-real-money"):
        check_mode(live, live_flag=False, understood=False, environ=LIVE_ENV)
    with pytest.raises(LiveConfigError, match="needs --i-understand-real-money"):
        check_mode(live, live_flag=True, understood=False, environ=LIVE_ENV)
    with pytest.raises(LiveConfigError, match="paper key"):
        check_mode(live, live_flag=True, understood=True, environ=PAPER_ENV)
    with pytest.raises(LiveConfigError, match="ALPACA_API_KEY_ID"):
        check_mode(live, live_flag=True, understood=True, environ={"POLYGON_API_KEY": "p"})


def test_cli_refuses_live_without_flags_or_keys_before_building_a_node():
    runner = CliRunner()
    no_flags = runner.invoke(app, ["live", str(CONFIGS / "live.yaml")], env=LIVE_ENV)
    assert no_flags.exit_code == 2
    assert "needs--liveand--i-understand-real-money" in squash(no_flags.output)
    no_keys = runner.invoke(app, ["live", str(CONFIGS / "live.yaml"), "--live", "--i-understand-real-money"],
                            env={"ALPACA_API_KEY_ID": "", "ALPACA_API_SECRET_KEY": "", "APCA_API_KEY_ID": "",
                                 "APCA_API_SECRET_KEY": "", "POLYGON_API_KEY": "", "MASSIVE_API_KEY": ""})
    assert no_keys.exit_code == 2 and "ALPACA_API_KEY_ID" in no_keys.output
    rehearse_live = runner.invoke(app, ["live", str(CONFIGS / "paper.yaml"), "--rehearse", "--live"])
    assert rehearse_live.exit_code == 2 and "drop --live" in rehearse_live.output
