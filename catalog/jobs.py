"""Jobs that put bars into a catalog: the synthetic default market and real CSV files."""

from collections.abc import Callable
from pathlib import Path

from catalog.csv_import import read_minute_csv
from catalog.store import MarketCatalog
from catalog.synthetic import generate_market

Progress = Callable[[str, int], None]


def generate_catalog(
    path: str | Path,
    n_symbols: int,
    n_days: int,
    seed: int,
    signal_strength: float = 0.0,
    on_symbol: Progress | None = None,
) -> MarketCatalog:
    """Write a synthetic market into the catalog; re-running with the same seed is a no-op
    in content (the writer replaces the same ranges)."""
    market = generate_market(n_symbols=n_symbols, n_days=n_days, seed=seed, signal_strength=signal_strength)
    catalog = MarketCatalog(path)
    catalog.mark_synthetic({"generator": "catalog.synthetic.generate_market", "symbols": n_symbols,
                            "days": n_days, "seed": seed, "signal_strength": signal_strength,
                            "generated_symbols": sorted(market.bars)})
    for symbol, frame in market.bars.items():
        rows = catalog.write_bars(symbol, frame, sector=market.sectors[symbol])
        if on_symbol:
            on_symbol(symbol, rows)
    return catalog


def import_csv(
    csv_path: str | Path,
    symbol: str,
    catalog_path: str | Path,
    sector: str | None = None,
    regular_session_only: bool = True,
) -> int:
    """Import one real minute-bar CSV for ``symbol``; returns the number of bars written.

    Without ``sector`` a symbol already in the catalog keeps its sector (a new one is
    UNKNOWN), so appending a newer file does not silently reset the sector caps."""
    frame = read_minute_csv(csv_path, regular_session_only=regular_session_only)
    return MarketCatalog(catalog_path).write_bars(symbol, frame, sector=sector)
