"""The walk-forward runner: train on a window, purge and embargo, predict the next window,
trade it in the NautilusTrader backtest engine, report.

Per fold: features (computed once per symbol over its whole history; they are causal, so a
row never sees later bars) and labels on the train window, minus rows whose label horizon
reaches the embargo before the test window; fit every model; predict the test window in batch;
write the probabilities as MLSignal rows into the run's own signal catalog. Then each test
window is replayed through a BacktestNode in its own process, and the run is summarised in
metrics.json, fills/positions Parquet and report.html.
"""

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from backtests.config import BacktestConfig
from backtests.metrics import chain_equity, classification_metrics, daily_equity, trading_metrics
from backtests.report import write_report
from backtests.window import VenueSpec, WindowResult, WindowSpec, run_windows
from catalog.instruments import instrument_id, parse_symbol
from catalog.jobs import generate_catalog
from catalog.sessions import trading_sessions
from catalog.store import EmptyCatalogError, MarketCatalog, open_catalog
from models.dataset import Panel
from models.ensemble import ensemble_probability
from models.features import FEATURE_NAMES, feature_matrix
from models.labels import direction_labels
from models.names import check_name
from models.registry import ModelRegistry, data_hash
from models.splits import Fold, TooFewSessionsError, test_rows, train_rows, walk_forward_folds
from models.zoo import build_model
from strategies.signals import MLSignal, signals_table


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
    symbols = _universe(config, catalog)
    started = time.perf_counter()

    panel, label_end = build_panel(catalog, symbols, config)
    try:
        folds = walk_forward_folds(
            panel.ts_ns,
            n_folds=config.walk_forward.folds,
            train_days=config.walk_forward.train_days,
            test_days=config.walk_forward.test_days,
            embargo_days=config.walk_forward.embargo_days,
            anchored=config.walk_forward.anchored,
        )
    except TooFewSessionsError as e:
        raise EmptyCatalogError(f"catalog {catalog.path}: {e}") from e
    run_dir = _new_run_dir(out_root, config.name)  # only once the inputs are known to be usable
    signal_catalog = MarketCatalog(run_dir / "signals")
    # The bar catalog's own instruments: the engine loads them from both catalogs, and bars
    # must match the stored price precision (a catalog created at cents stays at cents).
    signal_catalog.nautilus.write_data([i for i in catalog.instruments() if i.id.symbol.value in symbols])
    registry = ModelRegistry(run_dir / "models")

    with _progress(console) as progress:
        train_task = progress.add_task("train + predict folds", total=len(folds))
        fold_rows: list[dict] = []
        predictions: list[pd.DataFrame] = []
        importance: dict[str, list[dict[str, float]]] = {}
        for fold in folds:
            row, preds, imp = _train_fold(fold, panel, label_end, config, registry, signal_catalog)
            fold_rows.append(row)
            predictions.append(preds)
            for name, values in imp.items():
                importance.setdefault(name, []).append(values)
            progress.advance(train_task)
        train_seconds = time.perf_counter() - started

        specs = [_window_spec(fold, catalog, run_dir, symbols, config) for fold in folds]
        bt_task = progress.add_task("backtest test windows", total=len(specs))
        window_results = run_windows(specs, workers=config.workers, on_done=lambda _: progress.advance(bt_task))

    preds = pd.concat(predictions, ignore_index=True)
    preds.to_parquet(run_dir / "predictions.parquet")
    metrics, equity_curve = _summarise(config, folds, fold_rows, preds, window_results, run_dir, catalog, symbols)
    metrics["run"]["train_seconds"] = round(train_seconds, 1)
    metrics["run"]["total_seconds"] = round(time.perf_counter() - started, 1)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_json_default))
    write_report(run_dir / "report.html", metrics, equity_curve, fold_rows, _mean_importance(importance))
    _point_latest_at(run_dir)
    return RunResult(run_dir=run_dir, metrics=metrics)


# -- data ---------------------------------------------------------------------------------------


def ensure_catalog(config: BacktestConfig, console: Console, generate_missing: bool = True) -> MarketCatalog:
    """The configured catalog. With ``generate_missing`` (the config's own catalog) a path that
    does not exist or is an empty directory is generated from ``catalog.generate``; without it
    (a path the user typed) it is an error, since a typo must not backtest a made-up market."""
    path = config.catalog.path
    if not generate_missing or (path.is_dir() and any(path.iterdir())):
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


def _universe(config: BacktestConfig, catalog: MarketCatalog) -> list[str]:
    available = catalog.symbols()
    if not available:
        raise EmptyCatalogError(f"catalog {catalog.path} holds no bars")
    if config.universe is None:
        return available
    universe = list(dict.fromkeys(parse_symbol(s) for s in config.universe))
    missing = [s for s in universe if s not in available]
    if missing:
        raise EmptyCatalogError(f"universe symbols {missing} have no bars in catalog {catalog.path}")
    return universe


def build_panel(catalog: MarketCatalog, symbols: list[str], config: BacktestConfig) -> tuple[Panel, np.ndarray]:
    """Features and labels for every symbol over its full history, one segment per symbol,
    and each row's label end time (for purging)."""
    parts, ends = [], []
    for symbol in symbols:
        bars = catalog.read_bars(symbol)
        ts = bars.index.asi8
        X = feature_matrix(
            bars["open"].to_numpy(), bars["high"].to_numpy(), bars["low"].to_numpy(),
            bars["close"].to_numpy(), bars["volume"].to_numpy(), ts,
        )
        y, label_end = direction_labels(bars["close"].to_numpy(), ts, config.labels.horizon, config.labels.cost)
        ends.append(label_end)
        parts.append(Panel(X=X, y=y, ts_ns=ts, symbol=np.zeros(len(ts), np.int32), segment_start=np.zeros(len(ts), np.int64),
                           feature_names=FEATURE_NAMES, symbols=(symbol,)))
    return Panel.concat(parts), np.concatenate(ends)


# -- one fold -----------------------------------------------------------------------------------


def _train_fold(
    fold: Fold,
    panel: Panel,
    label_end: np.ndarray,
    config: BacktestConfig,
    registry: ModelRegistry,
    signal_catalog: MarketCatalog,
) -> tuple[dict, pd.DataFrame, dict]:
    test = test_rows(panel.ts_ns, fold)
    models = {name: build_model(_kind(name), spec.params, name=name) for name, spec in config.models.items()}
    history = max(m.history_bars for m in models.values())
    usable = np.zeros(len(panel), bool)
    usable[panel.usable_rows(history)] = True
    train = train_rows(panel.ts_ns, label_end, fold)
    train = train[usable[train] & np.isfinite(panel.y[train])]
    test = test[usable[test]]
    if len(train) == 0 or len(test) == 0:
        raise EmptyCatalogError(
            f"fold {fold.index}: {len(train)} train rows and {len(test)} test rows with complete "
            "features; the window has no usable bars"
        )
    probs: dict[str, np.ndarray] = {}
    importance: dict[str, dict[str, float]] = {}
    for name, model in models.items():
        model.fit(panel, train, seed=config.seed + fold.index)
        probs[name] = model.predict_proba(panel, test)
        importance[name] = model.feature_importance()
        registry.save(model, {
            "fold": fold.index,
            "train_start": _iso(fold.train_start_ns), "train_end": _iso(fold.train_end_ns),
            "test_start": _iso(fold.test_start_ns), "test_end": _iso(fold.test_end_ns),
            "labels": msgspec.to_builtins(config.labels),
            "universe": list(panel.symbols),
            "metrics": classification_metrics(panel.y[test], probs[name]),
            "data_hash": data_hash(panel.X[train], panel.y[train]),
            "fitted": _fitted_span(panel.ts_ns[train], label_end[train]),
        })
    names = tuple(models)
    matrix = np.column_stack([probs[n] for n in names])
    _write_signals(signal_catalog, panel, test, names, matrix)
    y_test = panel.y[test]
    ens = ensemble_probability(probs, config.weights())
    row = {
        "fold": fold.index,
        "train_start": _day(fold.train_start_ns), "train_end": _day(fold.train_end_ns - 1),
        "test_start": _day(fold.test_start_ns), "test_end": _day(fold.test_end_ns - 1),
        "train_rows": len(train), "test_rows": len(test),
        "models": {n: classification_metrics(y_test, probs[n]) for n in names}
        | {"ensemble": classification_metrics(y_test, ens)},
    }
    preds = pd.DataFrame({"fold": fold.index, "ts": panel.ts_ns[test],
                          "symbol": np.asarray(panel.symbols)[panel.symbol[test]], "y": y_test}
                         | {n: probs[n] for n in names} | {"ensemble": ens})
    return row, preds, importance


def _fitted_span(ts_ns: np.ndarray, label_end_ns: np.ndarray) -> dict:
    """What the model was fitted on, from the rows themselves rather than the fold bounds, so
    an audit can check that no fitted row (nor the future its label looked at) reaches the
    embargo or the test window."""
    return {"rows": len(ts_ns), "first_ts": _iso(int(ts_ns.min())), "last_ts": _iso(int(ts_ns.max())),
            "last_label_end": _iso(int(label_end_ns.max()))}


def _write_signals(catalog: MarketCatalog, panel: Panel, rows: np.ndarray, names: tuple[str, ...], matrix: np.ndarray) -> None:
    codes = panel.symbol[rows]
    for code in np.unique(codes):
        mask = codes == code
        iid = str(instrument_id(panel.symbols[code]))
        catalog.write_table(MLSignal, iid, signals_table(iid, names, panel.ts_ns[rows][mask], matrix[mask]))


def _kind(name: str) -> str:
    """A model entry's kind is its name up to an optional '@' suffix (e.g. 'lightgbm@deep')."""
    return name.split("@", 1)[0]


# -- backtest windows ---------------------------------------------------------------------------


def _window_spec(fold: Fold, catalog: MarketCatalog, run_dir: Path, symbols: list[str], config: BacktestConfig) -> WindowSpec:
    ids = tuple(str(instrument_id(s)) for s in symbols)
    return WindowSpec(
        name=f"fold-{fold.index}",
        catalog_path=str(catalog.path.resolve()),
        signal_catalog_path=str((run_dir / "signals").resolve()),
        instrument_ids=ids,
        start_ns=fold.test_start_ns,
        end_ns=fold.test_end_ns,
        strategy=config.strategy_settings(list(ids)),
        venue=VenueSpec(
            starting_cash=config.venue.starting_cash,
            commission_per_share=config.venue.commission_per_share,
            min_commission=config.venue.min_commission,
            slippage_probability=config.venue.slippage_probability,
            seed=config.seed + fold.index,
        ),
        out_dir=str(run_dir / "windows" / f"fold-{fold.index}"),
    )


# -- summary ------------------------------------------------------------------------------------


def _summarise(config, folds, fold_rows, preds, windows: list[WindowResult], run_dir, catalog, symbols):
    accounts = [pd.read_parquet(w.account_path) for w in windows]
    positions = [pd.read_parquet(w.positions_path).assign(fold=f.index) for w, f in zip(windows, folds)]
    fills = [pd.read_parquet(w.fills_path).assign(fold=f.index) for w, f in zip(windows, folds)]
    all_positions = pd.concat(positions, ignore_index=True) if positions else pd.DataFrame()
    pd.concat(fills, ignore_index=True).to_parquet(run_dir / "fills.parquet")
    all_positions.to_parquet(run_dir / "positions.parquet")

    cash = config.venue.starting_cash
    equity = chain_equity(accounts, cash)
    sessions = trading_sessions(_day(folds[0].test_start_ns), _day(folds[-1].test_end_ns - 1))
    test_sessions = sessions[[any(f.test_start_ns <= c.value and o.value < f.test_end_ns for f in folds)
                              for o, c in zip(sessions["open"], sessions["close"])]]
    session_seconds = float((test_sessions["close"] - test_sessions["open"]).dt.total_seconds().sum())
    daily = daily_equity(equity, pd.DatetimeIndex(test_sessions.index))
    trading = trading_metrics(equity, daily, all_positions, cash, session_seconds)

    for row, acct, pos in zip(fold_rows, accounts, positions):
        row["return"] = float(acct["total"].astype(float).iloc[-1] / cash - 1.0) if not acct.empty else 0.0
        row["trades"] = int(pos["ts_closed"].notna().sum()) if not pos.empty else 0

    model_names = [*config.models, "ensemble"]
    model_metrics = {n: classification_metrics(preds["y"].to_numpy(), preds[n].to_numpy()) for n in model_names}
    metrics = {
        "run": {
            "name": config.name,
            "run_dir": str(run_dir),
            "catalog": str(catalog.path),
            "symbols": symbols,
            "folds": len(folds),
            "engine_events": int(sum(w.iterations for w in windows)),
            "backtest_seconds": round(sum(w.elapsed_s for w in windows), 1),
            "data_note": _data_note(catalog, symbols),
            "config": config.to_dict(),
        },
        "trading": trading,
        "models": model_metrics,
        "folds": fold_rows,
    }
    return metrics, equity


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


def _mean_importance(importance: dict[str, list[dict[str, float]]]) -> dict[str, float]:
    """Each model's importances (GBM gain, LSTM permutation loss increase), negatives clipped to
    zero and normalised to sum to 1, averaged over folds and models."""
    totals: dict[str, float] = {}
    count = 0
    for per_fold in importance.values():
        for raw in per_fold:
            values = {k: max(v, 0.0) for k, v in raw.items()}
            total = sum(values.values())
            if total <= 0:
                continue
            count += 1
            for feature, value in values.items():
                totals[feature] = totals.get(feature, 0.0) + value / total
    return {k: v / count for k, v in totals.items()} if count else {}


# -- small helpers ------------------------------------------------------------------------------


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


def _new_run_dir(root: Path, name: str) -> Path:
    check_name(name, "run name")  # a config built in code skips load-time validation
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = Path(root) / f"{name}-{stamp}"
    suffix = 1
    while run_dir.exists():
        run_dir = Path(root) / f"{name}-{stamp}-{suffix}"
        suffix += 1
    run_dir.mkdir(parents=True)
    return run_dir


def _point_latest_at(run_dir: Path) -> None:
    """``<runs>/latest`` -> the newest finished run, so a live config can name
    ``runs/latest/models``. Replaced atomically: a reader never sees it missing."""
    link = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest-{run_dir.name}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name, target_is_directory=True)
    tmp.replace(link)


def _iso(ns: int) -> str:
    return pd.Timestamp(ns, tz="UTC").isoformat()


def _day(ns: int) -> str:
    return str(pd.Timestamp(ns, tz="UTC").tz_convert("America/New_York").date())


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)
