"""EnsembleStrategy under its risk rules, driven through a real NautilusTrader BacktestEngine.

Every test builds a tiny market (one or two NYSE sessions of 1-minute bars for a few stocks,
flat at 100 unless the test moves a bar), feeds MLSignals, runs the engine and checks what the
simulated venue actually did: orders, fills, positions, balance and the RiskEngine's trading
state. Starting equity is 100,000 USD; default rules: 1% risk, 2% stop, 4% target, 5% per stock,
25% per sector, 10 positions, 2% daily loss, flat 5 min and no entries 15 min before the close.
"""

import pandas as pd
import pytest
from nautilus_trader.model.enums import AccountType, OrderSide, OrderStatus, OrderType, TradingState

from strategies.ensemble import FLATTEN_TAG, HALT_TAG
from strategies.risk import RiskRules
from tests.strategies.conftest import START_CASH, Market, utc

DAY = "2024-11-26"  # a regular Tuesday: 14:30-21:00 UTC
NEXT = "2024-11-27"  # the next regular session
MINUTE = pd.Timedelta(minutes=1)


def at(ns: int) -> pd.Timestamp:
    return pd.Timestamp(ns, tz="UTC")


def qty(order_or_position) -> float:
    q = getattr(order_or_position, "peak_qty", None) or order_or_position.quantity
    return q.as_double()


# -- 1-3: the bracket ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("probability", "near_miss", "cross", "exit_tag", "exit_px", "pnl"),
    [
        pytest.param(
            0.90, {"low": 98.01}, {"low": 97.50}, "STOP_LOSS", 98.00, -100.0, id="long-stop"
        ),
        pytest.param(
            0.90, {"high": 103.99}, {"high": 104.50}, "TAKE_PROFIT", 104.00, 200.0, id="long-target"
        ),
        pytest.param(
            0.10, {"high": 101.99}, {"high": 102.50}, "STOP_LOSS", 102.00, -100.0, id="short-stop"
        ),
        pytest.param(
            0.10, {"low": 96.01}, {"low": 95.50}, "TAKE_PROFIT", 96.00, 200.0, id="short-target"
        ),
    ],
)
def test_bracket_exits_at_its_stop_or_target(
    backtest, probability, near_miss, cross, exit_tag, exit_px, pnl
):
    market = Market([DAY], {"AAA": "TECH"})
    market.signal("AAA", f"{DAY} 15:00", probability)
    market.bar("AAA", f"{DAY} 15:20", **near_miss)  # a cent short of the level: nothing happens
    market.bar("AAA", f"{DAY} 15:40", **cross)

    run = backtest(market)

    long = probability > 0.5
    (entry,) = run.entries("AAA")
    (stop,) = run.orders("AAA", tag="STOP_LOSS")
    (target,) = run.orders("AAA", tag="TAKE_PROFIT")
    assert entry.side == (OrderSide.BUY if long else OrderSide.SELL)
    assert entry.order_type == OrderType.MARKET
    assert (qty(entry), entry.avg_px, at(entry.ts_last)) == (50, 100.0, utc(f"{DAY} 15:00"))
    assert stop.order_type == OrderType.STOP_MARKET and target.order_type == OrderType.LIMIT
    assert stop.trigger_price.as_double() == (98.00 if long else 102.00)
    assert target.price.as_double() == (104.00 if long else 96.00)

    exit_order, other = (stop, target) if exit_tag == "STOP_LOSS" else (target, stop)
    assert exit_order.status == OrderStatus.FILLED
    assert (exit_order.avg_px, at(exit_order.ts_last)) == (exit_px, utc(f"{DAY} 15:40"))
    assert other.status == OrderStatus.CANCELED  # one-cancels-the-other

    position = run.position("AAA")
    assert position.is_closed and position.closing_order_id == exit_order.client_order_id
    assert position.realized_pnl.as_double() == pnl
    assert position.realized_return == pytest.approx(pnl / 5_000)  # -2% / +4% of the notional
    assert run.balance() == START_CASH + pnl
    assert not run.open_orders() and not run.open_positions()


@pytest.mark.parametrize(
    ("weights", "probabilities", "allow_short", "side"),
    [
        pytest.param({"a": 3.0, "b": 1.0}, (0.9, 0.3), True, OrderSide.BUY, id="0.75-long"),
        pytest.param({"a": 1.0, "b": 3.0}, (0.9, 0.3), True, None, id="0.45-no-trade"),
        pytest.param({"a": 3.0, "b": 1.0}, (0.1, 0.7), True, OrderSide.SELL, id="0.25-short"),
        pytest.param({"a": 3.0, "b": 1.0}, (0.1, 0.7), False, None, id="0.25-shorts-off"),
        pytest.param(
            {"a": 1.0, "b": 0.0}, (0.7, 0.0), True, OrderSide.BUY, id="zero-weight-ignored"
        ),
        pytest.param({"a": 1.0, "b": 1.0}, (0.65, 0.65), True, OrderSide.BUY, id="at-threshold"),
        pytest.param({"a": 1.0, "b": 1.0}, (0.64, 0.64), True, None, id="below-threshold"),
        pytest.param(
            {"a": 1.0, "b": 1.0}, (0.35, 0.35), True, OrderSide.SELL, id="at-short-threshold"
        ),
        pytest.param({"a": 1.0, "b": 1.0}, (0.36, 0.36), True, None, id="above-short-threshold"),
    ],
)
def test_weighted_vote_decides_the_side(backtest, weights, probabilities, allow_short, side):
    market = Market([DAY], {"AAA": "TECH"})
    market.signal("AAA", f"{DAY} 15:00", *probabilities)

    run = backtest(market, weights=weights, allow_short=allow_short)

    assert [e.side for e in run.entries()] == ([side] if side else [])


# -- 4: the session close comes from the calendar ----------------------------------------------------


@pytest.mark.parametrize(
    ("day", "entered"),
    [
        pytest.param("2024-07-03", ["AAA", "LAST"], id="half-day-13:00-EDT"),
        pytest.param("2024-11-29", ["AAA", "BBB", "LAST"], id="half-day-13:00-EST"),
        pytest.param(DAY, ["AAA", "BBB", "CCC", "LAST"], id="full-day-16:00-EST"),
    ],
)
def test_flat_before_the_real_close_and_no_late_entries(backtest, day, entered):
    symbols = ["AAA", "BBB", "CCC", "LAST", "LATE"]
    market = Market([day], {s: f"SECTOR-{s}" for s in symbols})
    close = market.close_of(day)
    # Same wall-clock signals every day: which of them may enter depends on that day's close.
    market.signal("AAA", f"{day} 15:00", 0.9)
    market.signal("BBB", f"{day} 16:50", 0.9)
    market.signal("CCC", f"{day} 17:50", 0.9)
    market.signal("LAST", close - 15 * MINUTE, 0.9)  # the last minute that may still enter
    market.signal("LATE", close - 14 * MINUTE, 0.9)  # inside the no-entry window

    run = backtest(market)

    assert sorted(run.entered()) == entered
    # One nanosecond after the flatten minute: that minute's bars of every stock are in.
    flatten_at = close - 5 * MINUTE + pd.Timedelta(1, "ns")
    positions = run.positions()
    assert sorted(p.instrument_id.symbol.value for p in positions) == entered  # one per entry
    for position in positions:
        closing = run.engine.cache.order(position.closing_order_id)
        assert position.is_closed and at(position.ts_closed) == flatten_at, position
        assert closing.order_type == OrderType.MARKET and closing.is_reduce_only
        assert closing.tags == [FLATTEN_TAG]  # the strategy's flatten order, not the stop or the target
    legs = run.orders(tag="STOP_LOSS") + run.orders(tag="TAKE_PROFIT")
    assert len(legs) == 2 * len(entered)  # every entry's bracket, each cancelled by the flatten
    assert all(o.status == OrderStatus.CANCELED for o in legs)
    assert not run.open_positions() and not run.open_orders()
    assert run.logged("info", "session close")


# -- 5: daily loss halt ---------------------------------------------------------------------------

# Wide stops and 20% positions, so losses stay open and the strategy itself must act on them:
# 200 shares of a 100 USD stock each; a 5.10 drop costs one position 1.02% of equity.
WIDE_RULES = RiskRules(risk_per_trade=0.02, stop_loss=0.10, max_position_pct=0.20)


def losing_market(days: list[str]) -> Market:
    market = Market(days, {"AAA": "TECH", "BBB": "FIN", "CCC": "ENERGY"})
    market.heartbeat(
        ["CCC"], f"{days[0]} 14:31", f"{days[-1]} 21:00"
    )  # a neutral signal every minute
    market.signal("AAA", f"{DAY} 15:00", 0.9)
    market.signal("BBB", f"{DAY} 15:00", 0.9)
    market.hold("AAA", 94.90, f"{DAY} 15:20", f"{DAY} 21:00")  # -1.02% of equity: not yet
    market.hold("BBB", 94.90, f"{DAY} 15:30", f"{DAY} 21:00")  # -2.04% together: halt
    market.signal("AAA", f"{DAY} 16:00", 0.9)
    market.signal("CCC", f"{DAY} 16:00", 0.9)
    market.signal("CCC", f"{DAY} 17:00", 0.1)
    return market


def test_daily_loss_limit_flattens_and_halts(backtest):
    run = backtest(losing_market([DAY]), rules=WIDE_RULES)

    halt = utc(f"{DAY} 15:30")
    assert run.state_changes == [(halt, TradingState.REDUCING)]  # closing orders only
    assert run.engine.kernel.risk_engine.trading_state == TradingState.REDUCING
    assert run.logged("warning", "daily loss 2.04%")
    for symbol in ("AAA", "BBB"):
        position = run.position(symbol)
        closing = run.engine.cache.order(position.closing_order_id)
        assert qty(position) == 200
        assert (
            at(position.ts_closed) == halt
            and closing.order_type == OrderType.MARKET
            and closing.tags == [HALT_TAG]  # the halt's flatten, told apart from the close's
        )
        assert position.realized_pnl.as_double() == pytest.approx(-1_020.0)
    assert run.balance() == pytest.approx(START_CASH - 2_040.0)
    # The strong signals after the halt never became orders (not even denied ones).
    assert not [o for o in run.orders() if at(o.ts_init) > halt]
    assert not run.open_positions() and not run.open_orders()


def test_an_entry_still_in_flight_when_the_halt_comes_is_closed_as_it_opens(backtest):
    market = losing_market([DAY])
    market.signal("CCC", f"{DAY} 15:29", 0.9)  # its order reaches the venue after the halt
    run = backtest(market, rules=WIDE_RULES, latency_ms=90_000)

    halt = run.state_changes[0][0]
    late = run.position("CCC")
    closing = run.engine.cache.order(late.closing_order_id)
    assert at(late.ts_opened) > halt and late.is_closed and closing.tags == [HALT_TAG]
    assert at(late.ts_closed) - at(late.ts_opened) <= pd.Timedelta(minutes=3)  # not at the session's close
    assert not run.open_positions() and not run.open_orders()


def test_trading_resumes_next_session_after_a_halt(backtest):
    market = losing_market([DAY, NEXT])
    market.signal("CCC", f"{NEXT} 15:00", 0.9)

    run = backtest(market, rules=WIDE_RULES)

    assert run.state_changes == [
        (utc(f"{DAY} 15:30"), TradingState.REDUCING),
        (utc(f"{NEXT} 14:31"), TradingState.ACTIVE),  # the next session's first signal
    ]
    assert run.engine.kernel.risk_engine.trading_state == TradingState.ACTIVE
    (resumed,) = [e for e in run.entries() if at(e.ts_init) > utc(f"{DAY} 15:30")]
    assert resumed.instrument_id.symbol.value == "CCC" and at(resumed.ts_last) == utc(
        f"{NEXT} 15:00"
    )
    assert resumed.status == OrderStatus.FILLED
    assert qty(resumed) == int(
        0.20 * (START_CASH - 2_040.0) / 100.0
    )  # sized off today's equity: 195


# -- 6: sizing and caps -----------------------------------------------------------------------------


# Stop distance binds: risk 0.1% of 100k = 100 USD against the stop, below the 5% cap (50 shares).
TIGHT_RISK = {"risk_per_trade": 0.001}


@pytest.mark.parametrize(
    ("price", "probability", "rules", "shares", "stop", "target"),
    [
        # min(1% * 100k / (2% * 100) = 500, 5% * 100k / 100 = 50): the 5% cap binds.
        pytest.param(100.00, 0.9, RiskRules(), 50, 98.00, 104.00, id="cap-binds"),
        # Bracket legs round away from the entry: stop 36.4854 -> 36.48, target 38.7192 -> 38.72.
        pytest.param(37.23, 0.9, RiskRules(), 134, 36.48, 38.72, id="cap-odd-price"),
        # min(0.05% * 100k / 2.00 = 25, 50): the risk budget binds.
        pytest.param(100.00, 0.9, RiskRules(risk_per_trade=0.0005), 25, 98.00, 104.00, id="risk-binds"),
        # min(0.2% * 100k / (412.57 - 391.94) = 9.69, 5000 / 412.57 = 12.1) -> 9; stop/target at 5%/6%
        # (391.9415 rounds down, 437.3242 up).
        pytest.param(
            412.57,
            0.9,
            RiskRules(risk_per_trade=0.002, stop_loss=0.05, take_profit=0.06),
            9,
            391.94,
            437.33,
            id="risk-binds-wide-stop",
        ),
        # The stop distance decides the size, long and short: 100 USD / 4.00 = 25, / 2.50 = 40.
        pytest.param(100.00, 0.9, RiskRules(**TIGHT_RISK, stop_loss=0.04), 25, 96.00, 104.00, id="long-4pct-stop"),
        pytest.param(100.00, 0.1, RiskRules(**TIGHT_RISK, stop_loss=0.04), 25, 104.00, 96.00, id="short-4pct-stop"),
        pytest.param(100.00, 0.9, RiskRules(**TIGHT_RISK, stop_loss=0.025), 40, 97.50, 104.00, id="long-2.5pct-stop"),
        pytest.param(100.00, 0.1, RiskRules(**TIGHT_RISK, stop_loss=0.025), 40, 102.50, 96.00, id="short-2.5pct-stop"),
        # A short's stop rounds up (37.9746 -> 37.98) and its size uses that rounded distance:
        # 50 USD / 0.75 = 66.7 -> 66 (the unrounded 0.7446 would give 67); target 35.7408 -> 35.74.
        pytest.param(37.23, 0.1, RiskRules(risk_per_trade=0.0005), 66, 37.98, 35.74, id="short-stop-rounds-up"),
        # A sub-penny close (Polygon's 4 decimals) at or above $1: the legs are whole cents.
        pytest.param(185.4321, 0.9, RiskRules(), 26, 181.72, 192.85, id="sub-penny-close"),
        # Below $1 the tick is 0.0001: 0.502054 -> 0.5020, 0.532792 -> 0.5328.
        pytest.param(0.5123, 0.9, RiskRules(), 9759, 0.5020, 0.5328, id="sub-dollar"),
    ],
)
def test_position_size_and_bracket_prices(backtest, price, probability, rules, shares, stop, target):
    market = Market([DAY], {"AAA": "TECH"})
    market.hold("AAA", price, market.minutes[0])
    market.frames["AAA"]["volume"] = 1_000_000.0  # the engine's default book fills 9,759 shares at once
    market.signal("AAA", f"{DAY} 15:00", probability)

    run = backtest(market, rules=rules)

    (entry,) = run.entries("AAA")
    assert entry.side == (OrderSide.BUY if probability > 0.5 else OrderSide.SELL)
    assert qty(entry) == shares and entry.avg_px == price
    assert run.orders("AAA", tag="STOP_LOSS")[0].trigger_price.as_double() == stop
    assert run.orders("AAA", tag="TAKE_PROFIT")[0].price.as_double() == target


def test_size_follows_equity_after_a_loss(backtest):
    market = Market([DAY], {"AAA": "TECH"})
    market.signal("AAA", f"{DAY} 15:00", 0.9)
    market.bar("AAA", f"{DAY} 15:10", low=97.0)  # stopped out: -100 USD
    market.signal("AAA", f"{DAY} 15:30", 0.9)

    run = backtest(market)

    assert [qty(e) for e in run.entries()] == [50, 49]  # 5% of 99,900 at 100 is 49.95 shares


@pytest.mark.parametrize("latency_ms", [0, 50], ids=["instant-fills", "live-like-latency"])
def test_sector_cap_with_simultaneous_signals(backtest, latency_ms):
    prices = {
        "T1": 90.0,
        "T2": 100.0,
        "T3": 100.0,
        "T4": 100.0,
        "T5": 100.0,
        "T6": 30.0,
        "T7": 100.0,
        "F1": 100.0,
    }
    market = Market([DAY], {s: "FIN" if s == "F1" else "TECH" for s in prices})
    for symbol, price in prices.items():
        market.hold(symbol, price, market.minutes[0])
        market.signal(symbol, f"{DAY} 15:00", 0.9)

    run = backtest(market, latency_ms=latency_ms)

    # 4,950 + 4 x 5,000 = 24,950 of TECH; the 25,000 cap leaves room for one 30 USD share of T6
    # (not its 166) and none for T7. FIN has its own cap.
    sizes = {e.instrument_id.symbol.value: qty(e) for e in run.entries()}
    assert sizes == {"T1": 55, "T2": 50, "T3": 50, "T4": 50, "T5": 50, "T6": 1, "F1": 50}
    tech = sum(
        qty(p) * p.avg_px_open for p in run.positions() if p.instrument_id.symbol.value != "F1"
    )
    assert tech == pytest.approx(24_980.0) and tech <= 0.25 * START_CASH
    assert all(e.status == OrderStatus.FILLED for e in run.entries())


def max_concurrent(positions) -> int:
    events = sorted([(p.ts_opened, 1) for p in positions] + [(p.ts_closed, -1) for p in positions])
    peak = count = 0
    for _, step in events:  # at equal times a close (-1) sorts before an open (+1)
        count += step
        peak = max(peak, count)
    return peak


@pytest.mark.parametrize("latency_ms", [0, 50], ids=["instant-fills", "live-like-latency"])
def test_at_most_ten_positions(backtest, latency_ms):
    symbols = [f"S{i:02d}" for i in range(12)]
    market = Market(
        [DAY], {s: f"SECTOR-{s}" for s in symbols}
    )  # one per sector: only the count binds
    for symbol in symbols:
        market.signal(symbol, f"{DAY} 15:00", 0.9)
    market.bar("S00", f"{DAY} 15:20", high=105.0)  # S00 takes profit: one slot frees up
    market.signal("S10", f"{DAY} 15:30", 0.9)
    market.signal("S11", f"{DAY} 15:30", 0.9)

    run = backtest(market, latency_ms=latency_ms)

    assert run.entered() == symbols[:10] + ["S10"]
    assert at(run.entries("S10")[0].ts_init) == utc(f"{DAY} 15:30")
    assert max_concurrent(run.positions()) == 10


# -- 7: rejection ---------------------------------------------------------------------------------


def test_rejected_order_is_logged_and_trading_continues(backtest):
    market = Market([DAY], {"AAA": "TECH", "BBB": "FIN"})
    market.signal("AAA", f"{DAY} 15:00", 0.1)  # a short: the cash account venue refuses it
    market.signal("BBB", f"{DAY} 15:05", 0.9)
    market.signal("AAA", f"{DAY} 15:10", 0.9)
    market.signal("BBB", f"{DAY} 15:15", 0.5)  # one more signal: the daily-loss check runs on it

    run = backtest(market, account_type=AccountType.CASH)

    rejected, later = run.entries("AAA")
    assert rejected.side == OrderSide.SELL and rejected.status == OrderStatus.REJECTED
    assert "SHORT SELLING not permitted" in rejected.last_event.reason
    bracket = [rejected] + [run.engine.cache.order(i) for i in rejected.linked_order_ids]
    assert len(bracket) == 3 and all(o.is_closed and o.filled_qty.as_double() == 0 for o in bracket)
    assert run.logged(
        "warning", f"{rejected.client_order_id} rejected: SHORT SELLING not permitted"
    )

    # Trading carries on: another stock and then the same stock enter and fill.
    assert run.entered() == ["AAA", "BBB", "AAA"]
    assert later.side == OrderSide.BUY and later.status == OrderStatus.FILLED
    assert (qty(later), at(later.ts_last)) == (50, utc(f"{DAY} 15:10"))
    assert [at(p.ts_opened) for p in run.positions()] == [utc(f"{DAY} 15:05"), utc(f"{DAY} 15:10")]
    # Shares bought with cash are equity, not a loss: no halt.
    assert run.state_changes == [] and run.balance() == START_CASH


# -- 8: regular session only ----------------------------------------------------------------------


def test_no_entries_outside_the_regular_session(backtest):
    market = Market([DAY, NEXT], {"AAA": "TECH"})
    market.signal("AAA", f"{DAY} 21:30", 0.9)  # after hours (the day's bars are known)
    market.signal("AAA", f"{NEXT} 13:00", 0.9)  # pre-market
    market.signal("AAA", f"{NEXT} 14:30", 0.9)  # the opening instant closes a pre-market bar
    market.signal("AAA", f"{NEXT} 14:31", 0.9)  # first regular bar

    run = backtest(market)

    assert [at(e.ts_init) for e in run.entries()] == [utc(f"{NEXT} 14:31")]
    assert run.entries()[0].status == OrderStatus.FILLED


def test_signals_for_untraded_stocks_are_ignored(backtest):
    market = Market([DAY], {"AAA": "TECH", "ZZZ": "FIN"})
    market.signal("ZZZ", f"{DAY} 15:00", 0.9)
    market.signal("AAA", f"{DAY} 15:01", 0.9)

    run = backtest(market, traded=["AAA"])

    assert run.entered() == ["AAA"]
