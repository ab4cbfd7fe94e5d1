"""PanelContext: everything a page module may use, built once by whoever starts the panel
(``sextant run --panel`` with a running day, ``sextant panel`` read-only over a journal)."""

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from live.journal.sinks import Sink
from live.panel.events import EventHub
from live.panel.live_view import LiveView

if TYPE_CHECKING:  # the control imports NautilusTrader: a read-only panel does not need it
    from live.control import TradingControl
    from live.journal import Journal
    from live.scheduler import RetrainHook
    from live.settings import LiveConfig

_NEW_YORK = ZoneInfo("America/New_York")


@dataclass
class PanelContext:
    """``control`` None: a read-only panel (every POST answers 409). ``row_listeners``: every
    journal row the run makes (or the poller reads) goes to each, LiveView first."""

    config: "LiveConfig | None"
    journal: "Journal | None"
    control: "TradingControl | None"
    hub: EventHub
    view: LiveView
    catalog: Path | None = None
    jobs: Any = None  # PANEL-OPS: live.operations' JobRunner (background jobs with progress)
    retrain: "RetrainHook | None" = None
    row_listeners: list[Sink] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.view not in self.row_listeners:
            self.row_listeners.insert(0, self.view)

    def control_payload(self) -> dict:
        """The hub topic "control": what the operator set and the node's side (``control``
        None: read-only), with the actions so far. Blocks on the node's loop: call it off the
        panel's loop."""
        return {"control": None if self.control is None else self.control.status(), "actions": self.view.actions()}

    def record_action(self, action: str, outcome: str, details: dict) -> None:
        """Journal an operator action (kind "panel", subject ``action``) with its time and
        outcome, and publish it on the hub topic "actions". Its trading day is the current
        run's (before any run: today's, New York). A journal without a database (Parquet
        only) keeps it in the run's view and the page only."""
        now = datetime.now(_NEW_YORK)
        entry = {"action": action, "outcome": outcome, "at": now.isoformat(timespec="seconds"), **details}
        if self.journal is not None and self.journal.dsn is not None:
            day = self.view.trading_day() or now.date()
            entry["decision_id"] = self.journal.record_decision("panel", action, entry, day)
        self.view.add_action(entry)
        self.hub.publish("actions", {"actions": self.view.actions()})
