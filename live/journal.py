"""The record of a live (or rehearsed) session: every MLSignal, every order as the strategy
created it, every fill. Kept in memory while the node runs and written as Parquet when the
journal stops (PostgreSQL is the system of record for live runs: see DESIGN)."""

from pathlib import Path

import pandas as pd
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.data import DataType
from nautilus_trader.model.events import OrderEvent, OrderFilled

from strategies.records import (
    INTENT_COLUMNS,
    SIGNAL_COLUMNS,
    creation_key,
    order_intent,
    signal_record,
)
from strategies.signals import MLSignal


class LiveJournalConfig(ActorConfig, frozen=True, kw_only=True):
    out_dir: str | None = None


class LiveJournal(Actor):
    def __init__(self, config: LiveJournalConfig) -> None:
        super().__init__(config)
        self.signals: list[dict] = []
        self.fills: list[dict] = []

    def on_start(self) -> None:
        self.subscribe_data(DataType(MLSignal))
        self.msgbus.subscribe(topic="events.order.*", handler=self._on_order_event)

    def on_data(self, data) -> None:
        if isinstance(data, MLSignal):
            self.signals.append(signal_record(data))

    def _on_order_event(self, event: OrderEvent) -> None:
        if isinstance(event, OrderFilled):
            self.fills.append({
                "ts_event": event.ts_event,
                "client_order_id": event.client_order_id.value,
                "venue_order_id": event.venue_order_id.value,
                "instrument_id": event.instrument_id.value,
                "side": event.order_side.name,
                "last_qty": str(event.last_qty),
                "last_px": str(event.last_px),
                "trade_id": event.trade_id.value,
            })

    def intents(self) -> list[dict]:
        """Every order the node's strategies created, in creation order."""
        orders = sorted(self.cache.orders(), key=creation_key)
        return [order_intent(o) for o in orders]

    def on_stop(self) -> None:
        """Writes the record. Never raises: a journal that cannot be written (a full disk, a
        bug) is logged with its traceback, and the node's stop goes on to cancel, flatten and
        disconnect; the node stops its strategies before this runs (``live.node``), so their
        closing orders are in the record."""
        if self.config.out_dir is None:
            return
        try:
            self._write(Path(self.config.out_dir))
        except Exception as exc:  # isolation: the record must never block the risk path
            # NautilusTrader's Logger.exception takes the exception (for the traceback)
            self.log.exception(f"journal: could not write {self.config.out_dir}", exc)  # noqa: TRY401

    def _write(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(self.signals, columns=SIGNAL_COLUMNS).to_parquet(
            out / "signals.parquet")
        pd.DataFrame(self.intents(), columns=INTENT_COLUMNS).to_parquet(out / "orders.parquet")
        pd.DataFrame(self.fills).to_parquet(out / "fills.parquet")
        self.log.info(f"journal: {len(self.signals)} signals, {len(self.fills)} fills -> {out}")
