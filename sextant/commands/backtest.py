"""`sextant backtest`: the main job, a walk-forward ML backtest."""

from pathlib import Path
from typing import Annotated

import typer

from backtests.config import ConfigError, load_config
from catalog.errors import CatalogError
from sextant.commands.common import ParamsOpt, console, fail, writable_dir


def backtest(
    config: Annotated[Path, typer.Argument(help="walk-forward YAML config")],
    catalog: Annotated[Path | None, typer.Option("--catalog", help="override the config's catalog path (must exist)")] = None,
    out: Annotated[Path, typer.Option("--out", help="runs directory")] = Path("runs"),
    params: ParamsOpt = None,
) -> None:
    """Walk-forward ML backtest: train, purge/embargo, predict, trade, report."""
    from backtests.walkforward import run_walkforward
    from backtests.window import WindowCrashedError

    try:
        cfg = load_config(config, overrides={"catalog.path": str(catalog)} if catalog else None, params=params)
        result = run_walkforward(cfg, writable_dir(out), console, generate_missing_catalog=catalog is None)
    except (ConfigError, CatalogError, WindowCrashedError) as e:
        fail(str(e))
    t = result.metrics["trading"]
    m = result.metrics["models"]
    console.print(
        f"[bold]return[/] {t['total_return']:.2%}  [bold]sharpe[/] {t['sharpe']:.2f}  "
        f"[bold]max dd[/] {t['max_drawdown']:.2%}  [bold]trades[/] {t['trades']}  "
        + "  ".join(f"[bold]AUC {k}[/] {v['auc']:.3f}" for k, v in m.items())
    )
    console.print(f"report: {result.run_dir / 'report.html'}")

