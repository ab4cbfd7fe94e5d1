"""What every command shares: the console, the one way to fail with a message, time display."""

from pathlib import Path
from typing import Annotated, NoReturn

import pandas as pd
import typer
from rich.console import Console

console = Console()

CatalogOpt = Annotated[Path, typer.Option("--catalog", help="catalog directory")]


def fail(message: str) -> NoReturn:
    """A user's mistake: print the message, no traceback, exit 2."""
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


def ny(ns: int | None, fmt: str = "%m-%d %H:%M") -> str:
    """A UTC nanosecond stamp in New York time (how US-equity people read times)."""
    return pd.Timestamp(ns, tz="UTC").tz_convert("America/New_York").strftime(fmt) if ns else "-"
