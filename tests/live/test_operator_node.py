"""The operator's commands on a live day's real node (live.control through live.live_phases,
both loopback sandboxes): a manual close, stopping the node mid-session (it flattens; the
session waits without it) and starting it again (it reconciles and orders nothing)."""

import time
from pathlib import Path

import pandas as pd
import pytest

from live.control import ControlRefused, TradingControl
from live.live_phases import LiveDayPhases
from live.scheduler import SimulatedClock
from tests.live.test_live_phases import MIDDAY, Day, held, held_position  # noqa: F401 - fixture


def test_close_stop_and_start_the_node_from_the_control(held_position: Day, tmp_path: Path):  # noqa: F811
    day = held_position
    clock = SimulatedClock(MIDDAY + pd.Timedelta(minutes=1))
    control = TradingControl(day.config)
    with LiveDayPhases(day.config, tmp_path / "runs", clock, control=control) as phases:
        phases.session(day.plan, until=clock.now())  # the node starts and reconciles the 7 S000
        assert control.status()["node"] == "running" and control.broker_url() == day.broker.base_url

        control.close_position("S000")  # the strategy closes it at market
        deadline = time.monotonic() + 10
        while held(day.broker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert held(day.broker) == 0
        with pytest.raises(ControlRefused, match="no open position"):
            control.close_position("S001")
        control.stop_node()
        assert control.status()["node"] == "stopped by the operator"
        placed = [r for r in day.broker.order_requests if r.method == "POST" and r.symbol == "S000"]
        assert len(placed) == 2, placed  # the earlier process's buy and the manual close; nothing left to flatten

        until = clock.now() + pd.Timedelta(minutes=3)
        assert phases.session(day.plan, until=until) == {"resumed": False}  # waited, no node, no error
        assert control.status()["node"] == "stopped by the operator"

        requests = len(day.broker.order_requests)
        control.start_node()
        assert control.status()["node"] == "running"
        assert len(day.broker.order_requests) == requests  # reconciled: nothing ordered on start
        with pytest.raises(ControlRefused, match="it is running"):
            control.start_node()
        phases.close(day.plan)
    assert control.status()["node"] == "not running"
    with pytest.raises(ControlRefused, match="no node is running"):
        control.close_position("S000")
