"""`sextant bench --part zoo`: fit time per fold and batch inference rows/s of every model kind.

The data is one fold of the default walk-forward config on the default synthetic catalog (12
symbols, a 35-session train window, 1 embargo session, a 20-session test window of one-minute
bars, 42 features, 15-bar labels), so the fit time is what a walk-forward pays per model and
fold. Each kind runs with its CPU-sized defaults, on the threads those give it (torch kinds: 1; trees and forest: 2).
"""

import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from backtests.config import BacktestConfig, WalkForwardConfig
from backtests.train import build_panel
from catalog.jobs import generate_catalog
from models.splits import test_rows, train_rows, walk_forward_folds
from models.zoo import MODEL_KINDS, build_model


def run_zoo_bench(
    console: Console,
    n_symbols: int = 12,
    train_days: int = 35,
    test_days: int = 20,
    kinds: tuple[str, ...] = tuple(MODEL_KINDS),
) -> dict[str, dict[str, float]]:
    """Per kind: fit seconds, rows fitted (after the model's own sampling), test rows and
    batch inference rows/s; printed as a table and returned."""
    walk_forward = WalkForwardConfig(folds=1, train_days=train_days, test_days=test_days,
                                     embargo_days=1)
    config = BacktestConfig(walk_forward=walk_forward)
    with tempfile.TemporaryDirectory(prefix="sextant-zoo-bench-") as tmp:
        n_days = train_days + 1 + test_days
        catalog = generate_catalog(Path(tmp) / "catalog", n_symbols, n_days, seed=11,
                                   signal_strength=0.15)
        panel, label_end = build_panel(catalog, catalog.symbols(), config)
    (fold,) = walk_forward_folds(panel.ts_ns, n_folds=1, train_days=train_days,
                                 test_days=test_days, embargo_days=1)
    console.print(f"zoo bench: {n_symbols} symbols, {train_days} train + {test_days} test sessions, "
                  f"{len(panel):,} one-minute rows x {len(panel.feature_names)} features")
    figures: dict[str, dict[str, float]] = {}
    for kind in kinds:
        model = build_model(kind)
        usable = np.zeros(len(panel), bool)
        usable[panel.usable_rows(model.history_bars)] = True
        train = train_rows(panel.ts_ns, label_end, fold)
        train = train[usable[train] & np.isfinite(panel.y[train])]
        test = test_rows(panel.ts_ns, fold)
        test = test[usable[test]]
        started = time.perf_counter()
        model.fit(panel, train, seed=0)
        fit_s = time.perf_counter() - started
        started = time.perf_counter()
        model.predict_proba(panel, test)
        predict_s = time.perf_counter() - started
        figures[kind] = {"fit_s": fit_s, "train_rows": len(train),
                         "fitted_rows": model.fit_info["train_rows"], "test_rows": len(test),
                         "rows_per_s": len(test) / predict_s, "threads": model.threads}
        console.print(f"  {kind}: fit {fit_s:.1f} s, {figures[kind]['rows_per_s']:,.0f} rows/s")
    _print(console, figures)
    return figures


def _print(console: Console, figures: dict[str, dict[str, float]]) -> None:
    table = Table(title="sextant bench: model zoo, one walk-forward fold (2 cores)")
    for col, justify in (("model", "left"), ("threads", "right"), ("train rows (fitted)", "right"),
                         ("fit s", "right"), ("test rows", "right"), ("inference rows/s", "right")):
        table.add_column(col, justify=justify)
    for kind, f in figures.items():
        table.add_row(kind, f"{f['threads']:.0f}", f"{f['train_rows']:,.0f} ({f['fitted_rows']:,.0f})",
                      f"{f['fit_s']:.1f}", f"{f['test_rows']:,.0f}", f"{f['rows_per_s']:,.0f}")
    console.print(table)
