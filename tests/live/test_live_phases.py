"""The live day's phases (live.live_phases) with the real TradingNode against both loopback
sandboxes: a scheduler restarted during the session starts the node in the session phase,
which reconciles what the broker holds instead of ordering again; the close flattens and
then asks the broker itself whether the account is flat; Ctrl-C (or SIGTERM, which the
command turns into the same KeyboardInterrupt) during the session flattens too."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from adapters.alpaca.sandbox import AlpacaSandbox, CatalogMarket
from adapters.polygon.sandbox import PolygonSandbox, SimClock
from live.journal import JournalSettings
from live.live_phases import LiveDayPhases
from live.rehearsal import SANDBOX_KEYS, sandbox_environment
from live.schedule import NEW_YORK, DayPlan, ScheduleSection, day_plan
from live.scheduler import SimulatedClock
from live.settings import AlpacaSection, LiveConfig, PolygonSection
from tests.live.conftest import live_config

DAY = date(2024, 12, 30)
MIDDAY = pd.Timestamp(f"{DAY} 12:00", tz=NEW_YORK).tz_convert("UTC")


@dataclass
class Day:
    broker: AlpacaSandbox
    config: LiveConfig
    plan: DayPlan


@pytest.fixture
def held_position(market) -> Iterator[Day]:
    """Both sandboxes at midday, the broker holding 7 S000 that an earlier process bought."""
    catalog, models = market
    sim = SimClock.manual(MIDDAY)
    polygon = PolygonSandbox(catalog, api_key=SANDBOX_KEYS["POLYGON_API_KEY"], clock=sim)
    broker = AlpacaSandbox(CatalogMarket(catalog), key_id=SANDBOX_KEYS["ALPACA_API_KEY_ID"],
                           secret_key=SANDBOX_KEYS["ALPACA_API_SECRET_KEY"], clock=sim)
    with sandbox_environment(), polygon, broker:
        TradingClient(SANDBOX_KEYS["ALPACA_API_KEY_ID"], SANDBOX_KEYS["ALPACA_API_SECRET_KEY"], paper=True,
                      url_override=broker.base_url).submit_order(MarketOrderRequest(
                          symbol="S000", qty=7, side=OrderSide.BUY, time_in_force=TimeInForce.DAY))
        broker.advance_to(MIDDAY + pd.Timedelta(minutes=1))
        assert broker.positions()["S000"][0] == 7
        config = live_config(models, warmup_sessions=1, journal=JournalSettings(sinks=("parquet",)),
                             polygon=PolygonSection(base_url=polygon.base_url, ws_feed=polygon.ws_feed, secure=False,
                                                    stale_after_secs=3600.0),
                             alpaca=AlpacaSection(base_url=broker.base_url, stream_url=broker.stream_url))
        yield Day(broker, config, day_plan(DAY, ScheduleSection(), config.strategy.risk.flatten_minutes_before_close))


def held(broker: AlpacaSandbox) -> int:
    return broker.positions().get("S000", (0, 0))[0]


def test_a_session_resumed_after_a_restart_reconciles_and_the_close_verifies_flat(held_position: Day, tmp_path: Path):
    day = held_position
    requests_before = len(day.broker.order_requests)
    clock = SimulatedClock(MIDDAY + pd.Timedelta(minutes=1))
    with LiveDayPhases(day.config, tmp_path / "runs", clock) as phases:
        session = phases.session(day.plan, until=clock.now())  # the restarted process: no pre-open here
        assert session == {"resumed": True}
        node = phases._node
        claimed = node.call(lambda: [str(p.instrument_id) for p in node.node.cache.positions_open()])
        assert claimed == ["S000.ALPACA"]  # reconciled: the node holds what the broker holds
        assert len(day.broker.order_requests) == requests_before  # and ordered nothing on start
        closed = phases.close(day.plan)
    assert closed["flat"] is True and closed["open_positions"] == {}
    assert held(day.broker) == 0  # the close flattened it at the broker
    assert (tmp_path / "runs" / f"paper-{DAY}" / "orders.parquet").exists()  # the day's journal


class InterruptedClock(SimulatedClock):
    """Ctrl-C arrives while the session waits for its end."""

    def sleep_until(self, ts: pd.Timestamp) -> None:
        raise KeyboardInterrupt


def test_ctrl_c_during_the_session_cancels_flattens_and_leaves(held_position: Day, tmp_path: Path):
    day = held_position
    clock = InterruptedClock(MIDDAY + pd.Timedelta(minutes=1))
    with pytest.raises(KeyboardInterrupt), LiveDayPhases(day.config, tmp_path / "runs", clock) as phases:
        assert "models" in phases.pre_open(day.plan)
        phases.session(day.plan, until=day.plan.close)
    assert held(day.broker) == 0
    assert phases._node is None
