"""The train step of a walk-forward run: features, folds, fit, predict, stored signals.

Per fold: features (computed once per symbol over its whole history; they are causal, so a
row never sees later bars) and labels on the train window, minus rows whose label horizon
reaches the embargo before the test window; fit every model; predict the test window in
batch; write the probabilities as MLSignal rows into the run's own signal catalog and every
fitted model into its registry. The models see arrays and labels only; what is traded on the
probabilities is the trade step's business (``backtests.trade``), so a run is trained once
and may be traded any number of times.
"""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd

from backtests.config import BacktestConfig, ConfigError
from backtests.metrics import classification_metrics
from backtests.signal_outlook import SignalOutlook
from backtests.trained import TrainedRun, ny_date
from catalog.instruments import instrument_id
from catalog.store import EmptyCatalogError, MarketCatalog
from models.dataset import Panel
from models.drift import DriftReference
from models.ensemble import STACK_NAME, ensemble_probability
from models.labels import direction_labels
from models.names import check_name
from models.outlook import Outlook
from models.pipeline import BarColumns, compute_features, feature_names, fit_fold
from models.registry import ModelRegistry, data_hash
from models.selection import select_features
from models.splits import Fold, TooFewSessionsError, test_rows, train_rows, walk_forward_folds
from models.stacking import fit_stack
from models.zoo import SignalModel, build_model
from strategies.signals import MLSignal, signals_table

DRIFT_SAMPLE_ROWS = 50_000  # training rows the drift reference's deciles are cut from, at most


@dataclass(frozen=True)
class TrainResult:
    """``folds``: per fold, its windows, row counts and each model's (and the configured
    ensemble's; with stacking also the meta-learner's and the equal-weight vote's)
    out-of-sample classification metrics; ``models``: the same over all folds;
    ``importance``: mean normalised feature importance, for the report."""

    run: TrainedRun
    folds: list[dict]
    models: dict[str, dict[str, float]]
    importance: dict[str, float]


def train(
    config: BacktestConfig,
    catalog: MarketCatalog,
    symbols: list[str],
    out_root: Path,
    on_fold_done: Callable[[], None] | None = None,
) -> TrainResult:
    """Train ``config`` on ``symbols`` of ``catalog`` into a new run directory under
    ``out_root`` (signals/, models/, predictions.parquet and the manifest the trade step
    reads)."""
    bars = read_bars(catalog, symbols)
    panel, label_end = panel_from_bars(bars, config)
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
    signal_outlook = SignalOutlook.prepare(config, catalog, symbols, folds, panel.feature_names)
    run_dir = _new_run_dir(out_root, config.name)  # only once the inputs are known to be usable
    run = TrainedRun(run_dir=run_dir, config=config, catalog_path=catalog.path.resolve(),
                     symbols=tuple(symbols), folds=tuple(folds))
    signal_catalog = MarketCatalog(run.signal_catalog_path)
    # The bar catalog's own instruments: the engine loads them from both catalogs, and bars
    # must match the stored price precision (a catalog created at cents stays at cents).
    signal_catalog.nautilus.write_data([i for i in catalog.instruments() if i.id.symbol.value in symbols])
    registry = ModelRegistry(run_dir / "models")
    if signal_outlook.universe is not None:
        signal_outlook.universe.to_parquet(run_dir / "universe.parquet")

    fold_rows: list[dict] = []
    predictions: list[pd.DataFrame] = []
    importance: dict[str, list[dict[str, float]]] = {}
    for fold in folds:
        row, preds, imp = train_fold(fold, panel, label_end, config, registry, signal_catalog, bars,
                                     signal_outlook)
        fold_rows.append(row)
        predictions.append(preds)
        for name, values in imp.items():
            importance.setdefault(name, []).append(values)
        if on_fold_done:
            on_fold_done()

    preds = pd.concat(predictions, ignore_index=True)
    preds.to_parquet(run_dir / "predictions.parquet")
    run.save()
    model_metrics = {n: classification_metrics(preds["y"].to_numpy(), preds[n].to_numpy())
                     for n in fold_rows[0]["models"]}
    return TrainResult(run=run, folds=fold_rows, models=model_metrics, importance=_mean_importance(importance))


def build_panel(catalog: MarketCatalog, symbols: list[str], config: BacktestConfig) -> tuple[Panel, np.ndarray]:
    """Features and labels for every symbol over its full history, one segment per symbol,
    and each row's label end time (for purging)."""
    return panel_from_bars(read_bars(catalog, symbols), config)


def read_bars(catalog: MarketCatalog, symbols: list[str]) -> dict[str, BarColumns]:
    """Each symbol's bars as the feature pipeline takes them (the columns a live buffer holds)."""
    frames = {symbol: catalog.read_bars(symbol) for symbol in symbols}
    return {symbol: (*(bars[c].to_numpy() for c in ("open", "high", "low", "close", "volume")), bars.index.asi8)
            for symbol, bars in frames.items()}


def panel_from_bars(bars: Mapping[str, BarColumns], config: BacktestConfig) -> tuple[Panel, np.ndarray]:
    """``build_panel`` from bars already read: the fitted feature columns stay NaN until a fold
    fits them on its training rows (``train_fold``)."""
    proxy = config.features.risk.market_proxy
    if proxy is not None and proxy not in bars:
        raise ConfigError(f"'features.risk.market_proxy': {proxy!r} is not in the universe {sorted(bars)}")
    features = compute_features(bars, config.features)
    names = feature_names(config.features)
    parts, ends = [], []
    for symbol, (*_, close, _, ts) in bars.items():
        y, label_end = direction_labels(close, ts, config.labels.horizon, config.labels.cost)
        ends.append(label_end)
        parts.append(Panel(X=features[symbol], y=y, ts_ns=ts, symbol=np.zeros(len(ts), np.int32),
                           segment_start=np.zeros(len(ts), np.int64), feature_names=names, symbols=(symbol,),
                           label_end_ns=label_end))
    return Panel.concat(parts), np.concatenate(ends)


def train_fold(
    fold: Fold,
    panel: Panel,
    label_end: np.ndarray,
    config: BacktestConfig,
    registry: ModelRegistry,
    signal_catalog: MarketCatalog,
    bars: Mapping[str, BarColumns],
    signal_outlook: SignalOutlook | None = None,
) -> tuple[dict, pd.DataFrame, dict]:
    """Fit the fold's feature blocks and every model on its train rows, predict its test rows,
    store the signals and the models (each with the fitted features); the fold's report row,
    its predictions and the models' importances. ``bars``: what ``panel`` was built from;
    ``signal_outlook``: horizon models, outlook and screen (default: the config's outlook
    without horizon models or screen). With ``config.selection`` the models see only the
    features selected inside the train window; with ``ensemble.method: stack`` the
    meta-learner is fitted there too and its probability joins the signals. A fold whose test
    window is empty (``test_start_ns == test_end_ns``) only fits and stores: the nightly
    retrain's challenger, whose test sessions have not happened yet."""
    signal_outlook = signal_outlook or SignalOutlook(config)
    fitted, panel = fit_fold(panel, bars, config.features, train_rows(panel.ts_ns, label_end, fold))
    test = test_rows(panel.ts_ns, fold)
    models = _build_models(config)
    history = max(m.history_bars for m in models.values())
    usable = np.zeros(len(panel), bool)
    usable[panel.usable_rows(history)] = True
    train = train_rows(panel.ts_ns, label_end, fold)
    train = train[usable[train] & np.isfinite(panel.y[train])]
    test = test[usable[test]]
    if len(train) == 0 or (len(test) == 0 and fold.test_end_ns > fold.test_start_ns):
        raise EmptyCatalogError(
            f"fold {fold.index}: {len(train)} train rows and {len(test)} test rows with complete "
            "features; the window has no usable bars"
        )
    seed = config.seed + fold.index
    embargo = config.walk_forward.embargo_days
    selection = select_features(panel, train, label_end, config.selection, embargo, seed) if config.selection else None
    seen = panel.select(selection.selected) if selection else panel  # the columns every model of the fold sees
    window = {
        "fold": fold.index,
        "train_start": _iso(fold.train_start_ns), "train_end": _iso(fold.train_end_ns),
        "test_start": _iso(fold.test_start_ns), "test_end": _iso(fold.test_end_ns),
        "labels": msgspec.to_builtins(config.labels),
        "universe": list(panel.symbols),
    }
    y_test = panel.y[test]
    # Every feature's training distribution (the full set, not the selection: drift is read on
    # every live input), saved with each model of the fold for the live drift check.
    drift = DriftReference.fit(panel.X[train[:: max(1, len(train) // DRIFT_SAMPLE_ROWS)]], panel.feature_names)
    probs: dict[str, np.ndarray] = {}
    importance: dict[str, dict[str, float]] = {}
    fit_seconds: dict[str, float] = {}
    for name, model in models.items():
        started = time.perf_counter()
        model.fit(seen, train, seed=seed)
        fit_seconds[name] = round(time.perf_counter() - started, 3)
        probs[name] = model.predict_proba(seen, test)
        importance[name] = model.feature_importance()
        registry.save(model, window | {
            "metrics": classification_metrics(y_test, probs[name]),
            "data_hash": data_hash(seen.X[train], panel.y[train]),
            "fitted": _fitted_span(panel.ts_ns[train], label_end[train]),
            "fit_seconds": fit_seconds[name],
        }, features=fitted, drift=drift)
    names = tuple(models)
    if config.ensemble.stacking:
        stack = fit_stack(lambda: _build_models(config), seen, train, label_end, config.ensemble, embargo, seed)
        probs[STACK_NAME] = stack.model.combine(probs)
        registry.save(stack.model, window | {
            "metrics": classification_metrics(y_test, probs[STACK_NAME]),
            "data_hash": data_hash(stack.probabilities, panel.y[stack.rows]),
            "fitted": _fitted_span(panel.ts_ns[stack.rows], label_end[stack.rows]),
        }, features=fitted, drift=drift)
    columns = config.signal_columns()  # the models, then the meta-learner
    matrix = np.column_stack([probs[n] for n in columns])
    view = signal_outlook.of(panel, test, probs, signal_outlook.fit_horizons(fold, panel, usable, registry.root))
    traded = signal_outlook.traded(panel, test)
    write_signals(signal_catalog, panel, test[traded], columns, matrix[traded], view.take(traded))
    evaluated = dict(probs)
    if config.ensemble.stacking:  # what the meta-learner must beat: the untuned equal-weight vote
        evaluated["vote"] = ensemble_probability(probs, dict.fromkeys(names, 1.0))
    evaluated["ensemble"] = ensemble_probability(probs, config.weights())
    row = {
        "fold": fold.index,
        "train_start": ny_date(fold.train_start_ns), "train_end": ny_date(fold.train_end_ns - 1),
        "test_start": ny_date(fold.test_start_ns), "test_end": ny_date(fold.test_end_ns - 1),
        "train_rows": len(train), "test_rows": len(test),
        "models": {n: classification_metrics(y_test, p) | ({"fit_seconds": fit_seconds[n]} if n in fit_seconds else {})
                   for n, p in evaluated.items()},
    }
    if config.ensemble.stacking:
        row["stack_weights"] = stack.model.feature_importance()
    if selection:
        row["selection"] = selection.summary()
    preds = pd.DataFrame({"fold": fold.index, "ts": panel.ts_ns[test],
                          "symbol": np.asarray(panel.symbols)[panel.symbol[test]], "y": y_test} | evaluated
                         | signal_outlook.prediction_columns(test, view, traded))
    return row, preds, importance


def _build_models(config: BacktestConfig) -> dict[str, SignalModel]:
    """Fresh, unfitted models of ``config``: per fold, and per inner fold of the meta-learner."""
    return {name: build_model(_kind(name), spec.params, name=name, preset=spec.preset)
            for name, spec in config.models.items()}


def _fitted_span(ts_ns: np.ndarray, label_end_ns: np.ndarray) -> dict:
    """What the model was fitted on, from the rows themselves rather than the fold bounds, so
    an audit can check that no fitted row (nor the future its label looked at) reaches the
    embargo or the test window."""
    return {"rows": len(ts_ns), "first_ts": _iso(int(ts_ns.min())), "last_ts": _iso(int(ts_ns.max())),
            "last_label_end": _iso(int(label_end_ns.max()))}


def write_signals(catalog: MarketCatalog, panel: Panel, rows: np.ndarray, names: tuple[str, ...], matrix: np.ndarray,
                  view: Outlook) -> None:
    """``rows``' probabilities (``matrix``, one column per name) and outlook as MLSignal rows."""
    codes = panel.symbol[rows]
    for code in np.unique(codes):
        mask = codes == code
        iid = str(instrument_id(panel.symbols[code]))
        catalog.write_table(MLSignal, iid, signals_table(iid, names, panel.ts_ns[rows][mask], matrix[mask],
                                                         view.take(mask)))


def _kind(name: str) -> str:
    """A model entry's kind is its name up to an optional '@' suffix (e.g. 'lightgbm@deep')."""
    return name.split("@", 1)[0]


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


def _iso(ns: int) -> str:
    return pd.Timestamp(ns, tz="UTC").isoformat()
