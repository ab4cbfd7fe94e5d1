"""The volatility-targeted stop: the bracket's stop sits k forecast sigmas over the signal's
holding horizon from the entry (within [stop_min, stop_max]), and the 1%-style risk sizing
follows from that distance. Run through the real EnsembleStrategy in a BacktestEngine."""

import math

import pytest
from nautilus_trader.model.enums import OrderSide

from strategies.risk import RiskRules
from tests.strategies.conftest import Market

DAY = "2024-11-26"
# Risk 50 USD per trade of 100k so the stop distance, not the 5% cap (50 shares), sets the size.
TARGETED = RiskRules(risk_per_trade=0.0005, stop_volatility_multiple=3.0, stop_min=0.005, stop_max=0.05)


def qty(order) -> int:
    return int(order.quantity.as_double())


@pytest.mark.parametrize(
    ("probability", "volatility", "shares", "stop"),
    [
        # 3 x 0.001 x sqrt(25) = 1.5%: stop 98.50, 50 USD / 1.50 = 33 shares.
        pytest.param(0.9, 0.001, 33, 98.50, id="long"),
        pytest.param(0.1, 0.001, 33, 101.50, id="short"),
        # 3 x 0.002 x 5 = 3%: twice the volatility, twice the distance, half the size.
        pytest.param(0.9, 0.002, 16, 97.00, id="long-twice-the-volatility"),
        # 3 x 0.01 x 5 = 15% clamps to stop_max 5%: 50 / 5.00 = 10.
        pytest.param(0.9, 0.01, 10, 95.00, id="clamped-to-max"),
        # 3 x 1e-5 x 5 = 0.015% clamps to stop_min 0.5%: 50 / 0.50 = 100, capped at 5% = 50.
        pytest.param(0.9, 1e-5, 50, 99.50, id="clamped-to-min"),
    ],
)
def test_the_stop_follows_the_forecast_volatility(backtest, probability, volatility, shares, stop) -> None:
    market = Market([DAY], {"AAA": "TECH"})
    market.signal("AAA", f"{DAY} 15:00", probability, volatility=volatility, horizon=25)

    run = backtest(market, rules=TARGETED)

    (entry,) = run.entries("AAA")
    assert entry.side == (OrderSide.BUY if probability > 0.5 else OrderSide.SELL)
    assert qty(entry) == shares
    assert run.orders("AAA", tag="STOP_LOSS")[0].trigger_price.as_double() == stop
    assert run.orders("AAA", tag="TAKE_PROFIT")[0].price.as_double() == (104.00 if probability > 0.5 else 96.00)


def test_off_by_default_the_fixed_stop_ignores_the_volatility(backtest) -> None:
    market = Market([DAY], {"AAA": "TECH"})
    market.signal("AAA", f"{DAY} 15:00", 0.9, volatility=0.01, horizon=25)

    run = backtest(market, rules=RiskRules(risk_per_trade=0.0005))

    assert run.orders("AAA", tag="STOP_LOSS")[0].trigger_price.as_double() == 98.00
    assert qty(run.entries("AAA")[0]) == 25


def test_a_signal_without_volatility_enters_nothing_under_the_target(backtest) -> None:
    """An old signal catalog (no outlook) or a warm-up row: no guessed stop, no entry."""
    market = Market([DAY], {"AAA": "TECH"})
    market.signal("AAA", f"{DAY} 15:00", 0.9)  # volatility NaN, horizon 0

    run = backtest(market, rules=TARGETED)

    assert run.entries("AAA") == []
    assert run.logged("warning", "volatility-targeted stop needs the signal's volatility")


def test_stop_distance_rule() -> None:
    assert RiskRules().stop_distance(0.01, 25) == 0.02
    assert math.isclose(TARGETED.stop_distance(0.001, 25), 0.015)
    assert TARGETED.stop_distance(math.nan, 25) is None and TARGETED.stop_distance(0.001, 0) is None


def test_the_missing_volatility_is_logged_once_per_stock(backtest) -> None:
    market = Market([DAY], {"AAA": "TECH"})
    market.signal("AAA", f"{DAY} 15:00", 0.9)
    market.signal("AAA", f"{DAY} 15:01", 0.9)

    run = backtest(market, rules=TARGETED)

    assert run.entries("AAA") == []
    assert len(run.logged("warning", "volatility-targeted stop")) == 1
