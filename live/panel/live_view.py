"""LiveView: the journal's rows turned into what the Control and Trading pages show.

It is a journal sink (``put(row)``/``close()``): ``put`` runs on the node's loop, so it only
updates in-memory state under a lock and marks the topics that changed; ``publish_due``
(the panel's loop, ~10 times a second) sends a snapshot of each changed topic to the hub,
stamped with the time of the oldest event it carries (``_ts``, epoch ms), so the page can
tell how late an update reached it. ``PanelSink`` is the sink handed to ``open_journal``: it
fans every row out to the context's listeners. ``JournalPoller`` feeds the same listeners
from the database for the read-only panel.
"""

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import date

from live.journal.rows import (
    AccountRow,
    BarRow,
    FillRow,
    ModelVersion,
    OrderEventRow,
    OrderRow,
    PositionRow,
    Row,
    RunEvent,
    SignalRow,
)
from live.journal.sinks import Sink
from strategies.risk import RiskRules

TOP_SIGNALS = 10
_KEPT_FILLS = 200
_KEPT_ACTIONS = 50
# An order whose last event is one of these is done: it no longer rests at the venue.
_DONE = frozenset({"OrderFilled", "OrderCanceled", "OrderRejected", "OrderExpired", "OrderDenied"})
TOPICS = ("status", "positions", "orders", "fills", "signals")


def symbol_of(instrument_id: str) -> str:
    return instrument_id.split(".", 1)[0]


class LiveView:
    """State of the current run; ``risk`` (the strategy's rules) sets the limits shown."""

    def __init__(self, risk: RiskRules | None = None, clock: Callable[[], float] = time.time) -> None:
        self.risk = risk or RiskRules()
        self._clock = clock
        self._lock = threading.Lock()
        self._run: dict = {}
        self._models: dict[str, int | None] = {}
        self._positions: dict[str, dict] = {}  # instrument id -> open position
        self._orders: dict[str, dict] = {}  # client order id -> order, in creation order
        self._fills: deque[dict] = deque(maxlen=_KEPT_FILLS)
        self._signals: dict[str, dict] = {}  # instrument id -> its newest signal
        self._last_close: dict[str, float] = {}
        self._equity: float | None = None
        self._start_equity: float | None = None
        self._bars = 0
        self._last_bar_arrival_ns = 0
        self._actions: deque[dict] = deque(maxlen=_KEPT_ACTIONS)
        self._dirty: dict[str, float] = {}  # topic -> epoch ms of its oldest unpublished event

    # -- the sink side (node loop) ---------------------------------------------------------

    def put(self, row: Row) -> None:
        with self._lock:
            self._apply(row)

    def close(self) -> None:
        pass

    def _mark(self, *topics: str) -> None:
        now = self._clock() * 1000.0
        for topic in topics:
            self._dirty.setdefault(topic, now)

    def _apply(self, row: Row) -> None:
        match row:
            case RunEvent():
                if row.kind == "started":
                    self._reset()
                self._run = {"run_id": row.run_id, "trading_day": row.trading_day, "name": row.name,
                             "mode": row.mode, "state": row.kind}
                self._mark(*TOPICS)
            case ModelVersion():
                self._models[row.name] = row.version
                self._mark("status")
            case BarRow():
                symbol = symbol_of(row.instrument_id)
                self._last_close[symbol] = float(row.close)
                self._bars += 1
                self._last_bar_arrival_ns = row.ts_init
                self._mark("status", *(("positions",) if symbol in self._positions else ()))
            case OrderRow():
                self._orders[row.client_order_id] = {
                    "client_order_id": row.client_order_id, "ts": row.ts_init, "symbol": symbol_of(row.instrument_id),
                    "side": row.side, "quantity": row.quantity, "type": row.type, "price": row.price,
                    "trigger_price": row.trigger_price, "tags": row.tags, "status": "OrderInitialized"}
                self._mark("orders", "positions")
            case OrderEventRow():
                order = self._orders.get(row.client_order_id)
                if order is not None:
                    order["status"] = row.kind
                    self._mark("orders", "positions")
            case FillRow():
                self._fills.append({"ts": row.ts_event, "symbol": symbol_of(row.instrument_id), "side": row.side,
                                    "quantity": row.last_qty, "price": row.last_px, "commission": row.commission,
                                    "client_order_id": row.client_order_id})
                self._mark("fills")
            case PositionRow():
                symbol = symbol_of(row.instrument_id)
                if row.kind == "closed" or float(row.quantity) == 0:
                    self._positions.pop(symbol, None)
                else:
                    self._positions[symbol] = {"symbol": symbol, "side": row.side, "quantity": float(row.quantity),
                                               "entry": row.avg_px_open, "opened": row.ts_event}
                self._mark("positions", "status")
            case AccountRow():
                self._equity = float(row.total)
                if self._start_equity is None:
                    self._start_equity = self._equity
                self._mark("status", "positions")
            case SignalRow():
                self._signals[row.instrument_id] = {
                    "ts": row.ts_event, "symbol": symbol_of(row.instrument_id), "decision": row.decision,
                    "confidence": _finite(row.confidence), "expected_return": _finite(row.expected_return),
                    "risk_score": row.risk_score, "horizon": row.horizon, "volatility": _finite(row.volatility)}
                self._mark("signals")

    def _reset(self) -> None:
        """A new run (the next day): what the previous one held is gone (its node flattened)."""
        self._positions.clear()
        self._orders.clear()
        self._fills.clear()
        self._signals.clear()
        self._models.clear()
        self._start_equity = None

    # -- actions (the panel's loop or a worker thread) ---------------------------------------

    def add_action(self, entry: dict) -> None:
        with self._lock:
            self._actions.appendleft(entry)

    def actions(self) -> list[dict]:
        with self._lock:
            return list(self._actions)

    def trading_day(self) -> date | None:
        with self._lock:
            return self._run.get("trading_day")

    # -- snapshots ------------------------------------------------------------------------

    def snapshot(self, topic: str) -> dict:
        """The payload of ``topic`` as the pages render it."""
        with self._lock:
            return getattr(self, f"_{topic}_payload")()

    def publish_due(self, publish: Callable[[str, dict], None]) -> None:
        """Send every topic that changed since the last call (with the time of its oldest
        change as ``_ts``)."""
        with self._lock:
            due, self._dirty = self._dirty, {}
            payloads = [(topic, {**getattr(self, f"_{topic}_payload")(), "_ts": since})
                        for topic, since in due.items()]
        for topic, payload in payloads:
            publish(topic, payload)

    def _status_payload(self) -> dict:
        day_pnl = None if self._equity is None or self._start_equity is None else self._equity - self._start_equity
        age = None if not self._last_bar_arrival_ns else max(0.0, self._clock() - self._last_bar_arrival_ns / 1e9)
        return {"run": {k: str(v) for k, v in self._run.items()}, "models": dict(self._models),
                "equity": self._equity, "start_equity": self._start_equity, "day_pnl": day_pnl,
                "open_positions": len(self._positions), "bars": self._bars, "last_bar_age_secs": age,
                "limits": self._limits()}

    def _limits(self) -> dict:
        rules, equity, start = self.risk, self._equity, self._start_equity
        loss_limit = None if start is None else rules.daily_loss_limit * start
        loss_used = None if start is None or equity is None else max(0.0, start - equity)
        return {"max_positions": rules.max_positions, "open_positions": len(self._positions),
                "max_position_pct": rules.max_position_pct, "max_sector_pct": rules.max_sector_pct,
                "max_position_value": None if equity is None else rules.max_position_pct * equity,
                "max_sector_value": None if equity is None else rules.max_sector_pct * equity,
                "daily_loss_limit_pct": rules.daily_loss_limit, "daily_loss_limit": loss_limit,
                "daily_loss_used": loss_used, "stop_loss": rules.stop_loss, "take_profit": rules.take_profit}

    def _positions_payload(self) -> dict:
        rows = []
        resting = [o for o in self._orders.values() if o["status"] not in _DONE]
        for symbol, p in sorted(self._positions.items()):
            last = self._last_close.get(symbol)
            sign = 1.0 if p["side"] == "LONG" else -1.0
            stops = [o["trigger_price"] for o in resting if o["symbol"] == symbol and o["trigger_price"] is not None]
            targets = [o["price"] for o in resting if o["symbol"] == symbol and o["type"] == "LIMIT"]
            rows.append({**p, "last": last, "stop": stops[0] if stops else None,
                         "target": targets[0] if targets else None,
                         "unrealized_pnl": None if last is None else sign * p["quantity"] * (last - p["entry"])})
        return {"positions": rows, "limits": self._limits()}

    def _orders_payload(self) -> dict:
        return {"orders": list(reversed(self._orders.values()))}

    def _fills_payload(self) -> dict:
        return {"fills": list(reversed(self._fills))}

    def _signals_payload(self) -> dict:
        ranked = sorted(self._signals.values(), key=lambda s: s["confidence"] or 0.0, reverse=True)
        return {"signals": ranked[:TOP_SIGNALS]}


def _finite(value: float) -> float | None:
    """None for NaN (a signal without an outlook yet): JSON has no NaN, and a page shows "-"."""
    return value if math.isfinite(value) else None


class PanelSink:
    """The journal sink of a run with a panel: every row to each listener, in order."""

    def __init__(self, listeners: Sequence[Sink]) -> None:
        self.listeners = listeners

    def put(self, row: Row) -> None:
        for listener in self.listeners:
            listener.put(row)

    def close(self) -> None:
        """A run's end; the listeners outlive it (the next day's run feeds them again)."""
