"""TradingControl: the operator's commands on the running day (the control panel's backend).

It holds the day's running node (``set_node``, called by the live phases and the rehearsal
as nodes start and stop) and runs every command ON THE NODE'S LOOP (``NodeThread.call``), so
the strategy is only ever touched from the thread that trades. What the operator set lasts
for the run, not for one node: entries paused, the weights and above all an emergency stop
are applied again to the next node (a restart, the next day's session).

The emergency stop does not trust the node's own view: after the strategy cancelled and
flattened, it asks the BROKER (Alpaca's REST API, as the close phase does) until the account
holds no position and no open order, and says when it did (or that it did not in time).
"""

import asyncio
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypeVar
from zoneinfo import ZoneInfo

import msgspec

from adapters.alpaca.common import credentials_from_env
from adapters.alpaca.config import AlpacaExecClientConfig
from adapters.alpaca.http import AlpacaHttpClient
from live.settings import LiveConfig, LiveConfigError, check_mode
from strategies.settings import validate_strategy_settings
from strategies.settings_file import SettingsFileError

if TYPE_CHECKING:
    from nautilus_trader.live.node import TradingNode

    from live.node import NodeThread
    from strategies.ensemble import EnsembleStrategy

T = TypeVar("T")
BROKER_FLAT_TIMEOUT_SECS = 30.0
_BROKER_POLL_SECS = 0.25
_NODE_FLAT_TIMEOUT_SECS = 30.0
_NEW_YORK = ZoneInfo("America/New_York")


class ControlRefused(Exception):
    """A command the operator cannot give now or with these values; ``field`` names the
    input at fault (e.g. "strategy.weights.lightgbm") when one is."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NodeLifecycle(Protocol):
    """What runs the day's node (the live phases): stopping and starting it on request."""

    def stop_node_for_operator(self) -> None: ...

    def start_node_for_operator(self) -> None: ...


def broker_state(alpaca: AlpacaExecClientConfig) -> tuple[dict[str, str], list[str]]:
    """The account's open positions (symbol -> quantity) and open orders (symbol + id), as
    Alpaca itself reports them."""
    client = AlpacaHttpClient(credentials_from_env(), alpaca)

    async def read() -> tuple[list[dict], list[dict]]:
        return await client.get_positions(), await client.list_orders(status="open", nested=False)

    try:
        positions, orders = asyncio.run(read())
    finally:
        client.close()
    return ({p["symbol"]: str(p["qty"]) for p in positions if float(p["qty"]) != 0},
            [f"{o['symbol']} {o['id']}" for o in orders])


class TradingControl:
    def __init__(self, config: LiveConfig, *, rehearsal: bool = False,
                 broker_flat_timeout_secs: float = BROKER_FLAT_TIMEOUT_SECS) -> None:
        self.config = config
        self.rehearsal = rehearsal
        self.broker_flat_timeout_secs = broker_flat_timeout_secs
        self._lock = threading.RLock()
        self._node: NodeThread | None = None
        self._broker: AlpacaExecClientConfig | None = None
        self._lifecycle: NodeLifecycle | None = None
        self.entries_enabled = True
        self.emergency_stopped = False
        self.broker_confirmation: str | None = None
        self.weights: dict[str, float] = dict(config.strategy.weights)
        self.node_stopped_by_operator = False

    # -- the node (the phases / the rehearsal) --------------------------------------------------

    def set_node(self, node: "NodeThread | None", broker: AlpacaExecClientConfig | None = None,
                 lifecycle: NodeLifecycle | None = None) -> None:
        """The node now trading (None: none now) and the broker account it trades. A new node
        gets what the operator set for this run: paused entries, weights, the emergency halt."""
        with self._lock:
            self._node, self._broker = node, broker
            if lifecycle is not None:
                self._lifecycle = lifecycle
        if node is None:
            return
        self.node_stopped_by_operator = False
        entries, weights, halted = self.entries_enabled, dict(self.weights), self.emergency_stopped

        def carry_over(strategy: "EnsembleStrategy") -> None:
            if weights != strategy.weights:
                strategy.set_weights(weights)
            if not entries:
                strategy.set_entries_enabled(False)
            if halted:
                strategy.emergency_stop()

        if (entries, weights, halted) != (True, dict(self.config.strategy.weights), False):
            self._on_strategy(carry_over)

    def broker_url(self) -> str | None:
        """The REST endpoint of the broker account the node trades (None: no node now)."""
        with self._lock:
            return None if self._broker is None else self._broker.base_url

    def call_on_node(self, fn: Callable[["TradingNode"], T]) -> T | None:
        """``fn(node)`` on the node's loop; None when no node runs now."""
        with self._lock:
            thread = self._node
        if thread is None or thread.node is None or thread.stopped():
            return None
        return thread.call(lambda: fn(thread.node))

    def _on_strategy(self, fn: Callable[["EnsembleStrategy"], T]) -> T | None:
        from strategies.ensemble import EnsembleStrategy

        def on_node(node: "TradingNode") -> T | None:
            strategies = [s for s in node.trader.strategies() if isinstance(s, EnsembleStrategy)]
            return fn(strategies[0]) if strategies else None

        return self.call_on_node(on_node)

    def _require_node(self, what: str) -> None:
        if self.call_on_node(lambda _node: True) is None:
            raise ControlRefused(f"{what}: no node is running now (outside the session, or stopped)")

    # -- commands ---------------------------------------------------------------------------

    def entries(self, enabled: bool) -> None:
        """New entries on or off from the next signal; open positions keep their brackets."""
        if enabled and self.emergency_stopped:
            raise ControlRefused("entries stay off: the emergency stop halts trading for the rest of this run")
        self.entries_enabled = enabled
        self._on_strategy(lambda s: s.set_entries_enabled(enabled))

    def emergency_stop(self) -> dict:
        """Cancel every order, flatten every position, halt for the rest of the run; then wait
        for the broker to report the account flat. Returns what the broker said."""
        self.emergency_stopped = True
        self.entries_enabled = False
        self.broker_confirmation = None
        self._on_strategy(lambda s: s.emergency_stop())
        if self._wait_node_flat():
            self._on_strategy(lambda s: s.halt_if_flat())
        result = self._await_broker_flat()
        self.broker_confirmation = result["message"]
        return result

    def _wait_node_flat(self) -> bool:
        deadline = time.monotonic() + _NODE_FLAT_TIMEOUT_SECS
        while time.monotonic() < deadline:
            flat = self.call_on_node(lambda n: not n.cache.orders_open_count() and not n.cache.positions_open_count()
                                     and not n.cache.orders_inflight_count())
            if flat is None or flat:
                return flat is not None
            time.sleep(_BROKER_POLL_SECS)
        return False

    def _await_broker_flat(self) -> dict:
        with self._lock:
            broker = self._broker
        if broker is None:
            return {"flat": None, "positions": {}, "orders": [],
                    "message": "no node is running now, so no broker account to ask; the next node starts halted"}
        deadline = time.monotonic() + self.broker_flat_timeout_secs
        while True:
            positions, orders = broker_state(broker)
            now = datetime.now(_NEW_YORK).strftime("%H:%M:%S")
            if not positions and not orders:
                return {"flat": True, "positions": {}, "orders": [], "message": f"broker confirms flat at {now}"}
            if time.monotonic() > deadline:
                return {"flat": False, "positions": positions, "orders": orders,
                        "message": f"broker NOT flat after {self.broker_flat_timeout_secs:g}s ({now}): "
                                   f"{len(positions)} positions, {len(orders)} open orders; check the broker"}
            time.sleep(_BROKER_POLL_SECS)

    def close_position(self, symbol: str) -> None:
        """The strategy closes ``symbol``'s position: cancels its bracket, closes at market."""
        if symbol not in (self.config.universe or []):
            raise ControlRefused(f"{symbol!r} is not in this run's universe", field="symbol")
        self._require_node(f"close {symbol}")
        closed = self._on_strategy(lambda s: s.close_symbol(symbol))
        if not closed:
            raise ControlRefused(f"{symbol}: no open position to close", field="symbol")

    def set_weights(self, weights: dict[str, float]) -> None:
        """New ensemble weights from the next signal, validated by the one strategy-settings
        type; only the models this run trades may be weighted."""
        unknown = sorted(set(weights) - set(self.config.strategy.weights))
        if unknown:
            raise ControlRefused(f"strategy.weights.{unknown[0]}: not a model this run trades "
                                 f"({', '.join(sorted(self.config.strategy.weights))})",
                                 field=f"strategy.weights.{unknown[0]}")
        settings = {**msgspec.to_builtins(self.config.strategy), "weights": dict(weights)}
        try:
            checked = validate_strategy_settings(settings, "strategy")
        except SettingsFileError as e:
            raise ControlRefused(str(e), field=_field_of(str(e))) from None
        self.weights = dict(checked.weights)
        self._on_strategy(lambda s: s.set_weights(dict(checked.weights)))

    def request_mode(self, mode: str, *, live_flag: bool, understood: bool,
                     environ: Mapping[str, str] = os.environ) -> str:
        """Paper or live, with the command line's confirmations (--live,
        --i-understand-real-money: two explicit checkboxes) and its checks
        (``live.settings.check_mode``: the config's mode, host and key). The mode is the
        config file's, as on the command line: a switch the checks allow but the file does
        not say is refused too (start `sextant run` with that config at the next pre-open)."""
        if mode not in ("paper", "live"):
            raise ControlRefused(f"mode must be paper or live, got {mode!r}", field="mode")
        if mode == "live" and not (live_flag and understood):
            missing = " and ".join(flag for flag, given in (("--live", live_flag),
                                                             ("--i-understand-real-money", understood)) if not given)
            raise ControlRefused(f"switch to live: real money needs {missing}, as on the command line",
                                 field="live" if not live_flag else "understood")
        if mode == "paper" and self.config.mode == "live":
            raise ControlRefused("switch to paper: the config says mode: live (the live host and key); "
                                 "a paper day runs a paper config", field="mode")
        try:
            check_mode(self.config, live_flag=mode == "live", understood=understood, environ=environ)
        except LiveConfigError as e:
            raise ControlRefused(f"switch to {mode}: {e}", field="mode") from None
        if self.rehearsal:
            raise ControlRefused(f"switch to {mode}: a rehearsal trades the sandboxes only", field="mode")
        return f"already {mode}: the mode is the config file's"

    def stop_node(self) -> None:
        """Stop the node (its strategy cancels and flattens); the session waits without one."""
        lifecycle = self._require_lifecycle("stop the node")
        self._require_node("stop the node")
        self.node_stopped_by_operator = True
        lifecycle.stop_node_for_operator()

    def start_node(self) -> None:
        """Start the node again: it reconciles with the broker, so nothing is placed twice."""
        lifecycle = self._require_lifecycle("start the node")
        if self.call_on_node(lambda _n: True) is not None:
            raise ControlRefused("start the node: it is running")
        if not self.node_stopped_by_operator:
            raise ControlRefused("start the node: only a node the operator stopped is started from here "
                                 "(the schedule starts the day's node at pre-open)")
        lifecycle.start_node_for_operator()

    def _require_lifecycle(self, what: str) -> NodeLifecycle:
        with self._lock:
            lifecycle = self._lifecycle
        if lifecycle is None:
            raise ControlRefused(f"{what}: a rehearsal's node runs the replayed day in lockstep and is not "
                                 "stopped from the panel")
        return lifecycle

    # -- status -------------------------------------------------------------------------------

    def status(self) -> dict:
        """The node's side of the status: feed and broker connections, the engine's trading
        state, what the operator set."""
        from strategies.ensemble import EnsembleStrategy

        def read(node: "TradingNode") -> dict:
            kernel = node.kernel
            strategies = [s for s in node.trader.strategies() if isinstance(s, EnsembleStrategy)]
            return {
                "feed_connected": all(c.is_connected for c in kernel.data_engine._clients.values()),
                "broker_connected": all(c.is_connected for c in kernel.exec_engine._clients.values())
                and all(s.execution_connected for s in strategies),
                "trading_state": kernel.risk_engine.trading_state.name,
                "weights": strategies[0].weights if strategies else {},
            }

        node = self.call_on_node(read)
        return {"node": "running" if node is not None else ("stopped by the operator"
                                                            if self.node_stopped_by_operator else "not running"),
                **(node or {"feed_connected": False, "broker_connected": False, "trading_state": None,
                            "weights": dict(self.weights)}),
                "mode": "rehearsal" if self.rehearsal else self.config.mode,
                "entries_enabled": self.entries_enabled, "emergency_stopped": self.emergency_stopped,
                "broker_confirmation": self.broker_confirmation,
                "node_controls": self._lifecycle is not None}


def _field_of(message: str) -> str | None:
    """The key a SettingsFileError names ("strategy: 'weights.x': ..." -> "strategy.weights.x")."""
    found = re.search(r"'([A-Za-z0-9_.]+)'", message)
    return None if found is None else f"strategy.{found.group(1)}"
