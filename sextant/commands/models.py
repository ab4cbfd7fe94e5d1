"""`sextant models ...`: the registry's champion and challengers (list, retrain, promote, pin,
rollback).

An ensemble is named by any of its model versions (NAME VERSION): the models of one fold are
pinned, promoted and rolled back together (``models.promotion``)."""

import datetime as dt
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from models.promotion import (
    METRIC_KEYS,
    Decision,
    Ensemble,
    Evidence,
    PromotionError,
    PromotionStore,
    ensemble_of,
    find_ensembles,
    pin_by_hand,
    promote_by_hand,
)
from models.registry import ModelNotFoundError, ModelRegistry
from sextant.commands.common import console, fail, ny, writable_dir

models_app = typer.Typer(help="Model registry: champion/challenger list, nightly retrain, promote, pin, rollback.",
                         no_args_is_help=True)
RegistryOpt = Annotated[Path, typer.Option("--registry", help="a model registry (a run's models/)")]
NameArg = Annotated[str, typer.Argument(help="a model name in the registry")]
VersionArg = Annotated[int, typer.Argument(help="its version; the ensemble trained with it is meant")]
DEFAULT_REGISTRY = Path("runs/latest/models")


@models_app.command("list")
def models_list(registry: RegistryOpt = DEFAULT_REGISTRY) -> None:
    """Every ensemble (one per fold) with the champion marked and each challenger's evidence."""
    reg = _registry(registry)
    store = PromotionStore(reg.root)
    champion = store.champion().fold if store.has_champion() else None
    table = Table(title=f"models in {reg.root}", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("fold", "role", "models", "trained on (NY sessions)", "latest evaluation"):
        table.add_column(column)
    for ensemble in find_ensembles(reg):
        role = ("* champion" if ensemble.fold == champion else
                "challenger" if champion is not None and ensemble.fold > champion else "")
        evaluation = store.latest_evaluation(ensemble.fold)
        table.add_row(str(ensemble.fold), role, ensemble.members(),
                      f"{ny(ensemble.train_start_ns, '%Y-%m-%d')}..{ny(ensemble.train_end_ns - 1, '%Y-%m-%d')}",
                      _evaluation_line(evaluation) if evaluation else "-")
    console.print(table)
    if champion is None:
        console.print("no champion pinned: `sextant live` pins the newest ensemble, or `sextant models pin NAME "
                      "VERSION`")
    history = store.history()
    for decision in history[-5:]:
        console.print(escape(_decision_line(decision)))
    if len(history) > 5:
        console.print(f"({len(history) - 5} earlier decisions in {store.path})")


@models_app.command("retrain")
def models_retrain(
    config: Annotated[Path, typer.Argument(help="the walk-forward YAML the registry was trained with")],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    catalog: Annotated[Path | None, typer.Option("--catalog", help="override the config's catalog path")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="the last completed session (YYYY-MM-DD); "
                                              "default: today in New York, so run it after the close")] = None,
    out: Annotated[Path, typer.Option("--out", help="where the evaluation backtests go")] = Path("runs/nightly"),
) -> None:
    """One night by hand (what the scheduler runs after the close): train a challenger on the
    latest window, judge the newest waiting one against the champion, promote it if it passes."""
    from backtests.config import ConfigError, load_config
    from backtests.nightly import retrain_and_evaluate
    from backtests.window import WindowCrashedError
    from catalog.errors import CatalogError
    from catalog.store import open_catalog

    day = _session_date(as_of)
    reg = _registry(registry)
    try:
        cfg = load_config(config, overrides={"catalog.path": str(catalog)} if catalog else None)
        decision = retrain_and_evaluate(cfg, open_catalog(cfg.catalog.path), reg, day,
                                        writable_dir(out) / f"{cfg.name}-{day}")
    except (ConfigError, CatalogError, PromotionError, WindowCrashedError) as e:
        fail(str(e))
    if decision.evidence is not None:
        _print_evidence(decision)
    console.print(escape(_decision_line(decision)))
    if decision.trained is not None:
        console.print(f"trained tonight: {escape(decision.trained.label())}")


@models_app.command("promote")
def models_promote(name: NameArg, version: VersionArg, registry: RegistryOpt = DEFAULT_REGISTRY,
                   force: Annotated[bool, typer.Option("--force", help="promote although the guard says no")] = False,
                   ) -> None:
    """Make the ensemble of NAME VERSION the champion, on its latest evaluation's evidence."""
    reg = _registry(registry)
    ensemble = _ensemble(reg, name, version)
    store = PromotionStore(reg.root)
    evaluation = store.latest_evaluation(ensemble.fold)
    if evaluation is not None and evaluation.evidence is not None:
        _print_evidence(evaluation)
    try:
        decision = promote_by_hand(store, ensemble, force=force)
    except PromotionError as e:
        fail(str(e))
    console.print(escape(_decision_line(decision)))


@models_app.command("pin")
def models_pin(name: NameArg, version: VersionArg, registry: RegistryOpt = DEFAULT_REGISTRY) -> None:
    """Make the ensemble of NAME VERSION the champion without an evaluation (what live loads)."""
    reg = _registry(registry)
    decision = pin_by_hand(PromotionStore(reg.root), _ensemble(reg, name, version))
    console.print(escape(_decision_line(decision)))


@models_app.command("rollback")
def models_rollback(registry: RegistryOpt = DEFAULT_REGISTRY) -> None:
    """Restore the champion before the current one."""
    reg = _registry(registry)
    try:
        decision = PromotionStore(reg.root).rollback()
    except PromotionError as e:
        fail(str(e))
    console.print(escape(_decision_line(decision)))


def _session_date(text: str | None) -> dt.date:
    if text is None:
        return pd.Timestamp.now(tz="America/New_York").date()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        fail(f"--as-of {text!r} is not a date; give YYYY-MM-DD")


def _registry(path: Path) -> ModelRegistry:
    registry = ModelRegistry(path)
    if not registry.names():
        fail(f"--registry {path}: no saved models there (a walk-forward run's models/ is one)")
    return registry


def _ensemble(registry: ModelRegistry, name: str, version: int) -> Ensemble:
    """The ensemble of a model version; an unknown name or version fails with one line."""
    names = registry.names()
    if name not in names:
        fail(f"no model {name!r} in {registry.root}; saved models: {', '.join(names)}")
    try:
        return ensemble_of(registry, name, version)
    except ModelNotFoundError as e:
        fail(str(e))


def _evaluation_line(decision: Decision) -> str:
    evidence: Evidence = decision.evidence
    return (f"{decision.action}{' (forced)' if decision.forced else ''} vs fold {decision.previous.fold if decision.previous else '-'}: {evidence.metric} "
            f"{_num(evidence.challenger_value)} vs {_num(evidence.champion_value)} (margin {evidence.margin:g}, "
            f"{evidence.sessions[0]}..{evidence.sessions[-1]})")


def _print_evidence(decision: Decision) -> None:
    evidence = decision.evidence
    table = Table(title=f"evaluation of {decision.as_of}: {len(evidence.sessions)} sessions {evidence.sessions[0]}.."
                        f"{evidence.sessions[-1]}", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("metric", f"champion fold {decision.previous.fold}", f"challenger fold {decision.challenger.fold}"):
        table.add_column(column, justify="right")
    for key in ("sharpe", "total_return", "auc", "trades", "max_drawdown"):
        table.add_row(key + (" (guard)" if key == METRIC_KEYS[evidence.metric] else ""),
                      _num(evidence.champion_metrics.get(key)), _num(evidence.challenger_metrics.get(key)))
    console.print(table)


def _decision_line(decision: Decision) -> str:
    subject = decision.challenger.label() if decision.challenger else "-"
    forced = " (forced)" if decision.forced else ""
    champion = f"; champion: fold {decision.champion.fold}" if decision.champion else ""
    return f"{decision.at[:19]} {decision.action}{forced} {subject}: {decision.reason}{champion}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
