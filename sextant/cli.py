"""The `sextant` command line: the composition root (it imports everything; nothing imports it).

Each command lives in ``sextant/commands/``, parses its options and calls one function."""

from pathlib import Path

import typer
from dotenv import load_dotenv

from sextant.commands.backtest import backtest
from sextant.commands.bench import bench
from sextant.commands.catalog import catalog_app
from sextant.commands.journal import journal_app
from sextant.commands.live import live
from sextant.commands.models import models_app
from sextant.commands.panel import panel
from sextant.commands.run import run
from sextant.commands.sandbox import sandbox_app
from sextant.commands.tune import tune

app = typer.Typer(help="Sextant: walk-forward ML backtests and live trading on NautilusTrader.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(catalog_app, name="catalog")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(models_app, name="models")
app.add_typer(journal_app, name="journal")
app.command()(backtest)
app.command()(live)
app.command()(run)
app.command()(bench)
app.command()(tune)
app.command()(panel)


@app.callback()
def _environment() -> None:
    """Secrets come from the environment; an untracked .env in the working directory fills in
    what the environment does not set (it never overrides it)."""
    load_dotenv(Path.cwd() / ".env", override=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
