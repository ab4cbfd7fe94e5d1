"""The trade step of a walk-forward run: replay its stored signals under given strategy
settings, one BacktestNode per test window, and measure the result.

Nothing here fits or predicts: the models' probabilities are the MLSignal rows the train step
stored, so trading a run again with other weights, thresholds or risk rules (a tuning trial)
costs the backtests and nothing else, and trading it with the run's own settings reproduces
the run. Each window starts from the same capital with the same fill seed as in the run;
their equity is chained in fold order.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from backtests.config import ConfigError
from backtests.metrics import chain_equity, daily_equity, daily_returns, trading_metrics
from backtests.trained import TrainedRun, ny_date
from backtests.window import VenueSpec, WindowResult, WindowSpec, run_windows
from catalog.instruments import instrument_id
from catalog.sessions import trading_sessions
from catalog.store import MarketCatalog
from models.splits import Fold
from strategies.settings import StrategySettings
from strategies.signals import MLSignal


@dataclass(frozen=True)
class TradeResult:
    """``trading``: the run's trading metrics (after costs); ``folds``: per traded fold its
    index, return and closed trades; ``daily_returns``: every traded session's return by
    date (the series a Sharpe ratio and the overfitting statistics are computed from);
    ``equity``: the chained equity curve."""

    trading: dict[str, float]
    folds: list[dict]
    daily_returns: pd.Series
    equity: pd.Series
    engine_events: int
    backtest_seconds: float


def trade(
    run: TrainedRun,
    settings: StrategySettings,
    out_dir: Path,
    folds: Sequence[int] | None = None,
    workers: int = 1,
    on_window_done: Callable[[WindowResult], None] | None = None,
) -> TradeResult:
    """Backtest ``run``'s stored signals of ``folds`` (indices; default every fold) under
    ``settings``; engine reports go to ``out_dir`` (windows/, fills.parquet,
    positions.parquet). Raises ConfigError when ``settings`` weigh other models than the
    signals carry."""
    if set(settings.weights) != set(run.models):
        raise ConfigError(f"strategy weights {sorted(settings.weights)} must weigh exactly the models the run "
                          f"{run.run_dir} trained: {sorted(run.models)}")
    if settings.risk.stop_volatility_multiple is not None and "volatility" not in MarketCatalog(
            run.signal_catalog_path).common_columns(MLSignal):
        raise ConfigError(f"'strategy.risk.stop_volatility_multiple' sizes stops from the signals' volatility, but "
                          f"the run {run.run_dir} was trained before signals carried one: retrain it, or "
                          "trade it with the fixed stop_loss")
    chosen = _chosen_folds(run, folds)
    specs = [window_spec(run, fold, settings, out_dir) for fold in chosen]
    windows = run_windows(specs, workers=workers, on_done=on_window_done)
    return measure(run, chosen, windows, Path(out_dir))


def _chosen_folds(run: TrainedRun, indices: Sequence[int] | None) -> list[Fold]:
    if indices is None:
        return list(run.folds)
    by_index = {f.index: f for f in run.folds}
    unknown = sorted(set(indices) - set(by_index))
    if unknown or not indices:
        raise ConfigError(f"folds {list(indices)}: the run {run.run_dir} has folds {sorted(by_index)}")
    return [by_index[i] for i in sorted(set(indices))]


def window_spec(run: TrainedRun, fold: Fold, settings: StrategySettings, out_dir: Path) -> WindowSpec:
    """The backtest of one fold's test window; ``trade`` and a tuning trial (which runs its
    windows one by one, to prune after each) build them here, so both trade identically."""
    ids = tuple(str(instrument_id(s)) for s in run.symbols)
    venue = run.config.venue
    return WindowSpec(
        name=f"fold-{fold.index}",
        catalog_path=str(run.catalog_path),
        signal_catalog_path=str(run.signal_catalog_path.resolve()),
        instrument_ids=ids,
        start_ns=fold.test_start_ns,
        end_ns=fold.test_end_ns,
        strategy=settings.engine_fields(list(ids)),
        venue=VenueSpec(
            starting_cash=venue.starting_cash,
            commission_per_share=venue.commission_per_share,
            min_commission=venue.min_commission,
            slippage_probability=venue.slippage_probability,
            seed=run.config.seed + fold.index,
        ),
        out_dir=str(Path(out_dir) / "windows" / f"fold-{fold.index}"),
    )


def measure(run: TrainedRun, folds: list[Fold], windows: list[WindowResult], out_dir: Path) -> TradeResult:
    """The result of ``folds``' backtested ``windows`` (in fold order), however they were run."""
    accounts = [pd.read_parquet(w.account_path) for w in windows]
    positions = [pd.read_parquet(w.positions_path).assign(fold=f.index) for w, f in zip(windows, folds)]
    fills = [pd.read_parquet(w.fills_path).assign(fold=f.index) for w, f in zip(windows, folds)]
    all_positions = pd.concat(positions, ignore_index=True) if positions else pd.DataFrame()
    pd.concat(fills, ignore_index=True).to_parquet(out_dir / "fills.parquet")
    all_positions.to_parquet(out_dir / "positions.parquet")

    cash = run.config.venue.starting_cash
    equity = chain_equity(accounts, cash)
    sessions = trading_sessions(ny_date(folds[0].test_start_ns), ny_date(folds[-1].test_end_ns - 1))
    test_sessions = sessions[[any(f.test_start_ns <= c.value and o.value < f.test_end_ns for f in folds)
                              for o, c in zip(sessions["open"], sessions["close"])]]
    session_seconds = float((test_sessions["close"] - test_sessions["open"]).dt.total_seconds().sum())
    daily = daily_equity(equity, pd.DatetimeIndex(test_sessions.index))
    per_fold = [
        {
            "fold": f.index,
            "return": float(acct["total"].astype(float).iloc[-1] / cash - 1.0) if not acct.empty else 0.0,
            "trades": int(pos["ts_closed"].notna().sum()) if not pos.empty else 0,
        }
        for f, acct, pos in zip(folds, accounts, positions)
    ]
    return TradeResult(
        trading=trading_metrics(equity, daily, all_positions, cash, session_seconds),
        folds=per_fold,
        daily_returns=daily_returns(daily, cash),
        equity=equity,
        engine_events=int(sum(w.iterations for w in windows)),
        backtest_seconds=sum(w.elapsed_s for w in windows),
    )
