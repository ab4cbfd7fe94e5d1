"""What every command shares: the console, the one way to fail with a message, time display.

The error rule: a command catches only the project's own user-facing error types (each
package names its own: ConfigError, LiveConfigError, CsvFormatError, EmptyCatalogError, ...)
and turns them into ``fail(message)``. It never catches ValueError, OSError or Exception
broadly: anything else is a programming error and keeps its traceback.
"""

import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from live.panel.server import PanelServer

console = Console()

CatalogOpt = Annotated[Path, typer.Option("--catalog", help="catalog directory")]
# `sextant backtest` and `sextant live` take the same overlay (strategies.settings.SettingsOverlay)
ParamsOpt = Annotated[Path | None, typer.Option(
    "--params", help="settings overlay (a tuning study's best.yaml) replacing fields of the config's strategy")]


def fail(message: str) -> NoReturn:
    """A user's mistake: print the message, no traceback, exit 2."""
    # one line however narrow the terminal: a path in it stays whole to copy; [brackets] are text
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code=2)


def writable_dir(path: Path, option: str = "--out") -> Path:
    """``path``, once it is known this process can create or write it: a bad ``--out`` is
    refused before any work is done, not after a long run. Nothing is created here, so a run
    refused for another reason leaves no directory behind."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        fail(f"{option} {path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):  # also false on a read-only filesystem
        fail(f"{option} {path}: {existing} is not writable (read-only filesystem or permissions)")
    return path


def ny(ns: int | None, fmt: str = "%m-%d %H:%M") -> str:
    """A UTC nanosecond stamp in New York time (how US-equity people read times)."""
    return pd.Timestamp(ns, tz="UTC").tz_convert("America/New_York").strftime(fmt) if ns else "-"


def announce_panel(server: "PanelServer", label: str = "panel") -> None:
    """Print the panel's one-time login URL, and a fresh one whenever the process gets
    SIGUSR1 (``kill -USR1 <pid>``): the printed token works once."""
    console.print(f"{label}: {server.url}", highlight=False, soft_wrap=True)
    console.print(f"  (a new login URL: kill -USR1 {os.getpid()})", highlight=False)

    def renew(_signum: int, _frame: object) -> None:
        console.print(f"{label}: {server.renew_login()}", highlight=False, soft_wrap=True)

    signal.signal(signal.SIGUSR1, renew)
