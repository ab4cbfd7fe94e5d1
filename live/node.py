"""The TradingNode: Polygon market data + Alpaca execution + SignalActor + EnsembleStrategy.

The actor and strategy are the classes the backtest runs, configured from the same fields;
only the edges (where bars come from, where orders go) are live. The node reconciles with
Alpaca at start-up (open orders, fills, positions) and its strategy cancels working orders
and closes positions when it stops, so a shutdown leaves no orphan orders.

``NodeThread`` is the one way to run the node (``sextant live`` and rehearsals alike); its
start and stop are this module's, not NautilusTrader's defaults:
- entering fails fast (``NodeStartError``) when a client cannot connect (a rejected key, no
  network) instead of logging ``check_connected() == False`` after the connect timeout and
  reporting RUNNING with nothing connected;
- Ctrl-C and SIGTERM raise KeyboardInterrupt in the caller, whose leaving the context runs
  ``SextantNode.stop_async``: strategies before actors (NautilusTrader stops actors first,
  so a failing actor, the journal, would abort the stop before any strategy cancelled or
  flattened, and the journal would miss the closing orders).
"""

import asyncio
import gc
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Self

import msgspec
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import (
    InstrumentProviderConfig,
    LiveExecEngineConfig,
    LoggingConfig,
    TradingNodeConfig,
)
from nautilus_trader.live.node import TradingNode

from adapters.alpaca.common import ALPACA
from adapters.alpaca.config import AlpacaExecClientConfig
from adapters.alpaca.factories import AlpacaLiveExecClientFactory
from adapters.polygon.common import POLYGON
from adapters.polygon.config import PolygonDataClientConfig
from adapters.polygon.factories import PolygonLiveDataClientFactory
from catalog.instruments import instrument_id
from live.settings import LiveConfig
from strategies.actor import SignalActor, SignalActorConfig
from strategies.ensemble import (
    DAY_START_TOPIC,
    EXECUTION_STATUS_TOPIC,
    EnsembleStrategy,
    EnsembleStrategyConfig,
)
from strategies.risk import install_trading_state_endpoint

_CALL_TIMEOUT_SECS = 60.0
_POLL_SECS = 0.05
FLATTEN_TIMEOUT_SECS = 30.0


class NodeStartError(RuntimeError):
    """The node did not start trading: a client did not connect (the message names it and
    why), reconciliation failed, or the portfolio did not initialise."""


def node_config(
    config: LiveConfig,
    polygon: PolygonDataClientConfig | None = None,
    alpaca: AlpacaExecClientConfig | None = None,
    log_level: str = "INFO",
    reconciliation_lookback_mins: int | None = 1440,
) -> TradingNodeConfig:
    """The node's config; ``polygon``/``alpaca`` override the endpoints from the file (the
    rehearsal points them at the sandboxes, whose simulated day a wall-clock lookback would
    miss: it passes ``reconciliation_lookback_mins=None``)."""
    ids = frozenset(str(instrument_id(s)) for s in config.universe)
    polygon = polygon or PolygonDataClientConfig(
        base_url=config.polygon.base_url,
        ws_feed=config.polygon.ws_feed,
        secure=config.polygon.secure,
        stale_after_secs=config.polygon.stale_after_secs,
        instrument_provider=InstrumentProviderConfig(load_ids=ids),
    )
    alpaca = alpaca or AlpacaExecClientConfig(
        base_url=config.alpaca.base_url,
        stream_url=config.alpaca.stream_url,
        paper=config.mode == "paper",
        instrument_provider=InstrumentProviderConfig(load_ids=ids),
        instrument_sectors=dict(config.sectors) or None,
    )
    # the strategy refuses entries while the execution client cannot see order updates, and
    # counts the day's loss from the broker's previous close (across a restart too)
    alpaca = msgspec.structs.replace(alpaca, status_topic=EXECUTION_STATUS_TOPIC, day_start_topic=DAY_START_TOPIC)
    return TradingNodeConfig(
        trader_id=config.trader_id,
        logging=LoggingConfig(log_level=log_level),
        data_clients={POLYGON: polygon},
        exec_clients={ALPACA: alpaca},
        exec_engine=LiveExecEngineConfig(
            reconciliation=True, reconciliation_lookback_mins=reconciliation_lookback_mins
        ),
        timeout_connection=30.0,
        timeout_reconciliation=30.0,
        timeout_disconnection=10.0,
        timeout_post_stop=2.0,
    )


def build_node(
    config: LiveConfig,
    node_cfg: TradingNodeConfig,
    *,
    warmup_as_of: str | None = None,
    extra_actors: Sequence[Actor] = (),
    loop: asyncio.AbstractEventLoop | None = None,
    traded: Sequence[str] | None = None,
) -> TradingNode:
    """Build (not start) the node with the SignalActor (newest registry models) and the
    EnsembleStrategy; ``extra_actors`` (the journal, a rehearsal pacer) come first. ``traded``:
    the symbols the week's universe screen passed (None: the whole universe)."""
    ids = [str(instrument_id(s)) for s in config.universe]
    node = SextantNode(config=node_cfg, loop=loop)
    for actor in extra_actors:
        node.trader.add_actor(actor)
    node.trader.add_actor(SignalActor(SignalActorConfig(
        instrument_ids=ids,
        model_dirs={name: str(path) for name, path in config.model_dirs().items()},
        warmup_sessions=config.warmup_sessions,
        warmup_as_of=warmup_as_of,
        close_wait_ms=config.close_wait_ms,
        traded=None if traded is None else list(traded),
        **config.outlook_fields(),
    )))
    # Live, the journal records what the strategy did with every signal (a backtest need not).
    strategy = {**config.strategy_settings(ids), "publish_decisions": True}
    node.trader.add_strategy(EnsembleStrategy(EnsembleStrategyConfig.parse(msgspec.json.encode(strategy))))
    node.add_data_client_factory(POLYGON, PolygonLiveDataClientFactory)
    node.add_exec_client_factory(ALPACA, AlpacaLiveExecClientFactory)
    node.build()
    install_trading_state_endpoint(node.kernel.msgbus, node.kernel.risk_engine)
    return node


class SextantNode(TradingNode):
    """A TradingNode whose stop always cancels, flattens and disconnects."""

    async def stop_async(self) -> None:
        """Strategies first (each cancels its orders and flattens in ``on_stop``), then wait
        until those orders are settled at the venue (bounded), then NautilusTrader's stop
        (actors such as the journal, clients, engines)."""
        strategies = [s for s in self.trader.strategies() if s.is_running]
        for strategy in strategies:
            try:
                strategy.stop()
            except Exception as exc:  # isolation: one strategy's failure must not keep the node up
                log = self.kernel.logger
                log.exception(f"{strategy.id} failed to stop; stopping the node anyway", exc)  # noqa: TRY401
        await self._await_settled(strategies)
        await super().stop_async()

    async def _await_settled(self, strategies: list) -> None:
        cache = self.cache
        ids = [s.id for s in strategies]
        deadline = time.monotonic() + FLATTEN_TIMEOUT_SECS
        while any(cache.orders_open_count(strategy_id=i) or cache.orders_inflight_count(strategy_id=i)
                  or cache.positions_open_count(strategy_id=i) for i in ids):
            if time.monotonic() > deadline:
                self.kernel.logger.error(
                    f"stop: orders or positions still open after {FLATTEN_TIMEOUT_SECS:g}s; check the broker")
                return
            await asyncio.sleep(_POLL_SECS)


def _clients(node: TradingNode) -> list:
    return [*node.kernel.data_engine._clients.values(), *node.kernel.exec_engine._clients.values()]


def _connect_failures(node: TradingNode) -> list[str]:
    """Clients whose connect failed for good, as "client: error". Sextant's clients keep the
    exception in ``connect_error`` (NautilusTrader only logs it and waits out its timeout)."""
    return [f"{c.id}: {c.connect_error}" for c in _clients(node) if getattr(c, "connect_error", None) is not None]


async def _start_node(node: TradingNode) -> None:
    """Connect, reconcile and start the trader; ``NodeStartError`` (after disconnecting what
    did connect) as soon as a client's connect fails, or when NautilusTrader gives up on
    connecting, reconciling or initialising the portfolio within the node's timeouts."""
    starting = asyncio.ensure_future(node.kernel.start_async())
    failures: list[str] = []
    while not starting.done() and not failures:
        await asyncio.wait({starting}, timeout=_POLL_SECS)
        failures = _connect_failures(node)
    if not starting.done():
        starting.cancel()
        await asyncio.wait({starting})
    elif not failures:
        starting.result()  # a programming error inside the kernel keeps its traceback
    if node.trader.is_running:
        return
    unconnected = [str(c.id) for c in _clients(node) if not c.is_connected]
    await node.stop_async()
    if failures:
        raise NodeStartError("could not connect: " + "; ".join(failures))
    if unconnected:
        raise NodeStartError(
            f"not connected within the node's connect timeout: {', '.join(unconnected)} "
            "(network, endpoint or key; see the log above)")
    raise NodeStartError("the node connected but did not start trading (reconciliation or portfolio; see the log above)")


async def _run_engines(node: TradingNode) -> None:
    """Until the node stops: its engines' queues (what ``TradingNode.run_async`` awaits once
    started)."""
    kernel = node.kernel
    await asyncio.gather(
        kernel.data_engine.get_cmd_queue_task(),
        kernel.data_engine.get_req_queue_task(),
        kernel.data_engine.get_res_queue_task(),
        kernel.data_engine.get_data_queue_task(),
        kernel.risk_engine.get_cmd_queue_task(),
        kernel.risk_engine.get_evt_queue_task(),
        kernel.exec_engine.get_cmd_queue_task(),
        kernel.exec_engine.get_evt_queue_task(),
    )


class NodeThread:
    """Runs a TradingNode on an event loop in a background thread, so the calling thread can
    drive sandboxes (a rehearsal) or wait for a signal. Entering returns once the node trades
    (``NodeStartError`` if it cannot). Ctrl-C raises KeyboardInterrupt in the calling thread
    (NautilusTrader would take SIGINT for the node's loop and leave the caller running);
    leaving the context stops the node (strategies cancel and flatten, see ``SextantNode``),
    with further Ctrl-Cs ignored until it has, then stops the loop and disposes the node."""

    def __init__(self, build: Callable[..., TradingNode], *args: Any, **kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sextant-node", daemon=True)
        self._build = lambda: build(*args, loop=self.loop, **kwargs)
        self.node: TradingNode | None = None
        self._running: Any = None

    def __enter__(self) -> Self:
        self._thread.start()
        try:
            self.node = self._build()
            self._restore_sigint()
            asyncio.run_coroutine_threadsafe(_start_node(self.node), self.loop).result()
        except BaseException:
            if self.node is not None and self.node.kernel.is_running():  # Ctrl-C while starting
                asyncio.run_coroutine_threadsafe(self.node.stop_async(), self.loop).result(_CALL_TIMEOUT_SECS)
            self._shutdown()
            raise
        self._running = asyncio.run_coroutine_threadsafe(_run_engines(self.node), self.loop)
        _freeze_heap()
        return self

    def __exit__(self, *exc: object) -> None:
        node = self.node
        assert node is not None
        guarded = _in_main_thread()
        if guarded:  # a second Ctrl-C must not cut the cancel/flatten short
            signal.signal(signal.SIGINT, _say_stopping)
            signal.signal(signal.SIGTERM, _say_stopping)
        try:
            asyncio.run_coroutine_threadsafe(node.stop_async(), self.loop).result(_CALL_TIMEOUT_SECS)
            self._running.result(_CALL_TIMEOUT_SECS)
        finally:
            self._shutdown()
            if guarded:
                signal.signal(signal.SIGINT, signal.default_int_handler)

    def _restore_sigint(self) -> None:
        """SIGINT and SIGTERM raise KeyboardInterrupt in the calling (main) thread, which
        leaves the context and so stops the node through ``__exit__``."""
        if not _in_main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.loop.remove_signal_handler(sig)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)

    def _shutdown(self) -> None:
        gc.unfreeze()  # what this node held can be collected again once it is gone
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(_CALL_TIMEOUT_SECS)
        if self.node is not None:
            self.node.dispose()
        if _in_main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def wait(self) -> None:
        """Block until the node stops by itself (its engines end) or Ctrl-C interrupts."""
        self._running.result()

    def stopped(self) -> bool:
        """The node stopped by itself (its engines ended) while the context is still open."""
        return self._running is not None and self._running.done()

    def call(self, fn: Any, timeout: float = _CALL_TIMEOUT_SECS) -> Any:
        """Run ``fn()`` on the node's loop thread and return its result."""

        async def invoke() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(invoke(), self.loop).result(timeout)


def _freeze_heap() -> None:
    """Keep the objects alive when the node starts trading (NautilusTrader, pandas, models,
    instruments) out of the cyclic collector while it runs: a full collection walks all of
    them and held the node's loop for 190-470 ms in the middle of a 50-order burst
    (`sextant bench --part live`); frozen, a collection only walks what was made since."""
    gc.collect()
    gc.freeze()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _say_stopping(_signum: int, _frame: object) -> None:
    print("stopping: cancelling orders and flattening; please wait", flush=True)
