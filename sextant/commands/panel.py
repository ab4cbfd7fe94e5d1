"""`sextant panel`: the control panel read-only over the journal database (no node to command)."""

import threading
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from sextant.commands.common import announce_panel, console, fail
from sextant.commands.journal import JOURNAL_ERRORS, DataDirOpt, DsnOpt


def panel(
    dsn: DsnOpt = None,
    data_dir: DataDirOpt = Path("data/postgres"),
    config: Annotated[Path | None, typer.Option("--config", help="a live YAML: its journal and risk limits")] = None,
    day: Annotated[str | None, typer.Option("--day", help="YYYY-MM-DD (default: the newest day with a run)")] = None,
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8000,
    host: Annotated[str, typer.Option("--host", help="127.0.0.1 unless --allow-remote")] = "127.0.0.1",
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="let --host be beyond this machine")] = False,
) -> None:
    """Watch a journal's day in the browser as its runs write it (positions, orders, fills,
    signals, equity); every command is refused (409): there is no node here. Ctrl-C stops."""
    from live.journal import JournalSettings, open_journal
    from live.panel.launch import PanelOptions, journal_panel
    from live.panel.server import PanelStartError
    from live.settings import LiveConfigError, load_live_config

    try:
        watched = None if day is None else date.fromisoformat(day)
    except ValueError:
        fail(f"--day {day!r}: give a date as YYYY-MM-DD")
    try:
        cfg = None if config is None else load_live_config(config)
    except LiveConfigError as e:
        fail(str(e))
    settings = JournalSettings(sinks=(), data_dir=str(data_dir)) if cfg is None else cfg.journal
    try:
        with (open_journal(settings, dsn=dsn, must_exist=True) as journal,
              journal_panel(journal, PanelOptions(host, port, allow_remote), config=cfg, day=watched) as server):
            announce_panel(server, "panel (read-only)")
            threading.Event().wait()
    except (PanelStartError, *JOURNAL_ERRORS) as e:
        fail(str(e))
    except KeyboardInterrupt:
        console.print("panel stopped")
