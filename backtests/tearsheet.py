"""The numbers of a tear sheet: what a quant compares a strategy with and how they cut its trades.

Pure pandas over what a run already wrote (daily returns, the engine's positions report, the
strategy's order intents) plus the universe's session prices, so every figure can be checked
by hand on a small case (tests/backtests/test_tearsheet.py).

Buy-and-hold is measured on the strategy's own days: in each test window it buys every symbol
of the universe for equal dollars at the window's first session open and holds to each
session's close, and the windows are chained in fold order, as the strategy's equity is (each
window starts from the same capital). An index proxy (SPY, QQQ, IWM or DIA, when the catalog
has it) is held the same way alone.
"""

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from backtests.metrics import TRADING_DAYS

NY = "America/New_York"
INDEX_PROXIES = ("SPY", "QQQ", "IWM", "DIA")
ROLLING_DAYS = 21  # one trading month
# The closing order's tag -> the trade's exit reason (strategies/ensemble.py sets the last two).
EXIT_REASONS = {"STOP_LOSS": "stop", "TAKE_PROFIT": "target", "FLATTEN": "flatten", "HALT": "halt"}
UNKNOWN_EXIT = "unknown"  # a closing order without one of these tags (a run from before they existed)
TRADE_CUTS = ("symbol", "side", "hour", "exit_reason")


def session_prices(bars: pd.DataFrame) -> pd.DataFrame:
    """Each New York session's first open and last close of one symbol's bars (UTC index)."""
    day = bars.index.tz_convert(NY).date
    grouped = bars.groupby(day)
    prices = pd.DataFrame({"open": grouped["open"].first(), "close": grouped["close"].last()})
    prices.index = pd.DatetimeIndex(prices.index)
    return prices


def buy_and_hold_returns(prices: dict[str, pd.DataFrame], windows: Sequence[pd.DatetimeIndex]) -> pd.Series:
    """Daily returns of equal dollars in every symbol of ``prices`` (session open/close frames),
    bought at each window's first open and held to its last close, windows chained in order.

    A symbol without a price on a window's first session sits that window out; a missing close
    later in a window carries the previous one.
    """
    level, pieces = 1.0, []
    for sessions in windows:
        growth = []
        for frame in prices.values():
            frame = frame.reindex(sessions)
            if not np.isfinite(frame["open"].iloc[0]):
                continue
            growth.append(frame["close"].ffill() / frame["open"].iloc[0])
        if not growth:
            continue
        value = pd.concat(growth, axis=1).mean(axis=1) * level
        pieces.append(value)
        level = float(value.iloc[-1])
    if not pieces:
        return pd.Series(dtype=float)
    values = pd.concat([pd.Series([1.0]), *pieces])
    return values.pct_change().iloc[1:].set_axis(pd.DatetimeIndex(pd.concat(pieces).index))


def growth(daily_returns: pd.Series) -> pd.Series:
    """Growth of 1 from daily returns."""
    return (1.0 + daily_returns.fillna(0.0)).cumprod()


def monthly_returns(daily_returns: pd.Series) -> pd.DataFrame:
    """Compounded return of each calendar month: years as rows, months 1-12 as columns (NaN for
    months without a traded session)."""
    if daily_returns.empty:
        return pd.DataFrame(columns=range(1, 13), dtype=float)
    index = pd.DatetimeIndex(daily_returns.index)
    by_month = (1.0 + daily_returns).groupby([index.year, index.month]).prod() - 1.0
    table = by_month.unstack()
    return table.reindex(columns=range(1, 13)).rename_axis(index="year", columns="month")


def rolling_sharpe(daily_returns: pd.Series, window: int = ROLLING_DAYS) -> pd.Series:
    """Annualised Sharpe of the last ``window`` sessions (NaN until there are that many; 0 for a
    flat stretch, as the run's own Sharpe)."""
    rolling = daily_returns.rolling(window)
    mean, std = rolling.mean(), rolling.std(ddof=1)
    sharpe = (mean / std.where(std > 0)).fillna(0.0).where(mean.notna())
    return sharpe * math.sqrt(TRADING_DAYS)


def rolling_volatility(daily_returns: pd.Series, window: int = ROLLING_DAYS) -> pd.Series:
    """Annualised standard deviation of the last ``window`` sessions' returns."""
    return daily_returns.rolling(window).std(ddof=1) * math.sqrt(TRADING_DAYS)


def trade_table(positions: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """One row per closed trade: fold, symbol, side (long/short), opening hour in New York,
    exit reason (from the closing order's tag), return and P&L (USD, after commissions).

    ``positions``: the engine's positions report with a ``fold`` column (run_dir/positions.parquet);
    ``orders``: the strategy's order intents with a ``fold`` column (windows/fold-*/orders.parquet).
    Client order ids repeat across windows, so orders are matched within their fold.
    """
    columns = ["fold", "symbol", "side", "hour", "exit_reason", "return", "pnl"]
    if positions.empty or "ts_closed" not in positions:
        return pd.DataFrame(columns=columns)
    closed = positions[positions["ts_closed"].notna()]
    tags = {(int(f), cid): t for f, cid, t in zip(orders["fold"], orders["client_order_id"], orders["tags"])}
    reasons = [
        _exit_reason(tags.get((int(fold), cid), ""))
        for fold, cid in zip(closed["fold"], closed["closing_order_id"])
    ]
    opened = pd.to_datetime(closed["ts_opened"], utc=True).dt.tz_convert(NY)
    return pd.DataFrame({
        "fold": closed["fold"].astype(int).to_numpy(),
        "symbol": closed["instrument_id"].astype(str).str.rsplit(".", n=1).str[0].to_numpy(),
        "side": np.where(closed["entry"].astype(str) == "BUY", "long", "short"),
        "hour": opened.dt.hour.to_numpy(),
        "exit_reason": reasons,
        "return": closed["realized_return"].astype(float).to_numpy(),
        "pnl": closed["realized_pnl"].astype(str).str.split(" ").str[0].astype(float).to_numpy(),
    }, columns=columns)


def trade_cuts(trades: pd.DataFrame, by: str) -> pd.DataFrame:
    """Trades grouped by ``by`` (a trade_table column): count, win rate, mean return, total P&L."""
    grouped = trades.groupby(by)
    return pd.DataFrame({
        "trades": grouped.size(),
        "win_rate": grouped["pnl"].apply(lambda pnl: float((pnl > 0).mean())),
        "avg_return": grouped["return"].mean(),
        "total_pnl": grouped["pnl"].sum(),
    })


def _exit_reason(tags: str) -> str:
    for tag in tags.split(","):
        if tag in EXIT_REASONS:
            return EXIT_REASONS[tag]
    return UNKNOWN_EXIT
