"""The tear sheet's numbers against small cases computed by hand."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from backtests.tearsheet import (
    buy_and_hold_returns,
    monthly_returns,
    rolling_sharpe,
    rolling_volatility,
    session_prices,
    trade_cuts,
    trade_table,
)

D = pd.DatetimeIndex(["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07"])


def prices(opens: list[float], closes: list[float], days: pd.DatetimeIndex = D) -> pd.DataFrame:
    return pd.DataFrame({"open": opens, "close": closes}, index=days)


def test_buy_and_hold_buys_equal_dollars_at_each_windows_first_open_and_chains_the_windows():
    # Window 1 (Mar 4-5): A 100 -> 110 -> 121, B 50 -> 45 -> 50: worth 1.0, then (1.21 + 1.0) / 2.
    # Window 2 (Mar 6-7), bought afresh at its opens: A 200 -> 220 -> 200, B 10 -> 10 -> 12.
    universe = {"A": prices([100, 999, 200, 999], [110, 121, 220, 200]),
                "B": prices([50, 999, 10, 999], [45, 50, 10, 12])}
    returns = buy_and_hold_returns(universe, [D[:2], D[2:]])
    level = [1.0, 1.0, 1.105, 1.105 * 1.05, 1.105 * 1.1]  # growth of 1 before and after each session
    expected = [b / a - 1.0 for a, b in itertools.pairwise(level)]
    assert list(returns.index) == list(D)
    assert returns.to_numpy() == pytest.approx(expected)
    assert (1.0 + returns).prod() - 1.0 == pytest.approx(0.2155)


def test_a_symbol_without_a_price_on_the_first_session_sits_the_window_out():
    universe = {"A": prices([100, 100, 100, 100], [110, 121, 110, 121]),
                "late": prices([np.nan, 10, 10, 10], [np.nan, 20, 20, 20])}
    returns = buy_and_hold_returns(universe, [D[:2]])
    assert returns.to_numpy() == pytest.approx([0.10, 0.10])


def test_session_prices_are_each_new_york_days_first_open_and_last_close():
    closes = pd.DatetimeIndex(["2024-03-04 14:31", "2024-03-04 21:00", "2024-03-05 14:31", "2024-03-05 21:00"], tz="UTC")
    bars = pd.DataFrame({"open": [1.0, 2.0, 3.0, 4.0], "close": [1.5, 2.5, 3.5, 4.5]}, index=closes)
    daily = session_prices(bars)
    assert list(daily.index) == list(D[:2])
    assert daily["open"].tolist() == [1.0, 3.0] and daily["close"].tolist() == [2.5, 4.5]


def test_monthly_returns_compound_each_calendar_month():
    days = pd.DatetimeIndex(["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02", "2025-01-02"])
    table = monthly_returns(pd.Series([0.01, 0.02, -0.01, 0.03, 0.05], index=days))
    assert list(table.index) == [2024, 2025] and list(table.columns) == list(range(1, 13))
    assert table.loc[2024, 1] == pytest.approx(1.01 * 1.02 - 1.0)
    assert table.loc[2024, 2] == pytest.approx(0.99 * 1.03 - 1.0)
    assert table.loc[2025, 1] == pytest.approx(0.05)
    assert math.isnan(table.loc[2024, 3]) and math.isnan(table.loc[2025, 2])


def test_rolling_sharpe_and_volatility_use_the_last_window_of_sessions():
    returns = pd.Series([0.01, 0.03, -0.01, 0.02, 0.0, 0.0, 0.0], index=pd.bdate_range("2024-03-01", periods=7))
    sharpe, vol = rolling_sharpe(returns, window=3), rolling_volatility(returns, window=3)
    assert sharpe.iloc[:2].isna().all() and vol.iloc[:2].isna().all()
    last3 = np.array([0.03, -0.01, 0.02])
    assert sharpe.iloc[3] == pytest.approx(last3.mean() / last3.std(ddof=1) * math.sqrt(252))
    assert vol.iloc[3] == pytest.approx(last3.std(ddof=1) * math.sqrt(252))
    assert sharpe.iloc[6] == 0.0 and vol.iloc[6] == 0.0  # a flat stretch earned nothing


def positions_and_orders() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Four closed trades over two folds and an open one; fold 1 reuses a client order id of fold 0."""
    positions = pd.DataFrame({
        "instrument_id": ["AAA.ALPACA", "BBB.ALPACA", "AAA.ALPACA", "BBB.ALPACA", "AAA.ALPACA", "CCC.ALPACA"],
        "entry": ["BUY", "SELL", "BUY", "BUY", "SELL", "BUY"],
        "ts_opened": pd.to_datetime(["2024-03-04 14:31", "2024-03-04 15:10", "2024-07-01 13:45",
                                     "2024-07-01 18:00", "2024-07-02 19:59", "2024-07-02 20:00"], utc=True),
        "ts_closed": pd.to_datetime(["2024-03-04 16:00", "2024-03-04 20:55", "2024-07-01 15:00",
                                     "2024-07-01 19:00", "2024-07-02 20:10", None], utc=True),
        "closing_order_id": ["O-3", "O-9", "O-3", "O-4", "O-7", None],
        "realized_return": [0.04, -0.02, 0.01, -0.02, 0.005, 0.0],
        "realized_pnl": ["400.00 USD", "-210.50 USD", "100.00 USD", "-200.00 USD", "50.25 USD", "0.00 USD"],
        "fold": [0, 0, 1, 1, 1, 1],
    })
    orders = pd.DataFrame({
        "fold": [0, 0, 1, 1, 1],
        "client_order_id": ["O-3", "O-9", "O-3", "O-4", "O-7"],
        "tags": ["TAKE_PROFIT", "FLATTEN", "HALT", "STOP_LOSS", ""],
    })
    return positions, orders


def test_each_closed_trade_gets_its_side_new_york_hour_and_exit_reason_from_its_closing_order():
    trades = trade_table(*positions_and_orders())
    assert trades["symbol"].tolist() == ["AAA", "BBB", "AAA", "BBB", "AAA"]
    assert trades["side"].tolist() == ["long", "short", "long", "long", "short"]
    assert trades["hour"].tolist() == [9, 10, 9, 14, 15]  # EST in March, EDT in July
    assert trades["exit_reason"].tolist() == ["target", "flatten", "halt", "stop", "unknown"]
    assert trades["pnl"].tolist() == [400.0, -210.5, 100.0, -200.0, 50.25]


def test_trade_cuts_count_win_rate_mean_return_and_pnl_per_group():
    trades = trade_table(*positions_and_orders())
    by_symbol = trade_cuts(trades, "symbol")
    assert by_symbol.loc["AAA"].tolist() == pytest.approx([3, 1.0, (0.04 + 0.01 + 0.005) / 3, 550.25])
    assert by_symbol.loc["BBB"].tolist() == pytest.approx([2, 0.0, -0.02, -410.5])
    by_side = trade_cuts(trades, "side")
    assert by_side.loc["long", "trades"] == 3 and by_side.loc["long", "win_rate"] == pytest.approx(2 / 3)
    by_exit = trade_cuts(trades, "exit_reason")
    assert set(by_exit.index) == {"target", "flatten", "halt", "stop", "unknown"}
    assert by_exit["trades"].sum() == 5 and by_exit.loc["stop", "total_pnl"] == -200.0
    assert trade_cuts(trades, "hour").loc[9, "trades"] == 2
