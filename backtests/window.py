"""One walk-forward test window through NautilusTrader's BacktestNode, in its own process.

NautilusTrader 1.221 leaks 30-60 MB per in-process run, so every window runs in a fresh
worker process (``max_tasks_per_child=1``) and hands back only file paths and a summary.
"""

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from nautilus_trader.backtest.config import ImportableFeeModelConfig, ImportableFillModelConfig
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.config import (
    BacktestDataConfig,
    BacktestEngineConfig,
    BacktestRunConfig,
    BacktestVenueConfig,
    ImportableStrategyConfig,
    LoggingConfig,
)
from nautilus_trader.model.data import Bar, CustomData, DataType
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.persistence.catalog.types import CatalogDataResult

from catalog.instruments import BAR_SPEC, VENUE
from catalog.store import MarketCatalog
from strategies.records import INTENT_COLUMNS, creation_key, order_intent
from strategies.risk import install_trading_state_endpoint
from strategies.signals import MLSignal, signals_from_table

SIGNAL_CLIENT = "SEXTANT-SIGNALS"


class WindowCrashedError(RuntimeError):
    """A backtest worker process ended abruptly (e.g. a panic inside the engine)."""


@dataclass(frozen=True)
class VenueSpec:
    starting_cash: float
    commission_per_share: float
    min_commission: float
    slippage_probability: float
    seed: int


@dataclass(frozen=True)
class WindowSpec:
    """Everything a worker process needs; plain values so it pickles cheaply."""

    name: str
    catalog_path: str
    signal_catalog_path: str | None
    instrument_ids: tuple[str, ...]
    start_ns: int
    end_ns: int
    strategy: dict
    venue: VenueSpec
    out_dir: str
    strategy_path: str = "strategies.ensemble:EnsembleStrategy"
    config_path: str = "strategies.ensemble:EnsembleStrategyConfig"
    log_level: str = "ERROR"


@dataclass
class WindowResult:
    name: str
    iterations: int
    elapsed_s: float
    orders_path: str
    fills_path: str
    positions_path: str
    account_path: str
    final_balance: float


class SignalReplayNode(BacktestNode):
    """BacktestNode that loads MLSignal rows column-wise.

    The stock loader wraps every custom-data row in a CustomData with a freshly built
    DataType (about 10 us a row, a third of a window's run time); the rows here share one.
    """

    @classmethod
    def load_data_config(cls, config: BacktestDataConfig, start=None, end=None) -> CatalogDataResult:
        if config.data_type is not MLSignal:
            return super().load_data_config(config, start, end)
        store = MarketCatalog(config.catalog_path)
        table = store.read_table(MLSignal, config.instrument_ids, config.start_time_nanos, config.end_time_nanos)
        signals = signals_from_table(table.sort_by("ts_init")) if table.num_rows else []
        data_type = DataType(MLSignal)
        return CatalogDataResult(
            data_cls=MLSignal,
            data=[CustomData(data_type, signal) for signal in signals],
            instruments=store.nautilus.instruments(instrument_ids=config.instrument_ids),
            client_id=ClientId(config.client_id),
        )


def run_config(spec: WindowSpec) -> BacktestRunConfig:
    window = {"instrument_ids": list(spec.instrument_ids), "start_time": spec.start_ns, "end_time": spec.end_ns}
    # Bars are listed before signals so that, at equal timestamps, a bar reaches the strategy
    # before the signal computed from it.
    data = [BacktestDataConfig(catalog_path=spec.catalog_path, data_cls=Bar,
                               bar_spec=BAR_SPEC.removesuffix("-EXTERNAL"), **window)]
    if spec.signal_catalog_path is not None:
        data.append(BacktestDataConfig(catalog_path=spec.signal_catalog_path, client_id=SIGNAL_CLIENT,
                                       data_cls="strategies.signals:MLSignal", **window))
    venue = BacktestVenueConfig(
        name=str(VENUE),
        oms_type="NETTING",
        account_type="MARGIN",
        base_currency="USD",
        starting_balances=[f"{spec.venue.starting_cash:.2f} USD"],
        bar_adaptive_high_low_ordering=True,
        fee_model=ImportableFeeModelConfig(
            fee_model_path="backtests.costs:PerShareFeeModel",
            config_path="backtests.costs:PerShareFeeModelConfig",
            config={"per_share": spec.venue.commission_per_share, "minimum": spec.venue.min_commission},
        ),
        fill_model=ImportableFillModelConfig(
            fill_model_path="backtests.costs:FullLiquidityFillModel",
            config_path="nautilus_trader.backtest.config:FillModelConfig",
            config={"prob_slippage": spec.venue.slippage_probability, "random_seed": spec.venue.seed},
        ),
    )
    engine = BacktestEngineConfig(
        strategies=[
            ImportableStrategyConfig(
                strategy_path=spec.strategy_path,
                config_path=spec.config_path,
                config=spec.strategy,
            )
        ],
        logging=LoggingConfig(log_level=spec.log_level, bypass_logging=spec.log_level == "OFF"),
        run_analysis=False,
    )
    return BacktestRunConfig(
        engine=engine,
        venues=[venue],
        data=data,
        dispose_on_completion=False,
        raise_exception=True,
    )


def run_window(spec: WindowSpec) -> WindowResult:
    """Run one window in this process and write fills/positions/account as Parquet."""
    config = run_config(spec)
    node = SignalReplayNode(configs=[config])
    node.build()
    engine = node.get_engine(config.id)
    install_trading_state_endpoint(engine.kernel.msgbus, engine.kernel.risk_engine)
    started = time.perf_counter()
    node.run()
    elapsed = time.perf_counter() - started
    out = Path(spec.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trader = engine.trader
    orders = sorted(engine.cache.orders(), key=creation_key)
    orders_path = out / "orders.parquet"
    pd.DataFrame([order_intent(o) for o in orders], columns=INTENT_COLUMNS).to_parquet(orders_path)
    reports = {
        "fills": trader.generate_order_fills_report(),
        "positions": trader.generate_positions_report(),
        "account": trader.generate_account_report(VENUE),
    }
    paths = {}
    for kind, frame in reports.items():
        path = out / f"{kind}.parquet"
        _to_parquet(frame, path)
        paths[kind] = str(path)
    account = engine.cache.account_for_venue(VENUE)
    final_balance = float(account.balance_total().as_double()) if account else spec.venue.starting_cash
    iterations = engine.iteration
    node.dispose()
    return WindowResult(
        name=spec.name,
        iterations=iterations,
        elapsed_s=elapsed,
        orders_path=str(orders_path),
        fills_path=paths["fills"],
        positions_path=paths["positions"],
        account_path=paths["account"],
        final_balance=final_balance,
    )


def run_windows(specs: list[WindowSpec], workers: int = 1, on_done=None) -> list[WindowResult]:
    """Each window in a fresh process; ``on_done(result)`` is called as windows finish."""
    results: dict[str, WindowResult] = {}
    # spawn, not fork: a child forked after torch or LightGBM started OpenMP threads can hang
    # (libgomp is not fork-safe).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, max_tasks_per_child=1, mp_context=context) as pool:
        futures = {pool.submit(run_window, spec): spec.name for spec in specs}
        for future in as_completed(futures):
            try:
                result = future.result()
            except BrokenProcessPool as e:
                raise WindowCrashedError(
                    f"backtest window {futures[future]!r} died without a Python error (the engine "
                    "aborted; its message is on stderr above)"
                ) from e
            results[result.name] = result
            if on_done:
                on_done(result)
    return [results[s.name] for s in specs]


def _to_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Reports hold mixed object columns (ids, Money strings); store them as strings."""
    frame = frame.copy()
    for col in frame.columns:
        if frame[col].dtype == object:
            frame[col] = frame[col].astype(str)
    frame.to_parquet(path)
