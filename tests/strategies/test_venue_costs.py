"""The production venue models (backtests.costs) in a real engine: full fills, limit prices,
per-share commission with its minimum.

The thin-volume case is the regression that matters: with NautilusTrader's default book
(a quarter of the bar's volume at each OHLC point) a 50-share bracket on 40-share bars fills
in pieces, and the engine's OUO bookkeeping for a partially filled leg aborts the process.
"""

import pytest
from nautilus_trader.model.enums import OrderStatus

from tests.strategies.conftest import START_CASH, Market

DAY = "2024-11-26"


def thin_market() -> Market:
    market = Market([DAY], {"AAA": "TECH"})
    market.frames["AAA"]["volume"] = 40.0  # 10 shares per OHLC point, far below the 50 we trade
    return market


@pytest.mark.parametrize(
    ("cross", "exit_tag", "exit_px"),
    [
        pytest.param(
            {"high": 106.00, "close": 105.50}, "TAKE_PROFIT", 104.00, id="target-traded-through"
        ),
        pytest.param({"low": 97.00, "close": 97.50}, "STOP_LOSS", 98.00, id="stop-crossed"),
    ],
)
def test_thin_bars_fill_in_full_at_the_order_price_and_pay_commission(
    backtest, cross, exit_tag, exit_px
):
    market = thin_market()
    market.signal("AAA", f"{DAY} 15:00", 0.9)
    market.bar("AAA", f"{DAY} 15:40", **cross)

    run = backtest(market, venue_costs=True)

    (entry,) = run.entries("AAA")
    (exit_order,) = run.orders("AAA", tag=exit_tag)
    for order in (entry, exit_order):
        assert order.status == OrderStatus.FILLED
        assert order.filled_qty.as_double() == 50
        assert len(order.trade_ids) == 1  # one fill, not pieces of the bar's volume
    assert entry.avg_px == 100.0
    assert exit_order.avg_px == exit_px  # at the limit or trigger, not at the bar's extreme

    position = run.position("AAA")
    gross = 50 * (exit_px - 100.0)
    commission = 2 * 1.00  # 50 shares x $0.005 = $0.25 per fill, raised to the $1 minimum
    assert position.realized_pnl.as_double() == pytest.approx(gross - commission)
    assert run.balance() == pytest.approx(START_CASH + gross - commission)


def test_commission_is_per_share_above_the_minimum(backtest):
    market = Market([DAY], {"AAA": "TECH"}, price=20.0)
    market.frames["AAA"]["volume"] = 100_000.0
    market.signal("AAA", f"{DAY} 15:00", 0.9)  # 5% of 100k at $20: 250 shares

    run = backtest(market, venue_costs=True)

    (entry,) = run.entries("AAA")
    assert entry.filled_qty.as_double() == 250
    (commission,) = entry.commissions()
    assert commission.as_double() == pytest.approx(max(250 * 0.005, 1.0))  # $1.25
