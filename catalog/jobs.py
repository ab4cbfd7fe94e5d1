"""Jobs that put bars into a catalog: the synthetic default market and real CSV files."""

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from catalog.csv_import import read_minute_csv
from catalog.errors import CatalogExistsError
from catalog.instruments import parse_sector, parse_symbol
from catalog.store import MarketCatalog, holds_anything, writer_lock
from catalog.synthetic import generate_market

Progress = Callable[[str, int], None]


def generate_catalog(
    path: str | Path,
    n_symbols: int,
    n_days: int,
    seed: int,
    signal_strength: float = 0.0,
    on_symbol: Progress | None = None,
    replace: bool = False,
) -> MarketCatalog:
    """Write a synthetic market as a whole new catalog at ``path``.

    A generated market is one consistent draw, described by its synthetic marker: writing it
    over an existing catalog would splice two markets (a price jump where they meet) under a
    marker that describes only one. So a directory that holds anything is refused unless
    ``replace``; then the market is built in a sibling staging directory and swapped in only
    once complete, so a failure leaves the old catalog as it was."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise CatalogExistsError(f"catalog path {target} is a file, not a directory")
    if holds_anything(target) and not replace:
        raise CatalogExistsError(
            f"catalog {target} already holds data; generating into it would mix two markets. "
            "Use --replace to replace everything in it, or another --catalog"
        )
    market = generate_market(n_symbols=n_symbols, n_days=n_days, seed=seed, signal_strength=signal_strength)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(target, "generating")
    staging.mkdir()  # (mkdtemp would make the catalog directory private to its owner)
    try:
        catalog = MarketCatalog(staging)
        catalog.mark_synthetic({"generator": "catalog.synthetic.generate_market", "symbols": n_symbols,
                                "days": n_days, "seed": seed, "signal_strength": signal_strength,
                                "generated_symbols": sorted(market.bars)})
        for symbol, frame in market.bars.items():
            rows = catalog.write_bars(symbol, frame, sector=market.sectors[symbol])
            if on_symbol:
                on_symbol(symbol, rows)
        _swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return MarketCatalog(target)


def _sibling(target: Path, purpose: str) -> Path:
    """A hidden, unused name beside ``target`` (same filesystem, so renames are atomic)."""
    return target.parent / f".{target.name}.{purpose}-{uuid.uuid4().hex[:12]}"


def _swap_in(staging: Path, target: Path) -> None:
    """Move the complete ``staging`` directory to ``target``; an old ``target`` is moved aside
    first and deleted only once the new one is in place."""
    if not target.exists():
        staging.rename(target)
        return
    aside = _sibling(target, "replaced")
    target.rename(aside)
    try:
        staging.rename(target)
    except BaseException:
        aside.rename(target)
        raise
    shutil.rmtree(aside)


def import_csv(
    csv_path: str | Path,
    symbol: str,
    catalog_path: str | Path,
    sector: str | None = None,
    regular_session_only: bool = True,
) -> int:
    """Import one real minute-bar CSV for ``symbol``; returns the number of bars written.

    The file's bars are merged into the stored ones: a bar replaces the stored bar at the same
    minute, every other stored bar stays. Without ``sector`` a symbol already in the catalog
    keeps its sector (a new one is UNKNOWN), so appending a newer file does not silently reset
    the sector caps."""
    symbol = parse_symbol(symbol)
    sector = None if sector is None else parse_sector(sector)
    frame = read_minute_csv(csv_path, regular_session_only=regular_session_only)
    with writer_lock(catalog_path, f"an import of {symbol} from {csv_path}"):
        return MarketCatalog(catalog_path).write_bars(symbol, frame, sector=sector)
