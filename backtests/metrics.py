"""Performance and model-quality metrics of a walk-forward run.

Trading metrics come from the engine's own reports (account states and positions), chained
across test windows: every window starts with the same capital, and the run's equity compounds
the windows' growth in order. The strategy is flat every night, so the end-of-day balance is
the day's equity and daily returns are exact.
"""

import math

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score

TRADING_DAYS = 252


def chain_equity(account_frames: list[pd.DataFrame], starting_cash: float) -> pd.Series:
    """One equity series across windows from each window's account report ('total')."""
    pieces = []
    level = 1.0
    for frame in account_frames:
        if frame.empty:
            continue
        total = frame["total"].astype(float) / starting_cash
        pieces.append(total * level)
        level *= float(total.iloc[-1])
    if not pieces:
        return pd.Series(dtype=float)
    equity = pd.concat(pieces) * starting_cash
    equity.index = pd.DatetimeIndex(equity.index)
    return equity


def daily_equity(equity: pd.Series, sessions: pd.DatetimeIndex) -> pd.Series:
    """End-of-session equity for every test session (days without fills carry forward)."""
    by_day = equity.groupby(equity.index.tz_convert("America/New_York").date).last()
    by_day.index = pd.DatetimeIndex(by_day.index)
    return by_day.reindex(sessions).ffill()


def trading_metrics(
    equity: pd.Series,
    daily: pd.Series,
    positions: pd.DataFrame,
    starting_cash: float,
    session_seconds: float,
) -> dict[str, float]:
    closed = positions[positions["ts_closed"].notna()] if not positions.empty else positions
    pnl = _money(closed["realized_pnl"]) if not closed.empty else np.array([])
    returns = closed["realized_return"].astype(float).to_numpy() if not closed.empty else np.array([])
    start_equity = starting_cash
    daily_ret = daily_returns(daily, start_equity).to_numpy()
    final = float(daily.dropna().iloc[-1]) if daily.notna().any() else start_equity
    n_days = max(len(daily_ret), 1)
    wins, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    return {
        "start_equity": start_equity,
        "final_equity": final,
        "total_return": final / start_equity - 1.0,
        "cagr": (final / start_equity) ** (TRADING_DAYS / n_days) - 1.0 if final > 0 else -1.0,
        "sharpe": _ratio(daily_ret.mean(), daily_ret.std(ddof=1)) * math.sqrt(TRADING_DAYS),
        "sortino": _ratio(daily_ret.mean(), _downside(daily_ret)) * math.sqrt(TRADING_DAYS),
        "max_drawdown": max_drawdown(pd.concat([pd.Series([start_equity]), equity.reset_index(drop=True)])),
        "win_rate": float((pnl > 0).mean()) if len(pnl) else 0.0,
        "profit_factor": float(wins / losses) if losses > 0 else (math.inf if wins > 0 else 0.0),
        "avg_return_per_trade": float(returns.mean()) if len(returns) else 0.0,
        "trades": len(pnl),
        "exposure": exposure(closed, session_seconds),
        "test_sessions": len(daily_ret),
    }


def daily_returns(daily: pd.Series, starting_cash: float) -> pd.Series:
    """Each test session's return, by date, from the end-of-session equity (the first session's
    against the starting cash): the series a Sharpe ratio, a study's objective and its
    overfitting statistics are computed from."""
    days = daily.dropna()
    chained = pd.concat([pd.Series([starting_cash]), days.reset_index(drop=True)]).pct_change()
    return pd.Series(chained.iloc[1:].to_numpy(), index=days.index, name="return")


def max_drawdown(equity: pd.Series) -> float:
    """Largest peak-to-trough fall, as a positive fraction (0.1 = 10%)."""
    if equity.empty:
        return 0.0
    values = equity.to_numpy(dtype=float)
    peaks = np.maximum.accumulate(values)
    return float(np.max(1.0 - values / peaks))


def drawdown_series(equity: pd.Series) -> pd.Series:
    return equity / equity.cummax() - 1.0


def exposure(positions: pd.DataFrame, session_seconds: float) -> float:
    """Share of regular-session time with at least one position open."""
    if positions.empty or session_seconds <= 0:
        return 0.0
    spans = sorted(
        zip(pd.to_datetime(positions["ts_opened"]).astype("int64"), pd.to_datetime(positions["ts_closed"]).astype("int64"))
    )
    covered, cur_start, cur_end = 0, None, None
    for start, end in spans:
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                covered += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None:
        covered += cur_end - cur_start
    return float(covered / 1e9 / session_seconds)


def classification_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Out-of-sample AUC and accuracy (threshold 0.5) over rows with a label."""
    mask = np.isfinite(y) & np.isfinite(p)
    y, p = y[mask], p[mask]
    if len(np.unique(y)) < 2:
        return {"auc": float("nan"), "accuracy": float("nan"), "rows": len(y)}
    return {
        "auc": float(roc_auc_score(y, p)),
        "accuracy": float(accuracy_score(y, p >= 0.5)),
        "rows": len(y),
    }


def _money(column: pd.Series) -> np.ndarray:
    """'157.74 USD' -> 157.74 (the engine reports Money as strings)."""
    return column.astype(str).str.split(" ").str[0].astype(float).to_numpy()


def _ratio(numerator: float, denominator: float) -> float:
    if not np.isfinite(denominator) or denominator <= 0:
        return 0.0
    return float(numerator / denominator)


def _downside(returns: np.ndarray) -> float:
    if len(returns) < 2:
        return 0.0
    return float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))
