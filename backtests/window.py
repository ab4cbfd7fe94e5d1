"""One walk-forward test window through NautilusTrader's BacktestNode, in its own process.

NautilusTrader 1.221 leaks 30-60 MB per in-process run, so every window runs in a fresh
process of its own and hands back only file paths and a summary.
"""

import multiprocessing
import multiprocessing.connection
import time
import traceback
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
    """Each window in a fresh process, at most ``workers`` at a time; ``on_done(result)`` is
    called as windows finish. A window's exception is raised here with its traceback.

    One process per window, started when the window starts, rather than a ProcessPoolExecutor
    with ``max_tasks_per_child=1``: that pool starts a replacement process as soon as one exits,
    whether or not work is left, so every pool paid one process start (NautilusTrader's imports,
    seconds of CPU) for nothing, and a tuning trial, which runs its windows one by one to prune
    between them, paid it once per window.
    """
    # spawn, not fork: a child forked after torch or LightGBM started OpenMP threads can hang
    # (libgomp is not fork-safe).
    context = multiprocessing.get_context("spawn")
    results: dict[str, WindowResult] = {}
    waiting = list(specs)
    running: dict[multiprocessing.connection.Connection, tuple[multiprocessing.process.BaseProcess, WindowSpec]] = {}
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                spec = waiting.pop(0)
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(target=_window_process, args=(spec, sender), name=f"sextant-{spec.name}")
                process.start()
                sender.close()  # the child holds the only sending end: its death reads as EOF here
                running[receiver] = (process, spec)
            for receiver in multiprocessing.connection.wait(list(running)):
                process, spec = running.pop(receiver)
                outcome = _receive(receiver)
                process.join()
                if outcome is None:
                    raise WindowCrashedError(
                        f"backtest window {spec.name!r} died without a Python error (exit code "
                        f"{process.exitcode}: the engine aborted; its message is on stderr above)")
                if isinstance(outcome, _WindowFailure):
                    raise outcome.error from _ChildTraceback(outcome.traceback)
                results[outcome.name] = outcome
                if on_done:
                    on_done(outcome)
    finally:
        for process, _ in running.values():  # another window failed: do not leave these behind
            process.terminate()
            process.join()
    return [results[s.name] for s in specs]


@dataclass(frozen=True)
class _WindowFailure:
    error: BaseException
    traceback: str


class _ChildTraceback(Exception):
    """The traceback of an exception raised in a window's process, shown as its cause."""

    def __str__(self) -> str:
        return "\n" + self.args[0]


def _window_process(spec: WindowSpec, sender: multiprocessing.connection.Connection) -> None:
    try:
        result = run_window(spec)
    except Exception as e:  # handed to the parent, which raises it; the child still fails
        sender.send(_WindowFailure(e, traceback.format_exc()))
        raise
    sender.send(result)


def _receive(receiver: multiprocessing.connection.Connection) -> "WindowResult | _WindowFailure | None":
    try:
        return receiver.recv()
    except EOFError:
        return None
    finally:
        receiver.close()


def _to_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Reports hold mixed object columns (ids, Money strings); store them as strings."""
    frame = frame.copy()
    for col in frame.columns:
        if frame[col].dtype == object:
            frame[col] = frame[col].astype(str)
    frame.to_parquet(path)
