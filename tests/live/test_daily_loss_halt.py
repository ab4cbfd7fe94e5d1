"""The daily-loss kill switch on a LIVE node: a rehearsed day (the real TradingNode, the
Polygon and Alpaca loopback sandboxes) with a daily loss limit the day's first positions
cross. The broker itself, asked through alpaca-py, must hold no position and no open order
once the halting minute has settled, while the node still runs; nothing is entered after;
the risk engine stays REDUCING.

Why a live node: its LiveRiskEngine queues the flatten's closing orders and checks them
after the strategy has switched the trading state. A HALTED state there denies them (a
backtest's synchronous risk engine never shows it), leaving the positions open at the broker
with their brackets cancelled."""

from pathlib import Path

import pandas as pd
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetOrdersRequest

from live.control import TradingControl
from live.rehearsal import SANDBOX_KEYS, rehearse
from strategies.risk import RiskRules
from strategies.settings import StrategySettings
from tests.live.conftest import live_config

DAY = "2024-12-30"
# 0.01% of the day's starting equity: on this catalog day the strategy is long S001 and
# short S000 (with their brackets) by 09:34, and their loss crosses it at 09:35.
LIMIT = 0.0001


def test_the_daily_loss_limit_flattens_at_the_broker_and_stops_entries_on_a_live_node(market, tmp_path: Path):
    catalog, models = market
    config = live_config(models, strategy=StrategySettings(entry_threshold=0.51, weights={"lightgbm": 1.0},
                                                           risk=RiskRules(daily_loss_limit=LIMIT)))
    control = TradingControl(config)
    minutes: list[dict] = []  # per settled minute: the engine's state and what the broker says

    def on_minute(done: int, _total: int) -> None:
        broker = TradingClient(SANDBOX_KEYS["ALPACA_API_KEY_ID"], SANDBOX_KEYS["ALPACA_API_SECRET_KEY"],
                               paper=True, url_override=control.broker_url())
        minutes.append({
            "minute": done,
            "state": control.status()["trading_state"],
            "positions": {p.symbol: p.qty for p in broker.get_all_positions()},
            "open_orders": [(o.symbol, o.side.value, o.order_type.value)
                            for o in broker.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN, nested=False))],
            "orders": len(broker.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, nested=False))),
        })

    result = rehearse(config, catalog, DAY, until="09:50", on_minute=on_minute, control=control)

    halt = next(i for i, m in enumerate(minutes) if m["state"] != "ACTIVE")
    before, at = minutes[halt - 1], minutes[halt]
    assert before["positions"] and before["open_orders"], before  # positions with brackets to flatten
    # the halting minute settled: the flatten's orders passed the live risk engine and filled
    assert at["positions"] == {} and at["open_orders"] == [], at
    assert at["state"] == "REDUCING"
    # nothing afterwards: no order reaches the broker, the state holds, the account stays flat
    assert all(m["state"] == "REDUCING" for m in minutes[halt:])
    assert all(m["positions"] == {} and m["orders"] == at["orders"] for m in minutes[halt:])
    assert result.broker_positions == {} and len(result.broker_orders) == at["orders"]
    assert not [e for e in result.order_events if e["kind"] == "OrderDenied"]

    # the journal's decisions: every signal from the halting minute on is skipped as halted
    halted_at = pd.Timestamp(f"{DAY} 09:30", tz="America/New_York").value + (halt + 1) * 60_000_000_000
    after = [d for d in result.decisions if d["ts_event"] >= halted_at]
    assert after and all((d["action"], d["reason"]) == ("skip", "halted") for d in after)
    closes = [f for f in result.fills if f["ts_event"] >= halted_at - 60_000_000_000]
    assert sorted(f["instrument_id"] for f in closes) == ["S000.ALPACA", "S001.ALPACA"]  # one close a position
