"""TradingControl's refusals, without a node: the weights go through the one strategy
settings type (the field is named), paper/live through the command line's own checks."""

import pytest

from live.control import ControlRefused, TradingControl
from live.settings import LiveConfig, ModelsSection
from strategies.settings import StrategySettings

PAPER_KEYS = {"ALPACA_API_KEY_ID": "PKTEST", "ALPACA_API_SECRET_KEY": "s", "POLYGON_API_KEY": "p"}


def control(rehearsal: bool = False) -> TradingControl:
    config = LiveConfig(universe=["S000"], models=ModelsSection(registry="unused"),
                        strategy=StrategySettings(weights={"lightgbm": 1.0, "xgboost": 1.0}))
    return TradingControl(config, rehearsal=rehearsal)


@pytest.mark.parametrize(("weights", "field", "message"), [
    ({"lightgbm": -1.0, "xgboost": 1.0}, "strategy.weights.lightgbm", "must be between 0 and 1000"),
    ({"lightgbm": 0.0, "xgboost": 0.0}, "strategy.weights", "at least one model with a positive weight"),
    ({"lightgbm": 1.0, "lstm": 1.0}, "strategy.weights.lstm", "not a model this run trades"),
])
def test_an_invalid_weight_is_refused_naming_the_field(weights, field, message):
    ctl = control()
    with pytest.raises(ControlRefused, match=message) as refused:
        ctl.set_weights(weights)
    assert refused.value.field == field
    assert ctl.weights == {"lightgbm": 1.0, "xgboost": 1.0}  # unchanged


def test_a_valid_weight_is_kept_for_the_next_node():
    ctl = control()
    ctl.set_weights({"lightgbm": 0.3, "xgboost": 0.7})
    assert ctl.weights == {"lightgbm": 0.3, "xgboost": 0.7} and ctl.status()["weights"] == ctl.weights


def test_live_from_a_paper_config_is_refused_with_the_command_lines_reason():
    with pytest.raises(ControlRefused, match="config says mode: paper") as refused:
        control().request_mode("live", live_flag=True, understood=True, environ=PAPER_KEYS)
    assert refused.value.field == "mode"


@pytest.mark.parametrize(("live", "understood", "field"), [(False, True, "live"), (True, False, "understood")])
def test_live_needs_both_confirmations(live, understood, field):
    with pytest.raises(ControlRefused, match="real money needs") as refused:
        control().request_mode("live", live_flag=live, understood=understood, environ=PAPER_KEYS)
    assert refused.value.field == field


def test_paper_stays_paper_and_a_rehearsal_switches_nothing():
    assert control().request_mode("paper", live_flag=False, understood=False, environ=PAPER_KEYS).startswith("already")
    with pytest.raises(ControlRefused, match="rehearsal trades the sandboxes only"):
        control(rehearsal=True).request_mode("paper", live_flag=False, understood=False, environ=PAPER_KEYS)


def test_after_the_emergency_stop_entries_stay_off_for_the_run():
    ctl = control()
    assert "next node starts halted" in ctl.emergency_stop()["message"]  # no node now: nothing to ask
    with pytest.raises(ControlRefused, match="rest of this run"):
        ctl.entries(True)
    assert ctl.status()["emergency_stopped"] and not ctl.status()["entries_enabled"]


def test_commands_that_need_a_node_say_so():
    ctl = control()
    with pytest.raises(ControlRefused, match="no node is running"):
        ctl.close_position("S000")
    with pytest.raises(ControlRefused, match="not in this run's universe") as refused:
        ctl.close_position("NOPE")
    assert refused.value.field == "symbol"
    with pytest.raises(ControlRefused, match="not stopped from the panel"):
        ctl.stop_node()  # no lifecycle: a rehearsal's lockstep node
