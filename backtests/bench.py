"""`sextant bench`: the throughput figures the issues name, measured in one run.

Baseline and subject share everything that is not under test: the same catalog, the same
bars, the same process-per-backtest runner. The bare engine runs a strategy that subscribes
to the bars and does nothing; the full run replays one MLSignal per bar and trades brackets
with the EnsembleStrategy. Their ratio is the cost of our strategy layer.
"""

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.trading.strategy import Strategy
from rich.console import Console
from rich.table import Table

from backtests.window import VenueSpec, WindowResult, WindowSpec, run_windows
from catalog.csv_import import read_minute_csv
from catalog.instruments import BAR_SPEC, instrument_id
from catalog.jobs import generate_catalog
from catalog.sessions import session_minutes, sessions_ending
from catalog.store import EmptyCatalogError, MarketCatalog, open_catalog
from models.dataset import Panel
from models.features import FEATURE_NAMES, feature_matrix
from models.labels import direction_labels
from models.zoo import build_model
from strategies.settings import DEFAULT_WEIGHTS
from strategies.signals import MLSignal, signals_table

TRAIN_ROWS = 100_000
ENGINE_REPEATS = 2  # a shared 2-core machine is noisy: alternate the runs, keep each one's best


class IdleStrategyConfig(StrategyConfig, frozen=True, kw_only=True):
    instrument_ids: list[str]


class IdleStrategy(Strategy):
    """The baseline: receives every bar, decides nothing."""

    def on_start(self) -> None:
        for iid in self.config.instrument_ids:
            self.subscribe_bars(BarType.from_str(f"{iid}-{BAR_SPEC}"))

    def on_bar(self, bar: Bar) -> None:
        pass


def run_bench(console: Console, catalog: Path | None = None, n_symbols: int = 10, n_days: int = 260) -> dict:
    with tempfile.TemporaryDirectory(prefix="sextant-bench-") as tmp:
        tmp_path = Path(tmp)
        figures: dict[str, float] = {}
        if catalog is None:
            catalog = tmp_path / "catalog"
            t0 = time.perf_counter()
            generate_catalog(catalog, n_symbols, n_days, seed=11, signal_strength=0.15)
            figures["catalog_write_s"] = time.perf_counter() - t0
            console.print(f"built a {n_symbols} x {n_days}-session synthetic catalog in {figures['catalog_write_s']:.1f} s")
        store = open_catalog(catalog)
        symbols = store.symbols()
        if not symbols:
            raise EmptyCatalogError(f"catalog {catalog} holds no bars to benchmark")
        t0 = time.perf_counter()
        frames = {s: store.read_bars(s) for s in symbols}
        figures["catalog_read_s"] = time.perf_counter() - t0
        n_bars = sum(len(f) for f in frames.values())
        console.print(f"{len(symbols)} symbols, {n_bars:,} one-minute bars (read in {figures['catalog_read_s']:.2f} s)")
        figures["csv_rows_per_s"] = _csv_read_rate(frames[symbols[0]], tmp_path / "bars.csv")
        t0 = time.perf_counter()
        session_minutes(sessions_ending("2024-12-31", 500))
        figures["session_minutes_500_s"] = time.perf_counter() - t0

        panel, features_rps = _features(frames)
        figures["features_rows_per_s"] = features_rps
        probs, inference = _models(panel, console)
        figures.update({f"inference_rows_per_s[{k}]": v for k, v in inference.items()})

        signal_path = tmp_path / "signals"
        signal_store = MarketCatalog(signal_path)
        signal_store.nautilus.write_data(store.instruments())
        names = tuple(probs)
        matrix = np.column_stack([probs[n] for n in names])
        for code, symbol in enumerate(panel.symbols):
            mask = panel.symbol == code
            iid = str(instrument_id(symbol))
            signal_store.write_table(MLSignal, iid, signals_table(iid, names, panel.ts_ns[mask], matrix[mask]))

        ids = [str(instrument_id(s)) for s in symbols]
        start, end = int(panel.ts_ns.min()), int(panel.ts_ns.max())
        venue = VenueSpec(starting_cash=1_000_000, commission_per_share=0.005, min_commission=1.0,
                          slippage_probability=0.5, seed=1)
        common = {"catalog_path": str(catalog), "instrument_ids": tuple(ids), "start_ns": start,
                  "end_ns": end, "venue": venue}
        bare = WindowSpec(name="bare", signal_catalog_path=None, out_dir=str(tmp_path / "bare"),
                          strategy={"instrument_ids": ids}, strategy_path="backtests.bench:IdleStrategy",
                          config_path="backtests.bench:IdleStrategyConfig", **common)
        full = WindowSpec(name="full", signal_catalog_path=str(signal_path), out_dir=str(tmp_path / "full"),
                          strategy={"instrument_ids": ids, "weights": {n: 1.0 for n in names}, "entry_threshold": 0.6},
                          **common)
        console.print(f"running the bare engine and the full ensemble backtest, alternating, "
                      f"{ENGINE_REPEATS} times each (one process per run; the best run counts) ...")
        best: dict[str, WindowResult] = {}
        for _ in range(ENGINE_REPEATS):
            for result in run_windows([bare, full], workers=1):
                if result.name not in best or result.elapsed_s < best[result.name].elapsed_s:
                    best[result.name] = result
        figures["bare_bars_per_s"] = n_bars / best["bare"].elapsed_s
        figures["full_bars_per_s"] = n_bars / best["full"].elapsed_s
        figures["full_over_bare"] = figures["full_bars_per_s"] / figures["bare_bars_per_s"]
        fills = pd.read_parquet(best["full"].fills_path)
        figures["full_orders_filled"] = float(len(fills))
        _print(console, figures, n_bars)
        return figures


def _csv_read_rate(frame: pd.DataFrame, path: Path) -> float:
    """Rows/s of ``read_minute_csv`` over one symbol's bars written as a vendor CSV (minute
    starts, UTC); the calendar is warmed by a first read so only parsing is timed."""
    starts = (frame.index - pd.Timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
    frame.set_axis(pd.Index(starts, name="timestamp")).to_csv(path)
    read_minute_csv(path)
    t0 = time.perf_counter()
    rows = len(read_minute_csv(path))
    return rows / (time.perf_counter() - t0)


def _features(frames: dict) -> tuple[Panel, float]:
    """Feature rows/s: the best of three passes over every symbol, each matrix dropped as soon
    as it is made, so the figure is the function's compute rate rather than the cost of first
    touching hundreds of MB of fresh pages (which a pipeline pays once, whatever computes them).
    """
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for frame in frames.values():
            _matrix(frame)
        best = min(best, time.perf_counter() - t0)
    parts = []
    for symbol, frame in frames.items():
        ts = frame.index.asi8
        y, _ = direction_labels(frame["close"].to_numpy(), ts, 15, 0.001)
        parts.append(Panel(X=_matrix(frame), y=y, ts_ns=ts, symbol=np.zeros(len(ts), np.int32),
                           segment_start=np.zeros(len(ts), np.int64), feature_names=FEATURE_NAMES,
                           symbols=(symbol,)))
    panel = Panel.concat(parts)
    return panel, len(panel) / best


def _matrix(frame) -> np.ndarray:
    return feature_matrix(frame["open"].to_numpy(), frame["high"].to_numpy(), frame["low"].to_numpy(),
                          frame["close"].to_numpy(), frame["volume"].to_numpy(), frame.index.asi8)


def _models(panel: Panel, console: Console) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Fit each model of the default ensemble on a sample of early rows, then batch-predict
    every usable row (every kind's per-fold figures: ``sextant bench --part zoo``)."""
    probs, rates = {}, {}
    for kind in DEFAULT_WEIGHTS:
        model = build_model(kind)
        usable = panel.usable_rows(model.history_bars)
        labelled = usable[np.isfinite(panel.y[usable])]
        train = labelled[: len(labelled) // 2]
        rng = np.random.default_rng(0)
        train = np.sort(rng.choice(train, min(TRAIN_ROWS, len(train)), replace=False))
        t0 = time.perf_counter()
        model.fit(panel, train, seed=0)
        fit_s = time.perf_counter() - t0
        rows = usable
        t0 = time.perf_counter()
        p = np.full(len(panel), 0.5)
        p[rows] = model.predict_proba(panel, rows)
        rates[kind] = len(rows) / (time.perf_counter() - t0)
        probs[kind] = p
        console.print(f"  {kind}: fit {len(train):,} rows in {fit_s:.1f} s, predicted {len(rows):,} rows at {rates[kind]:,.0f} rows/s")
    return probs, rates


def _print(console: Console, figures: dict[str, float], n_bars: int) -> None:
    table = Table(title=f"sextant bench ({n_bars:,} one-minute bars)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    table.add_row("bare engine (idle strategy) bars/s", f"{figures['bare_bars_per_s']:,.0f}", "baseline")
    table.add_row("full ensemble backtest bars/s", f"{figures['full_bars_per_s']:,.0f}", "")
    table.add_row("full / bare", f"{figures['full_over_bare']:.2f}", ">= 0.40")
    table.add_row("orders filled in the full run", f"{figures['full_orders_filled']:,.0f}", "")
    table.add_row("feature function rows/s (42 features, 1 core)", f"{figures['features_rows_per_s']:,.0f}", ">= 1,000,000")
    table.add_row("CSV import (read_minute_csv) rows/s", f"{figures['csv_rows_per_s']:,.0f}", "")
    table.add_row("session minutes of 500 NYSE sessions, s", f"{figures['session_minutes_500_s']:.3f}", "")
    for key, value in figures.items():
        if key.startswith("inference_rows_per_s["):
            table.add_row(f"batch inference rows/s {key[21:-1]}", f"{value:,.0f}", "")
    console.print(table)
