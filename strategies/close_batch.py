"""The bars of one bar close, collected so the SignalActor predicts every symbol of a minute
in one batch: the models' per-call overhead is paid once per close instead of once per symbol.

A close is the set of bars stamped with one ``ts_event``. It holds at most one bar per
instrument (a repeat replaces nothing: the buffer already refused it as a duplicate) and is
taken out whole by the actor when every instrument has delivered, when a newer bar arrives,
when the close-wait alert fires or when the actor stops.
"""

from nautilus_trader.model.data import Bar
from nautilus_trader.model.identifiers import InstrumentId


class PendingClose:
    """The bars received so far for the close being collected (none pending: ``ts`` is None)."""

    def __init__(self) -> None:
        self.ts: int | None = None
        self._bars: dict[InstrumentId, Bar] = {}
        self._last_taken: int | None = None

    def __len__(self) -> int:
        return len(self._bars)

    def accepts(self, ts: int) -> bool:
        """Whether a bar at ``ts`` can join: it is the pending close's time, or (none pending)
        newer than the last close taken. Older bars belong to a close that went out without them."""
        if self.ts is not None:
            return ts == self.ts
        return self._last_taken is None or ts > self._last_taken

    def add(self, iid: InstrumentId, bar: Bar) -> None:
        if not self.accepts(bar.ts_event):
            raise ValueError(f"a bar at {bar.ts_event} cannot join the close at {self.ts}")
        self.ts = bar.ts_event
        self._bars.setdefault(iid, bar)

    def take(self) -> dict[InstrumentId, Bar]:
        """The pending bars (possibly none), leaving nothing pending."""
        bars, self._bars = self._bars, {}
        if self.ts is not None:
            self._last_taken, self.ts = self.ts, None
        return bars
