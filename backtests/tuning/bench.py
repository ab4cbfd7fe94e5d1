"""`sextant bench --part tune`: trials per minute with 1 and 2 workers, and what a trial costs.

The run is trained once, outside the clock. Each worker count gets its own study over the same
trained run, on an embedded PostgreSQL in a temporary directory, so the figures are the trials
alone. The last figure compares one trial with the trading leg of ``sextant backtest`` on the
same (tuning) folds and the same settings, windows one at a time in both: a trial should cost
nothing but its backtests.
"""

import tempfile
import time
from pathlib import Path

import optuna
from rich.console import Console
from rich.table import Table

from backtests.trade import trade
from backtests.tuning.config import load_tune_config
from backtests.tuning.objectives import study_directions
from backtests.tuning.storage import open_storage
from backtests.tuning.study import create_study
from backtests.tuning.trials import RUN_DIR_ATTR, tuning_folds
from backtests.tuning.workers import run_workers
from catalog.database import embedded_postgres


def run_tune_bench(console: Console, config_path: Path, catalog: Path | None = None, trials: int = 6) -> dict[str, float]:
    """``catalog`` (``sextant bench --catalog``) replaces the walk-forward config's catalog."""
    config = load_tune_config(config_path, catalog=catalog)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="sextant-tune-bench-") as tmp, embedded_postgres(Path(tmp) / "pg") as url:
        out = Path(tmp) / "runs"
        storage = open_storage(url, config.heartbeat_seconds)
        run = create_study(config, "bench-1", storage, out, console, generate_missing_catalog=catalog is None)
        for workers in (1, 2):
            name = f"bench-{workers}"
            optuna.create_study(study_name=name, storage=storage, directions=study_directions(config),
                                load_if_exists=True).set_user_attr(RUN_DIR_ATTR, str(run.run_dir.resolve()))
            console.print(f"tune bench: {trials} trials with {workers} worker(s) ...")
            started = time.perf_counter()
            run_workers(config, name, url, out, trials, workers)
            figures[f"trials_per_min_{workers}"] = trials / (time.perf_counter() - started) * 60.0
        console.print("tune bench: the trading leg of a backtest on the same folds ...")
        started = time.perf_counter()
        trade(run, config.walkforward.strategy, Path(tmp) / "leg", folds=[f.index for f in tuning_folds(config, run)])
        leg_seconds = time.perf_counter() - started
    figures["scaling"] = figures["trials_per_min_2"] / figures["trials_per_min_1"]
    figures["trial_over_leg"] = (60.0 / figures["trials_per_min_1"]) / leg_seconds
    _print(console, figures)
    return figures


def _print(console: Console, figures: dict[str, float]) -> None:
    table = Table(title="sextant bench: tuning")
    for col, justify in (("figure", "left"), ("value", "right"), ("target", "right")):
        table.add_column(col, justify=justify)
    table.add_row("trials / min, 1 worker", f"{figures['trials_per_min_1']:.2f}", "")
    table.add_row("trials / min, 2 workers", f"{figures['trials_per_min_2']:.2f}", "")
    table.add_row("scaling 2 workers / 1", f"{figures['scaling']:.2f}x", ">= 1.7x")
    table.add_row("one trial / trading leg of a backtest (same folds)", f"{figures['trial_over_leg']:.2f}", "<= 1.1")
    console.print(table)
