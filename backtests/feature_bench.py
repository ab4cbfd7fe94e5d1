"""`sextant bench --part features`: what each feature block costs, in batch and live.

Batch: rows/s of the feature pipeline over the whole catalog for the base set, with the
multi-timeframe block, and with every block (the fitted columns included); the per-symbol fit
time of the GARCH and copula blocks on a 35-session training window. Live: the time to compute
one symbol's newest rows from full buffers (what the SignalActor pays per bar, the market
proxy aside: it computes that once per bar time), every block on. Streaming: one bar close of
STREAM_SYMBOLS symbols through ``models.streaming.StreamingFeatures`` against the batch function
per symbol over the same buffers, measured in the same run (their ratio is the figure).
"""

import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from backtests.train import read_bars
from catalog.jobs import generate_catalog
from catalog.store import EmptyCatalogError, open_catalog
from catalog.synthetic import generate_market
from models.features import ny_day
from models.pipeline import (
    FeatureSpec,
    RiskSpec,
    compute_features,
    feature_names,
    fit_features,
    lookback_bars,
    proxy_returns,
)
from models.streaming import StreamingFeatures

ALL_BLOCKS = FeatureSpec(timeframes=("5m", "30m", "1h", "1d"),
                         risk=RiskSpec(garch=True, var=True, beta=True, copula=True))
SPECS = {"base": FeatureSpec(), "base + timeframes": FeatureSpec(timeframes=ALL_BLOCKS.timeframes),
         "every block": ALL_BLOCKS}
TRAIN_SESSIONS = 35
LIVE_CALLS = 200
LIVE_HISTORY = 60  # rows the actor asks for: the LSTM's sequence (a tabular model asks for 1)
STREAM_SYMBOLS, STREAM_SESSIONS, STREAM_CLOSES = 50, 9, 300  # the live bench's universe
BATCH_CLOSES = 5  # closes the per-symbol batch path is timed on (50 symbols each)


def run_feature_bench(console: Console, catalog: Path | None = None, n_symbols: int = 10,
                      n_days: int = 60) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="sextant-feature-bench-") as tmp:
        if catalog is None:
            catalog = Path(tmp) / "catalog"
            generate_catalog(catalog, n_symbols, n_days, seed=11)
        store = open_catalog(catalog)
        symbols = store.symbols()
        if not symbols:
            raise EmptyCatalogError(f"catalog {catalog} holds no bars to benchmark")
        bars = read_bars(store, symbols)
    n_rows = sum(len(cols[5]) for cols in bars.values())
    console.print(f"{len(symbols)} symbols, {n_rows:,} one-minute bars")
    train = {s: np.flatnonzero(_session_index(cols[5]) < TRAIN_SESSIONS) for s, cols in bars.items()}
    t0 = time.perf_counter()
    fitted = fit_features(bars, ALL_BLOCKS, train)
    figures = {"fit_s_per_symbol": (time.perf_counter() - t0) / len(symbols)}
    for label, spec in SPECS.items():
        compute_features(bars, spec, fitted if spec == ALL_BLOCKS else None)  # warm the calendar
        t0 = time.perf_counter()
        compute_features(bars, spec, fitted if spec == ALL_BLOCKS else None)
        figures[f"rows_per_s[{label}]"] = n_rows / (time.perf_counter() - t0)
    lookback = lookback_bars(ALL_BLOCKS)
    buffers = {s: tuple(c[-lookback:] for c in cols) for s, cols in bars.items()}
    latencies = []
    for i in range(LIVE_CALLS):
        symbol = symbols[i % len(symbols)]
        t0 = time.perf_counter()
        compute_features(buffers, ALL_BLOCKS, fitted, symbols=[symbol], last_rows=LIVE_HISTORY)
        latencies.append(time.perf_counter() - t0)
    figures["live_row_ms_p50"], figures["live_row_ms_p99"] = (1e3 * q for q in np.percentile(latencies, [50, 99]))
    figures.update(_streaming_figures())
    _print(console, figures, len(feature_names(ALL_BLOCKS)), lookback)
    return figures


def _streaming_figures() -> dict[str, float]:
    """ms per bar close for STREAM_SYMBOLS symbols with every block on: the streaming engine
    (after its one-off seeding) and the batch function per symbol over the same rolling
    buffers (the market proxy once per close), as the actor computes them without it."""
    market = generate_market(STREAM_SYMBOLS, STREAM_SESSIONS, seed=11, signal_strength=0.1).bars
    bars = {s: (*(f[c].to_numpy() for c in ("open", "high", "low", "close", "volume")), f.index.asi8)
            for s, f in market.items()}
    n = min(len(cols[5]) for cols in bars.values())
    fitted = fit_features(bars, ALL_BLOCKS, {s: np.arange(2 * 390) for s in bars})
    lookback = lookback_bars(ALL_BLOCKS)
    if n < lookback + STREAM_CLOSES:
        raise ValueError(f"{STREAM_SESSIONS} sessions give {n} bars, fewer than {lookback + STREAM_CLOSES}")

    def buffers(end: int) -> dict:
        return {s: tuple(c[end - lookback : end] for c in cols) for s, cols in bars.items()}

    engine = StreamingFeatures(ALL_BLOCKS, fitted, list(bars), history=LIVE_HISTORY)
    first = n - STREAM_CLOSES
    engine.update(buffers(first))  # the one-off seeding, not a close's cost
    stream = []
    for end in range(first + 1, n + 1):
        now = buffers(end)
        t0 = time.perf_counter()
        engine.update(now)
        stream.append(time.perf_counter() - t0)
    batch = []
    for end in np.linspace(first + 1, n, BATCH_CLOSES).astype(int):
        now = buffers(end)
        t0 = time.perf_counter()
        proxy = proxy_returns(now, ALL_BLOCKS.risk)
        for symbol in now:
            compute_features(now, ALL_BLOCKS, fitted, symbols=[symbol], proxy=proxy, last_rows=LIVE_HISTORY)
        batch.append(time.perf_counter() - t0)
    p50, p99 = (1e3 * q for q in np.percentile(stream, [50, 99]))
    batch_ms = 1e3 * float(np.median(batch))
    return {"stream_close_ms_p50": p50, "stream_close_ms_p99": p99, "batch_close_ms": batch_ms,
            "stream_speedup": batch_ms / p50}


def _session_index(ts_ns: np.ndarray) -> np.ndarray:
    day = ny_day(ts_ns)
    return np.cumsum(np.r_[True, day[1:] != day[:-1]]) - 1


def _print(console: Console, figures: dict[str, float], n_columns: int, lookback: int) -> None:
    table = Table(title="sextant bench: feature pipeline (1 core)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for label, spec in SPECS.items():
        table.add_row(f"batch rows/s, {label} ({len(feature_names(spec))} columns)",
                      f"{figures[f'rows_per_s[{label}]']:,.0f}")
    table.add_row(f"fit GARCH + t copula, s per symbol ({TRAIN_SESSIONS} sessions)", f"{figures['fit_s_per_symbol']:.2f}")
    table.add_row(f"live newest row, every block ({n_columns} columns, {lookback}-bar buffers), p50 / p99 ms",
                  f"{figures['live_row_ms_p50']:.1f} / {figures['live_row_ms_p99']:.1f}")
    table.add_row(f"live bar close, {STREAM_SYMBOLS} symbols, every block: streaming p50 / p99 ms",
                  f"{figures['stream_close_ms_p50']:.2f} / {figures['stream_close_ms_p99']:.2f}")
    table.add_row(f"live bar close, {STREAM_SYMBOLS} symbols, batch function per symbol (same run), ms",
                  f"{figures['batch_close_ms']:.0f} ({figures['stream_speedup']:.0f}x the streaming p50)")
    console.print(table)
