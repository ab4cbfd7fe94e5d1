"""The market-data feed as the operator watches it: the Polygon stream's state and counters,
its message rate, reconnects and backfills, the broker stream's state, and the gaps.

The counters live in the node's clients (``adapters.polygon.data.PolygonDataClient``, the
Alpaca execution client) and are read on the node's loop (``read_feed``, run through
``TradingControl.call_on_node``). The gaps come from the bars the node received, as the
journal's rows (a row listener): per symbol, the minutes of the current session up to the
feed's newest bar that brought no bar of that symbol. They are measured against the newest
bar rather than the wall clock, so a replayed day (a rehearsal) reads the same as a live one;
a feed that went silent shows in the age of its last bar instead.
"""

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from catalog.sessions import trading_sessions
from live.journal.rows import BarRow, Row

if TYPE_CHECKING:
    from nautilus_trader.live.node import TradingNode

TOPIC = "feed"
_MINUTE_NS = 60_000_000_000
_NEW_YORK = "America/New_York"
_LISTED_MISSING = 5  # the newest missing minutes named per symbol
Publish = Callable[[str, dict], None]


def read_feed(node: "TradingNode") -> dict:
    """The data and execution clients' connection state and counters (on the node's loop)."""
    from adapters.alpaca.execution import AlpacaExecutionClient
    from adapters.polygon.data import PolygonDataClient

    kernel = node.kernel
    polygon = [c for c in kernel.data_engine._clients.values() if isinstance(c, PolygonDataClient)]
    alpaca = [c for c in kernel.exec_engine._clients.values() if isinstance(c, AlpacaExecutionClient)]
    feed = None
    if polygon:
        client = polygon[0]
        stream, counters = client.stream, client.stream.counters
        feed = {"status": stream.status.value, "last_error": stream.last_error, "messages": client.messages,
                "frames": counters.frames, "connections": counters.connections, "reconnects": counters.reconnects,
                "stale_events": counters.stale_events, "malformed": counters.malformed,
                "backfilled_bars": client.backfilled_bars, "backfill_pending": client.backfill_pending,
                "duplicate_bars_dropped": client.duplicate_bars_dropped}
    broker = None
    if alpaca:
        stream = alpaca[0].stream
        broker = {"connected": stream.is_connected, "supervised": stream.is_supervised, "error": stream.error,
                  "connections": stream.connections, "reconnects": max(0, stream.connections - 1),
                  "updates": stream.updates}
    return {"polygon": feed, "alpaca": broker}


class FeedMonitor:
    """Gaps and last-bar age from the bar rows (``put``: the node's loop, only filed), and
    the clients' counters from ``read`` (None: no node now) when sampled (``sample``, ~1/s).
    ``symbols``: the universe, so a symbol that never got a bar shows its whole gap."""

    def __init__(self, read: Callable[[], dict | None], symbols: Sequence[str] = (),
                 monotonic: Callable[[], float] = time.monotonic, wall_ns: Callable[[], int] = time.time_ns) -> None:
        self._read = read
        self._monotonic = monotonic
        self._wall_ns = wall_ns
        self._lock = threading.Lock()
        self._symbols = list(symbols)
        self._day: pd.Timestamp | None = None
        self._open_ns = 0
        self._close_ns = 0
        self._bars: dict[str, set[int]] = {}  # symbol -> this session's bar closes
        self._newest_ns = 0
        self._last_arrival_ns = 0
        self._rate_base: tuple[float, int] | None = None  # (monotonic, messages) of the last sample

    def put(self, row: Row) -> None:
        if not isinstance(row, BarRow):
            return
        with self._lock:
            day = pd.Timestamp(row.ts_event - 1, tz="UTC").tz_convert(_NEW_YORK).normalize().tz_localize(None)
            if day != self._day:
                self._new_session(day)
            self._bars.setdefault(row.instrument_id.split(".", 1)[0], set()).add(row.ts_event)
            self._newest_ns = max(self._newest_ns, row.ts_event)
            self._last_arrival_ns = max(self._last_arrival_ns, row.ts_init)

    def close(self) -> None:
        pass

    def _new_session(self, day: pd.Timestamp) -> None:
        sessions = trading_sessions(day, day)
        self._day = day
        self._bars = {}
        self._newest_ns = 0
        if sessions.empty:  # bars on a day without a session: counted, no gap measured
            self._open_ns = self._close_ns = 0
        else:
            self._open_ns, self._close_ns = sessions["open"].iloc[0].value, sessions["close"].iloc[0].value

    def sample(self) -> dict:
        """The "feed" topic's payload: the clients' counters and messages/s since the last
        sample, the last bar's age (seconds, this machine's clock) and the gaps."""
        clients = self._read() or {"polygon": None, "alpaca": None}
        now = self._monotonic()
        polygon = clients["polygon"]
        rate = None
        with self._lock:
            if polygon is not None:
                base = self._rate_base
                if base is not None and polygon["messages"] >= base[1] and now > base[0]:
                    rate = (polygon["messages"] - base[1]) / (now - base[0])
                self._rate_base = (now, polygon["messages"])
            else:
                self._rate_base = None
            gaps = self._gaps()
            last_arrival, newest, day = self._last_arrival_ns, self._newest_ns, self._day
        return {"node": polygon is not None or clients["alpaca"] is not None, "polygon": polygon,
                "messages_per_sec": rate, "alpaca": clients["alpaca"],
                "last_bar_age_secs": (self._wall_ns() - last_arrival) / 1e9 if last_arrival else None,
                "newest_bar": pd.Timestamp(newest, tz="UTC").isoformat() if newest else None,
                "session": None if day is None else day.date().isoformat(), "gaps": gaps,
                "missing_minutes": sum(g["missing"] for g in gaps.values())}

    def _gaps(self) -> dict[str, dict]:
        """Per symbol: the session's minutes up to the newest bar without a bar of it."""
        if not self._open_ns or not self._newest_ns:
            return {}
        upto = min(self._newest_ns, self._close_ns)
        expected = np.arange(self._open_ns + _MINUTE_NS, upto + 1, _MINUTE_NS, dtype=np.int64)
        gaps = {}
        for symbol in sorted(set(self._symbols) | set(self._bars)):
            held = self._bars.get(symbol, set())
            missing = expected[~np.isin(expected, np.fromiter(held, np.int64, len(held)))]
            gaps[symbol] = {"bars": len(held), "missing": len(missing),
                            "newest_missing": [pd.Timestamp(ts, tz="UTC").tz_convert(_NEW_YORK).strftime("%H:%M")
                                               for ts in missing[-_LISTED_MISSING:]]}
        return gaps

    def publish_sample(self, publish: Publish) -> None:
        publish(TOPIC, self.sample())
