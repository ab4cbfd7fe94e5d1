"""The TradingNode: Polygon market data + Alpaca execution + SignalActor + EnsembleStrategy.

The actor and strategy are the classes the backtest runs, configured from the same fields;
only the edges (where bars come from, where orders go) are live. The node reconciles with
Alpaca at start-up (open orders, fills, positions) and its strategy cancels working orders
and closes positions when it stops, so a shutdown leaves no orphan orders.
"""

import asyncio
import threading
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
from strategies.ensemble import EnsembleStrategy, EnsembleStrategyConfig
from strategies.risk import install_trading_state_endpoint

_CALL_TIMEOUT_SECS = 60.0


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
) -> TradingNode:
    """Build (not start) the node with the SignalActor (newest registry models) and the
    EnsembleStrategy; ``extra_actors`` (the journal, a rehearsal pacer) come first."""
    ids = [str(instrument_id(s)) for s in config.universe]
    node = TradingNode(config=node_cfg, loop=loop)
    for actor in extra_actors:
        node.trader.add_actor(actor)
    node.trader.add_actor(SignalActor(SignalActorConfig(
        instrument_ids=ids,
        model_dirs={name: str(path) for name, path in config.model_dirs().items()},
        warmup_sessions=config.warmup_sessions,
        warmup_as_of=warmup_as_of,
    )))
    node.trader.add_strategy(EnsembleStrategy(EnsembleStrategyConfig.parse(msgspec.json.encode(config.strategy_settings(ids)))))
    node.add_data_client_factory(POLYGON, PolygonLiveDataClientFactory)
    node.add_exec_client_factory(ALPACA, AlpacaLiveExecClientFactory)
    node.build()
    install_trading_state_endpoint(node.kernel.msgbus, node.kernel.risk_engine)
    return node


class NodeThread:
    """Runs a TradingNode on an event loop in a background thread, so the calling thread can
    drive sandboxes (a rehearsal) or wait for a signal. Leaving the context stops the node
    (the strategy cancels and flattens in on_stop), stops the loop and disposes the node."""

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
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(_CALL_TIMEOUT_SECS)
            raise
        self._running = asyncio.run_coroutine_threadsafe(self.node.run_async(), self.loop)
        return self

    def __exit__(self, *exc: object) -> None:
        node = self.node
        assert node is not None
        try:
            asyncio.run_coroutine_threadsafe(node.stop_async(), self.loop).result(_CALL_TIMEOUT_SECS)
            self._running.result(_CALL_TIMEOUT_SECS)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(_CALL_TIMEOUT_SECS)
            node.dispose()

    def call(self, fn: Any, timeout: float = _CALL_TIMEOUT_SECS) -> Any:
        """Run ``fn()`` on the node's loop thread and return its result."""

        async def invoke() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(invoke(), self.loop).result(timeout)
