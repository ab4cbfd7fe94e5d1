"""What every command shares: the console, the one way to fail with a message, time display.

The error rule: a command catches only the project's own user-facing error types (each
package names its own: ConfigError, LiveConfigError, CsvFormatError, EmptyCatalogError, ...)
and turns them into ``fail(message)``. It never catches ValueError, OSError or Exception
broadly: anything else is a programming error and keeps its traceback.
"""

import tempfile
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


def writable_dir(path: Path, option: str = "--out") -> Path:
    """``path`` as an existing directory this process can write to, made if missing: a bad
    ``--out`` is refused before any work is done, not after a long run."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except (FileExistsError, NotADirectoryError):
        fail(f"{option} {path}: is a file (or inside one), not a directory")
    except OSError as e:  # read-only filesystem, permissions, disk full: the path the user gave
        fail(f"{option} {path}: cannot write there ({e.strerror})")
    return path


def ny(ns: int | None, fmt: str = "%m-%d %H:%M") -> str:
    """A UTC nanosecond stamp in New York time (how US-equity people read times)."""
    return pd.Timestamp(ns, tz="UTC").tz_convert("America/New_York").strftime(fmt) if ns else "-"
