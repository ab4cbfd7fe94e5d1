"""The live day's phases (live.live_phases) with the real TradingNode against both loopback
sandboxes: a scheduler restarted during the session starts the node in the session phase,
which reconciles what the broker holds instead of ordering again, and the close flattens and
then asks the broker itself whether the account is flat."""

from datetime import date
from pathlib import Path

import pandas as pd
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from adapters.alpaca.sandbox import AlpacaSandbox, CatalogMarket
from adapters.polygon.sandbox import PolygonSandbox, SimClock
from live.live_phases import LiveDayPhases
from live.rehearsal import SANDBOX_KEYS, sandbox_environment
from live.schedule import NEW_YORK, Phase, ScheduleSection, day_plan
from live.scheduler import SimulatedClock
from live.settings import AlpacaSection, PolygonSection
from tests.live.conftest import live_config

DAY = date(2024, 12, 30)


def test_a_session_resumed_after_a_restart_reconciles_and_the_close_verifies_flat(market, tmp_path: Path):
    catalog, models = market
    midday = pd.Timestamp(f"{DAY} 12:00", tz=NEW_YORK).tz_convert("UTC")
    sim = SimClock.manual(midday)
    polygon = PolygonSandbox(catalog, api_key=SANDBOX_KEYS["POLYGON_API_KEY"], clock=sim)
    broker = AlpacaSandbox(CatalogMarket(catalog), key_id=SANDBOX_KEYS["ALPACA_API_KEY_ID"],
                           secret_key=SANDBOX_KEYS["ALPACA_API_SECRET_KEY"], clock=sim)
    with sandbox_environment(), polygon, broker:
        # what the process that crashed had done at the broker: a filled entry
        TradingClient(SANDBOX_KEYS["ALPACA_API_KEY_ID"], SANDBOX_KEYS["ALPACA_API_SECRET_KEY"], paper=True,
                      url_override=broker.base_url).submit_order(MarketOrderRequest(
                          symbol="S000", qty=7, side=OrderSide.BUY, time_in_force=TimeInForce.DAY))
        broker.advance_to(midday + pd.Timedelta(minutes=1))
        assert broker.positions()["S000"][0] == 7
        requests_before = len(broker.order_requests)

        config = live_config(models, warmup_sessions=1,
                             polygon=PolygonSection(base_url=polygon.base_url, ws_feed=polygon.ws_feed, secure=False,
                                                    stale_after_secs=3600.0),
                             alpaca=AlpacaSection(base_url=broker.base_url, stream_url=broker.stream_url))
        plan = day_plan(DAY, ScheduleSection(), config.strategy.risk.flatten_minutes_before_close)
        clock = SimulatedClock(midday + pd.Timedelta(minutes=1))
        with LiveDayPhases(config, tmp_path / "runs", clock) as phases:
            session = phases.session(plan, until=clock.now())  # the restarted process: no pre-open here
            assert session == {"resumed": True}
            claimed = phases._node.call(lambda: [str(p.instrument_id) for p in phases._node.node.cache.positions_open()])
            assert claimed == ["S000.ALPACA"]  # reconciled: the node holds what the broker holds
            assert len(broker.order_requests) == requests_before  # and ordered nothing on start
            closed = phases.close(plan)
        assert closed["flat"] is True and closed["open_positions"] == {}
        assert broker.positions().get("S000", (0, 0))[0] == 0  # the close flattened it at the broker
        assert plan.slot(Phase.CLOSE).start == pd.Timestamp(f"{DAY} 15:55", tz=NEW_YORK)
