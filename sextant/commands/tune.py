"""`sextant tune`: an Optuna study over the ensemble's weights and thresholds; `sextant tune show`.

``sextant tune CONFIG --trials N`` trains the walk-forward run once, runs the trials in
``--workers`` processes on one study, then evaluates the best trial on the holdout and writes
<out>/tune-<study>/ (best.yaml, summary.json, returns.parquet). ``sextant tune show`` prints
a study's best trials and its summary; ``sextant tune dashboard`` opens optuna-dashboard (the
optional extra ``dashboard``) on the study's storage. The study lives in ``--storage`` (any Optuna URL;
``postgresql://...`` is shared by several machines) or, by default, in the embedded
PostgreSQL under data/postgres.
"""

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from backtests.config import ConfigError
from catalog.errors import CatalogError
from sextant.commands.common import console, fail, writable_dir

SHOW = "show"
DASHBOARD = "dashboard"


@contextmanager
def _storage_url(storage: str | None) -> Iterator[str]:
    """``storage``, or the embedded PostgreSQL's URL while the block runs."""
    if storage:
        yield storage
        return
    from catalog.database import embedded_postgres

    with embedded_postgres() as url:
        yield url


def tune(
    config: Annotated[str, typer.Argument(help="tune YAML config, or 'show' / 'dashboard' with --study")],
    trials: Annotated[int, typer.Option("--trials", min=1, help="trials the study should hold in total")] = 20,
    study: Annotated[str | None, typer.Option("--study", help="study name (default: the config's file name)")] = None,
    storage: Annotated[str | None, typer.Option("--storage", help="Optuna storage URL (default: embedded PostgreSQL)")] = None,
    catalog: Annotated[Path | None, typer.Option("--catalog", help="override the walk-forward catalog path (must exist)")] = None,
    out: Annotated[Path, typer.Option("--out", help="runs directory; the study's files go to <out>/tune-<study>/")] = Path("runs"),
    workers: Annotated[int, typer.Option("--workers", min=1, help="worker processes on the study")] = 1,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="tune dashboard: port to serve on")] = 8080,
    host: Annotated[str, typer.Option("--host", help="tune dashboard: address to serve on")] = "127.0.0.1",
) -> None:
    """Tune the ensemble's weights and thresholds on a trained walk-forward run (or `tune show`,
    `tune dashboard`)."""
    from backtests.tuning.dashboard import DashboardError
    from backtests.tuning.storage import StorageError
    from backtests.tuning.trials import StudyError
    from backtests.window import WindowCrashedError

    try:
        if config == SHOW:
            if study is None:
                fail("sextant tune show needs --study NAME")
            with _storage_url(storage) as url:
                _show(study, url, out)
            return
        if config == DASHBOARD:
            if study is None:
                fail("sextant tune dashboard needs --study NAME")
            _dashboard(study, storage, host, port)
            return
        _run(Path(config), trials, study, storage, catalog, writable_dir(out), workers)
    except (ConfigError, CatalogError, StorageError, StudyError, WindowCrashedError, DashboardError) as e:
        fail(str(e))


def _run(config_path: Path, trials: int, study: str | None, storage: str | None, catalog: Path | None,
         out: Path, workers: int) -> None:
    from backtests.tuning.config import load_tune_config
    from backtests.tuning.storage import open_storage
    from backtests.tuning.study import create_study, finish_study
    from backtests.tuning.workers import run_workers
    from models.names import NAME_PATTERN, NAME_RULE

    name = study or config_path.stem
    if not re.fullmatch(NAME_PATTERN, name):
        fail(f"--study {name!r} must be {NAME_RULE} (it names the directory <out>/tune-<study>)")
    config = load_tune_config(config_path, catalog=catalog)
    with _storage_url(storage) as url:
        create_study(config, name, open_storage(url, config.heartbeat_seconds), out, console,
                     generate_missing_catalog=catalog is None)
        with Progress(TextColumn("[bold]trials"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("best {task.fields[best]}  pruned {task.fields[pruned]}  "
                                 "failed {task.fields[failed]}  workers {task.fields[workers]}"),
                      TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console) as bar:
            task = bar.add_task("trials", total=trials, best="-", pruned=0, failed=0, workers=0)

            def show_progress(p) -> None:
                bar.update(task, completed=p.done, best="-" if p.best is None else f"{p.best:.2f}",
                           pruned=p.pruned, failed=p.failed, workers=len(p.workers))

            run_workers(config, name, url, out, trials, workers, show_progress)
        summary = finish_study(config, name, open_storage(url, config.heartbeat_seconds), out)
    _print_summary(summary)


def _print_summary(summary: dict) -> None:
    best, holdout, stats = summary["best"], summary["holdout"], summary["overfitting"]
    console.print(f"[bold]study[/] {summary['study']}: {summary['trials']}")
    console.print(f"[bold]best trial[/] {best['trial']}: Sharpe {best['value']:.2f} on tuning folds "
                  f"{summary['tuning_folds']}" + ("  [red](too few trades)[/]" if best["too_few_trades"] else ""))
    if "pareto" in summary:
        pareto = summary["pareto"]
        console.print(f"[bold]Pareto front[/] trials {pareto['trials']}: best Sharpe within max drawdown "
                      f"{pareto['max_drawdown_limit']:.1%}" + ("" if pareto["best_within_limit"]
                                                              else "  [yellow](none within: smallest drawdown taken)[/]"))
    console.print(f"[bold]holdout[/] folds {summary['holdout_folds']}: best Sharpe {holdout['best']['sharpe']:.2f}, "
                  f"equal weights {holdout['equal_weight']['sharpe']:.2f}"
                  + (f"  [yellow](holdout looked at {holdout['looks']} times)[/]" if holdout["looks"] > 1 else ""))
    console.print(f"[bold]overfitting[/] {stats.get('verdict') or stats.get('error')}")
    console.print(f"best.yaml: {summary['best_yaml']}")
    console.print(f"report: {summary['report']}")


def _dashboard(name: str, storage: str | None, host: str, port: int) -> None:
    from backtests.tuning.dashboard import dashboard_argv, run_dashboard

    with _storage_url(storage) as url:
        argv = dashboard_argv(name, url, host, port)
        console.print(f"optuna-dashboard on study {name!r}: http://{host}:{port}/ (Ctrl-C stops it)")
        code = run_dashboard(argv)
    if code:
        raise typer.Exit(code)


def _show(name: str, url: str, out: Path) -> None:
    import optuna
    from optuna.trial import TrialState

    from backtests.tuning.objectives import trial_sharpe
    from backtests.tuning.storage import open_storage
    from backtests.tuning.trials import StudyFiles

    storage = open_storage(url, heartbeat_seconds=60)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        fail(f"no study {name!r} in the storage; studies: {[s.study_name for s in optuna.get_all_study_summaries(storage)]}")
    complete = sorted((t for t in study.trials if t.state == TrialState.COMPLETE), key=lambda t: -trial_sharpe(t))
    table = Table(title=f"study {name}: top trials")
    for column in ("trial", "Sharpe", "trades", "weights", "threshold"):
        table.add_column(column)
    for t in complete[:10]:
        strategy = t.user_attrs.get("strategy", {})
        weights = " ".join(f"{k}={v:.2f}" for k, v in strategy.get("weights", {}).items())
        table.add_row(str(t.number), f"{trial_sharpe(t):.2f}", str(t.user_attrs.get("trading", {}).get("trades", "-")),
                      weights, f"{strategy.get('entry_threshold', '-')}")
    console.print(table)
    summary_path = StudyFiles.of(out, name).summary
    if summary_path.is_file():
        _print_summary(json.loads(summary_path.read_text()))
    else:
        console.print(f"no {summary_path} yet (the study has not finished a run)")
