"""The walk-forward workflow: train a run, trade it with the config's own strategy, report.

The two steps are ``backtests.train`` (features, folds, fit, predict, stored MLSignal rows
and models) and ``backtests.trade`` (one BacktestNode per test window over those fixed
signals, then metrics); this module only composes them and writes what a user reads:
metrics.json, report.html and ``<runs>/latest``. A tuning study trains once the same way and
then only trades.
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from backtests.config import BacktestConfig
from backtests.report import gather_inputs, write_report
from backtests.trade import TradeResult, trade
from backtests.train import TrainResult, train
from catalog.instruments import parse_symbol
from catalog.jobs import generate_catalog
from catalog.store import EmptyCatalogError, MarketCatalog, holds_anything, open_catalog


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict


def run_walkforward(
    config: BacktestConfig,
    out_root: Path,
    console: Console | None = None,
    generate_missing_catalog: bool = True,
) -> RunResult:
    """``generate_missing_catalog`` is False when the user named the catalog (``--catalog``):
    only the config's own catalog is generated when missing (``ensure_catalog``)."""
    console = console or Console()
    catalog = ensure_catalog(config, console, generate_missing_catalog)
    symbols = universe(config, catalog)
    started = time.perf_counter()
    with _progress(console) as progress:
        train_task = progress.add_task("train + predict folds", total=config.walk_forward.folds)
        trained = train(config, catalog, symbols, out_root, on_fold_done=lambda: progress.advance(train_task))
        train_seconds = time.perf_counter() - started
        bt_task = progress.add_task("backtest test windows", total=len(trained.run.folds))
        traded = trade(trained.run, config.strategy, trained.run.run_dir, workers=config.workers,
                       on_window_done=lambda _: progress.advance(bt_task))
    run_dir = trained.run.run_dir
    metrics = _metrics(config, catalog, symbols, trained, traded)
    metrics["run"]["train_seconds"] = round(train_seconds, 1)
    metrics["run"]["total_seconds"] = round(time.perf_counter() - started, 1)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_json_default))
    write_report(run_dir / "report.html", gather_inputs(run_dir, metrics, traded.equity, traded.daily_returns,
                                                        trained.importance, catalog))
    _point_latest_at(run_dir)
    return RunResult(run_dir=run_dir, metrics=metrics)


# -- data ---------------------------------------------------------------------------------------


def ensure_catalog(config: BacktestConfig, console: Console, generate_missing: bool = True) -> MarketCatalog:
    """The configured catalog. With ``generate_missing`` (the config's own catalog) a path that
    does not exist or is an empty directory is generated from ``catalog.generate``; without it
    (a path the user typed) it is an error, since a typo must not backtest a made-up market."""
    path = config.catalog.path
    if not generate_missing or holds_anything(path):
        catalog = open_catalog(path)
        if not catalog.instruments():
            raise EmptyCatalogError(f"catalog {catalog.path} exists but holds no instruments")
        return catalog
    gen = config.catalog.generate
    console.print(
        f"[bold]catalog {path} not found:[/] generating {gen.symbols} synthetic symbols x "
        f"{gen.days} sessions (seed {gen.seed}, planted signal strength {gen.signal_strength})"
    )
    return generate_catalog(path, gen.symbols, gen.days, gen.seed, gen.signal_strength)


def universe(config: BacktestConfig, catalog: MarketCatalog) -> list[str]:
    """The symbols a run trains and trades: the config's universe, or every catalog symbol."""
    available = catalog.symbols()
    if not available:
        raise EmptyCatalogError(f"catalog {catalog.path} holds no bars")
    if config.universe is None:
        return available
    chosen = list(dict.fromkeys(parse_symbol(s) for s in config.universe))
    missing = [s for s in chosen if s not in available]
    if missing:
        raise EmptyCatalogError(f"universe symbols {missing} have no bars in catalog {catalog.path}")
    return chosen


# -- summary ------------------------------------------------------------------------------------


def _metrics(config: BacktestConfig, catalog: MarketCatalog, symbols: list[str], trained: TrainResult,
             traded: TradeResult) -> dict:
    run = trained.run
    return {
        "run": {
            "name": config.name,
            "run_dir": str(run.run_dir),
            "catalog": str(catalog.path),
            "symbols": symbols,
            "folds": len(run.folds),
            "engine_events": traded.engine_events,
            "backtest_seconds": round(traded.backtest_seconds, 1),
            "data_note": _data_note(catalog, symbols),
            "config": config.to_dict(),
        },
        "trading": traded.trading,
        "models": trained.models,
        "folds": [row | traded_fold for row, traded_fold in zip(trained.folds, traded.folds, strict=True)],
    }


def _data_note(catalog: MarketCatalog, symbols: list[str]) -> str:
    origin = catalog.synthetic_origin() or {}
    synthetic = sorted(set(origin.get("generated_symbols", [])) & set(symbols))
    if not synthetic:
        return f"Catalog {catalog.path}: {len(symbols)} symbols of imported or ingested data."
    what = "SYNTHETIC" if len(synthetic) == len(symbols) else f"MIXED ({len(synthetic)} of {len(symbols)} symbols synthetic)"
    return (f"Catalog {catalog.path}: {what} market generated by Sextant ({origin['symbols']} symbols x "
            f"{origin['days']} sessions, seed {origin['seed']}, planted signal strength "
            f"{origin['signal_strength']}). Results on synthetic data show that the pipeline works and "
            "finds what was planted, not that the strategy would make money.")


# -- small helpers ------------------------------------------------------------------------------


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


def _point_latest_at(run_dir: Path) -> None:
    """``<runs>/latest`` -> the newest finished run, so a live config can name
    ``runs/latest/models``. Replaced atomically: a reader never sees it missing."""
    link = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest-{run_dir.name}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name, target_is_directory=True)
    tmp.replace(link)


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)
