"""Run metrics on small hand-computed examples: every expected number is worked out in the comments."""

import math

import numpy as np
import pandas as pd
import pytest

from backtests.metrics import (
    chain_equity,
    classification_metrics,
    daily_equity,
    drawdown_series,
    exposure,
    max_drawdown,
    trading_metrics,
)

SESSION_SECONDS = 6.5 * 3600  # 23,400 s in a full NYSE session


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def account(totals: list[str], stamps: list[str]) -> pd.DataFrame:
    """An engine account report: 'total' as the engine writes it (decimal strings), UTC index."""
    return pd.DataFrame({"total": totals}, index=pd.DatetimeIndex([utc(s) for s in stamps]))


def positions(rows: list[tuple[str, str | None, str, float]]) -> pd.DataFrame:
    """(ts_opened, ts_closed or None, realized_pnl 'x USD', realized_return) rows."""
    return pd.DataFrame({
        "ts_opened": pd.to_datetime([r[0] for r in rows], utc=True),
        "ts_closed": pd.to_datetime([r[1] for r in rows], utc=True),
        "realized_pnl": [r[2] for r in rows],
        "realized_return": [r[3] for r in rows],
    })


# -- max_drawdown / drawdown_series -----------------------------------------------------------


def test_max_drawdown_is_largest_peak_to_trough_fraction():
    # peaks 100, 120, 120, 130, 130 -> falls 0, 0, 1 - 90/120 = 0.25, 0, 1 - 117/130 = 0.10
    assert max_drawdown(pd.Series([100.0, 120.0, 90.0, 130.0, 117.0])) == pytest.approx(0.25)
    # the fall that starts at a later, higher peak can be the deepest: 1 - 100/200 = 0.5
    assert max_drawdown(pd.Series([100.0, 80.0, 200.0, 100.0])) == pytest.approx(0.5)


def test_max_drawdown_of_rising_or_empty_equity_is_zero():
    assert max_drawdown(pd.Series([100.0, 101.0, 101.0, 150.0])) == 0.0
    assert max_drawdown(pd.Series(dtype=float)) == 0.0


def test_drawdown_series_is_signed_distance_from_running_peak():
    dd = drawdown_series(pd.Series([100.0, 120.0, 90.0, 130.0]))
    np.testing.assert_allclose(dd.to_numpy(), [0.0, 0.0, -0.25, 0.0])


# -- chain_equity / daily_equity --------------------------------------------------------------


def test_chain_equity_compounds_windows_in_order_and_skips_empty_ones():
    a = account(["100.00", "110.00"], ["2024-01-02 15:00", "2024-01-02 20:00"])  # +10%
    empty = account([], [])
    b = account(["100.00", "90.00"], ["2024-01-03 15:00", "2024-01-03 20:00"])  # -10%
    equity = chain_equity([a, empty, b], starting_cash=100.0)
    # window b starts from a's final level 1.1: 100 * 1.1 = 110, then 90 * 1.1 = 99
    np.testing.assert_allclose(equity.to_numpy(), [100.0, 110.0, 110.0, 99.0])
    assert list(equity.index) == [utc("2024-01-02 15:00"), utc("2024-01-02 20:00"),
                                  utc("2024-01-03 15:00"), utc("2024-01-03 20:00")]
    # order matters for the level, not for the end value: here b then a ends at 0.9 * 1.1 too
    swapped = chain_equity([b, a], 100.0)
    np.testing.assert_allclose(swapped.to_numpy(), [100.0, 90.0, 90.0, 99.0])


def test_chain_equity_of_no_windows_is_empty():
    assert chain_equity([], 100.0).empty
    assert chain_equity([account([], [])], 100.0).empty


def test_daily_equity_takes_last_value_per_new_york_day_and_carries_forward():
    equity = pd.Series(
        [105.0, 110.0, 120.0],
        index=pd.DatetimeIndex([utc("2024-01-02 15:00"), utc("2024-01-02 20:59"),
                                # 02:00 UTC on Jan 5 is still Jan 4 in New York
                                utc("2024-01-05 02:00")]),
    )
    sessions = pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-04"])
    daily = daily_equity(equity, sessions)
    assert list(daily.index) == list(sessions)
    np.testing.assert_allclose(daily.to_numpy(), [110.0, 110.0, 120.0])  # Jan 3 had no change


# -- exposure ---------------------------------------------------------------------------------


def test_exposure_merges_overlapping_positions():
    book = positions([
        ("2024-01-02 14:30", "2024-01-02 14:40", "1.00 USD", 0.0),  # 14:30-14:40
        ("2024-01-02 14:35", "2024-01-02 14:50", "1.00 USD", 0.0),  # overlaps -> 14:30-14:50 = 20 min
        ("2024-01-02 16:00", "2024-01-02 16:10", "1.00 USD", 0.0),  # separate: 10 min
    ])
    # 30 min = 1,800 s of a 23,400 s session
    assert exposure(book, SESSION_SECONDS) == pytest.approx(1800 / 23400)
    assert exposure(book.iloc[:0], SESSION_SECONDS) == 0.0
    assert exposure(book, 0.0) == 0.0


def test_exposure_counts_a_position_nested_in_another_once():
    book = positions([
        ("2024-01-02 14:30", "2024-01-02 15:30", "1.00 USD", 0.0),  # 60 min
        ("2024-01-02 14:40", "2024-01-02 14:50", "1.00 USD", 0.0),  # inside it
    ])
    assert exposure(book, SESSION_SECONDS) == pytest.approx(3600 / 23400)


# -- trading_metrics --------------------------------------------------------------------------

SESSIONS = pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-04"])
BOOK = positions([
    # closed: pnl 30, -10, 20, -5; returns 3%, -1%, 2%, -0.5%; exposure 20 + 30 + 10 min = 1h
    ("2024-01-02 14:30", "2024-01-02 14:40", "30.00 USD", 0.03),
    ("2024-01-02 14:35", "2024-01-02 14:50", "-10.00 USD", -0.01),
    ("2024-01-03 15:00", "2024-01-03 15:30", "20.00 USD", 0.02),
    ("2024-01-04 16:00", "2024-01-04 16:10", "-5.00 USD", -0.005),
    # still open: not a trade, no exposure counted
    ("2024-01-04 17:00", None, "0.00 USD", 0.0),
])


def equity_curve(values: list[float], stamps: list[str]) -> pd.Series:
    return pd.Series(values, index=pd.DatetimeIndex([utc(s) for s in stamps]))


def test_trading_metrics_on_a_hand_computed_three_day_run():
    equity = equity_curve([105.0, 110.0, 95.0, 99.0, 108.9],
                          ["2024-01-02 15:00", "2024-01-02 20:00", "2024-01-03 15:00",
                           "2024-01-03 20:00", "2024-01-04 20:00"])
    daily = daily_equity(equity, SESSIONS)  # 110, 99, 108.9 -> returns +10%, -10%, +10%
    m = trading_metrics(equity, daily, BOOK, starting_cash=100.0,
                        session_seconds=3 * SESSION_SECONDS)
    assert m["start_equity"] == 100.0
    assert m["final_equity"] == pytest.approx(108.9)
    assert m["total_return"] == pytest.approx(0.089)
    assert m["test_sessions"] == 3
    assert m["cagr"] == pytest.approx(1.089 ** (252 / 3) - 1)
    # daily returns r = (0.1, -0.1, 0.1): mean 1/30, sample std sqrt(12)/30
    # Sharpe = (1/30) / (sqrt(12)/30) * sqrt(252) = sqrt(252/12) = sqrt(21)
    assert m["sharpe"] == pytest.approx(math.sqrt(21))
    # downside deviation sqrt(mean(min(r, 0)^2)) = sqrt(0.01/3) -> Sortino = sqrt(3)/3 * sqrt(252) = sqrt(84)
    assert m["sortino"] == pytest.approx(math.sqrt(84))
    # intraday path 100 (start) -> 105 -> 110 -> 95: 1 - 95/110
    assert m["max_drawdown"] == pytest.approx(15 / 110)
    assert m["trades"] == 4
    assert m["win_rate"] == pytest.approx(0.5)
    assert m["profit_factor"] == pytest.approx(50 / 15)
    assert m["avg_return_per_trade"] == pytest.approx((0.03 - 0.01 + 0.02 - 0.005) / 4)
    assert m["exposure"] == pytest.approx(3600 / (3 * 23400))


def test_losing_run_has_negative_sharpe_and_sortino():
    equity = equity_curve([90.0, 99.0, 89.1],
                          ["2024-01-02 20:00", "2024-01-03 20:00", "2024-01-04 20:00"])
    m = trading_metrics(equity, daily_equity(equity, SESSIONS), BOOK, 100.0, 3 * SESSION_SECONDS)
    # r = (-0.1, 0.1, -0.1): mean -1/30, std sqrt(12)/30 -> -sqrt(21)
    assert m["sharpe"] == pytest.approx(-math.sqrt(21))
    # downside sqrt(0.02/3): (-1/30) / sqrt(0.02/3) * sqrt(252) = -sqrt(42)
    assert m["sortino"] == pytest.approx(-math.sqrt(42))
    assert m["total_return"] == pytest.approx(-0.109)
    assert m["max_drawdown"] == pytest.approx(1 - 89.1 / 100)


def test_flat_run_without_trades_has_zero_ratios():
    equity = equity_curve([100.0], ["2024-01-02 20:00"])
    m = trading_metrics(equity, daily_equity(equity, SESSIONS), BOOK.iloc[:0], 100.0, 3 * SESSION_SECONDS)
    assert m["total_return"] == 0.0
    assert m["sharpe"] == 0.0 and m["sortino"] == 0.0  # zero volatility is not an infinite ratio
    assert m["trades"] == 0 and m["win_rate"] == 0.0 and m["profit_factor"] == 0.0
    assert m["avg_return_per_trade"] == 0.0 and m["exposure"] == 0.0 and m["max_drawdown"] == 0.0


def test_profit_factor_without_losses_is_infinite():
    equity = equity_curve([101.0, 102.0, 103.0],
                          ["2024-01-02 20:00", "2024-01-03 20:00", "2024-01-04 20:00"])
    winners = BOOK.iloc[[0, 2]]
    m = trading_metrics(equity, daily_equity(equity, SESSIONS), winners, 100.0, 3 * SESSION_SECONDS)
    assert m["profit_factor"] == math.inf
    assert m["win_rate"] == 1.0
    assert m["sortino"] == 0.0  # no down day: no downside deviation
    losers = BOOK.iloc[[1, 3]]
    assert trading_metrics(equity, daily_equity(equity, SESSIONS), losers, 100.0, 1.0)["profit_factor"] == 0.0


# -- classification_metrics -------------------------------------------------------------------


def test_classification_metrics_auc_and_accuracy():
    y = np.array([0.0, 0.0, 1.0, 1.0, np.nan])
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.9])
    m = classification_metrics(y, p)
    # pairs (pos, neg): (0.35 > 0.1) yes, (0.35 > 0.4) no, (0.8 > both) yes x2 -> AUC 3/4
    assert m["auc"] == pytest.approx(0.75)
    # at 0.5: predictions 0, 0, 0, 1 -> 3 of 4 right; the unlabelled row is ignored
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["rows"] == 4


def test_classification_metrics_with_one_class_is_nan():
    m = classification_metrics(np.array([1.0, 1.0, np.nan]), np.array([0.2, 0.9, 0.5]))
    assert math.isnan(m["auc"]) and math.isnan(m["accuracy"])
    assert m["rows"] == 2
