"""The panel beside a run (``sextant run --panel``) or over a journal (``sextant panel``):
the context, the server and, for a run, the journal sink and the operator's control."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from live.control import TradingControl
from live.panel.context import PanelContext
from live.panel.events import EventHub
from live.panel.journal_poller import JournalPoller
from live.panel.live_view import LiveView, PanelSink
from live.panel.server import PanelServer

if TYPE_CHECKING:
    from live.journal import Journal
    from live.scheduler import RetrainHook
    from live.settings import LiveConfig


@dataclass(frozen=True)
class PanelOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    allow_remote: bool = False


@dataclass
class RunPanel:
    """A running day's panel: give ``control`` and ``sink`` to the day's phases, then
    ``attach`` the journal they opened (operator actions are journaled there)."""

    ctx: PanelContext
    server: PanelServer
    sink: PanelSink

    @property
    def control(self) -> TradingControl:
        assert self.ctx.control is not None
        return self.ctx.control

    def attach(self, journal: "Journal") -> None:
        self.ctx.journal = journal


@contextmanager
def run_panel(config: "LiveConfig", options: PanelOptions, *, rehearsal: bool, catalog: Path | None,
              retrain: "RetrainHook | None") -> Iterator[RunPanel]:
    ctx = PanelContext(config=config, journal=None, control=TradingControl(config, rehearsal=rehearsal),
                       hub=EventHub(), view=LiveView(config.strategy.risk), catalog=catalog, retrain=retrain)
    with PanelServer(ctx, options.host, options.port, options.allow_remote) as server:
        yield RunPanel(ctx, server, PanelSink(ctx.row_listeners))


@contextmanager
def journal_panel(journal: "Journal", options: PanelOptions, *, config: "LiveConfig | None",
                  day: date | None) -> Iterator[PanelServer]:
    """The read-only panel: ``journal``'s database polled for the day's newest run."""
    assert journal.dsn is not None
    risk = None if config is None else config.strategy.risk
    ctx = PanelContext(config=config, journal=journal, control=None, hub=EventHub(), view=LiveView(risk),
                       catalog=None if config is None or config.schedule.catalog is None
                       else Path(config.schedule.catalog))
    with PanelServer(ctx, options.host, options.port, options.allow_remote) as server, \
            JournalPoller(journal.dsn, ctx.row_listeners, day):
        yield server
