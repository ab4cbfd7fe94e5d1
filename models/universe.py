"""Universe screen: the stocks a strategy would have chosen to trade in each week.

The brief's selection criteria over daily bars: average daily volume (shares), ATR as a
percentage of price, beta to the market, and a price band. Refreshed weekly in walk-forward
time: the screen for the week starting Monday d reads only the daily bars of sessions before d
(the last ``lookback_days`` of them), so a backtest trades each week the universe it could have
known then, not today's. A stock with fewer than ``lookback_days`` sessions before d (newly
listed, or missing data) is not selected: its statistics would rest on too little.

The market proxy is an index ETF when the catalog holds one (``market_proxy``, SPY by
default), otherwise the equal-weight mean of the universe's daily returns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Annotated

import msgspec
import numpy as np
import pandas as pd
from msgspec import Meta

from models.features import ny_day

NonNegative = Annotated[float, Meta(ge=0.0)]
SCREEN_COLUMNS = ["week", "symbol", "sessions", "avg_volume", "atr_pct", "beta", "price", "selected"]


class ScreenRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The thresholds (inclusive). Defaults are permissive where the brief gives no number:
    at least 1M shares a day, ATR 1-8% of price, beta 0.5-2.5, price 5-1000 USD."""

    lookback_days: Annotated[int, Meta(ge=5, le=250)] = 20
    min_avg_volume: NonNegative = 1_000_000.0
    min_atr_pct: NonNegative = 0.01
    max_atr_pct: NonNegative = 0.08
    min_beta: float = 0.5
    max_beta: float = 2.5
    min_price: NonNegative = 5.0
    max_price: NonNegative = 1000.0
    market_proxy: str = "SPY"

    def __post_init__(self) -> None:
        for low, high in (("min_atr_pct", "max_atr_pct"), ("min_beta", "max_beta"), ("min_price", "max_price")):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"'{low}' ({getattr(self, low)}) must not exceed '{high}' ({getattr(self, high)})")


def daily_bars(ts_ns: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
               volume: np.ndarray) -> pd.DataFrame:
    """Minute bars -> one row per New York date: high, low, close (last), volume (sum)."""
    day = pd.to_datetime(ny_day(np.asarray(ts_ns, dtype=np.int64)), unit="D").date
    frame = pd.DataFrame({"day": day, "high": high, "low": low, "close": close, "volume": volume})
    return frame.groupby("day", sort=True).agg(high=("high", "max"), low=("low", "min"),
                                               close=("close", "last"), volume=("volume", "sum"))


def week_start(day: date) -> date:
    """The Monday of ``day``'s week: the date the week's screen is computed for."""
    return day - timedelta(days=day.weekday())


def screen(daily: Mapping[str, pd.DataFrame], rule: ScreenRule, weeks: list[date]) -> pd.DataFrame:
    """For each Monday in ``weeks``, every symbol's statistics over its last
    ``rule.lookback_days`` sessions before that Monday and whether it passes (SCREEN_COLUMNS).
    ``daily``: symbol -> ``daily_bars`` frame (the proxy ETF among them, when present)."""
    proxy = _proxy_returns(daily, rule.market_proxy)
    rows = []
    for week in weeks:
        for symbol, bars in daily.items():
            rows.append({"week": week, "symbol": symbol, **_statistics(bars, proxy, week, rule)})
    frame = pd.DataFrame(rows, columns=SCREEN_COLUMNS[:-1])
    frame["selected"] = _passes(frame, rule)
    return frame


def _statistics(bars: pd.DataFrame, proxy: pd.Series, week: date, rule: ScreenRule) -> dict:
    past = bars[bars.index < week].tail(rule.lookback_days)
    if len(past) < rule.lookback_days:
        return {"sessions": len(past), "avg_volume": math.nan, "atr_pct": math.nan, "beta": math.nan,
                "price": math.nan}
    prev_close = past["close"].shift(1)
    true_range = np.maximum(past["high"] - past["low"],
                            np.maximum((past["high"] - prev_close).abs(), (past["low"] - prev_close).abs()))
    returns = np.log(past["close"]).diff()
    market = proxy.reindex(returns.index)
    both = returns.notna() & market.notna()
    var = float(market[both].var())
    beta = float(returns[both].cov(market[both]) / var) if both.sum() > 2 and var > 0 else math.nan
    price = float(past["close"].iloc[-1])
    return {
        "sessions": len(past),
        "avg_volume": float(past["volume"].mean()),
        "atr_pct": float(true_range.iloc[1:].mean() / price),
        "beta": beta,
        "price": price,
    }


def _passes(frame: pd.DataFrame, rule: ScreenRule) -> np.ndarray:
    """NaN statistics fail every comparison, so a stock with too little history is out."""
    return (
        (frame["avg_volume"] >= rule.min_avg_volume)
        & frame["atr_pct"].between(rule.min_atr_pct, rule.max_atr_pct)
        & frame["beta"].between(rule.min_beta, rule.max_beta)
        & frame["price"].between(rule.min_price, rule.max_price)
    ).to_numpy()


def _proxy_returns(daily: Mapping[str, pd.DataFrame], proxy: str) -> pd.Series:
    """Daily log returns of the proxy ETF, else the equal-weight mean over every symbol."""
    if proxy in daily:
        return np.log(daily[proxy]["close"]).diff()
    returns = pd.concat({s: np.log(bars["close"]).diff() for s, bars in daily.items()}, axis=1)
    return returns.mean(axis=1, skipna=True)
