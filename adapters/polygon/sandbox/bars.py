"""The catalog as the sandbox serves it: each symbol read once, aggregates cached as arrays.

A REST ingest asks for the same symbol page after page, and a live feed asks for every symbol
at every close, so reading Parquet per request would dominate. Aggregates are computed once
per (symbol, timeframe) and kept in an LRU bounded by rows, so serving a large catalog does
not hold all of it in memory.
"""

import threading
from collections import OrderedDict
from pathlib import Path

from adapters.polygon.common import TIMEFRAMES, Timeframe
from adapters.polygon.sandbox.aggregation import AggSeries, minute_aggregates, resample
from catalog.store import MarketCatalog

MINUTE = TIMEFRAMES["1m"]


class CatalogBars:
    """Read-only, thread-safe access to a catalog's symbols, sectors and aggregates."""

    def __init__(self, path: str | Path, max_cached_rows: int = 20_000_000) -> None:
        self.catalog = MarketCatalog(path)
        self.symbols: list[str] = self.catalog.symbols()
        known = set(self.symbols)
        self.sectors: dict[str, str] = {
            s: v for s, v in self.catalog.sectors().items() if s in known
        }
        self._known = known
        self._max_rows = max_cached_rows
        self._cache: OrderedDict[tuple[str, str], AggSeries] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()

    def has(self, symbol: str) -> bool:
        return symbol in self._known

    def series(self, symbol: str, timeframe: Timeframe = MINUTE) -> AggSeries | None:
        """Aggregates of ``symbol`` in ``timeframe``; None for a symbol the catalog lacks."""
        if symbol not in self._known:
            return None
        with self._lock:
            return self._series_locked(symbol, timeframe)

    def _series_locked(self, symbol: str, timeframe: Timeframe) -> AggSeries:
        key = (symbol, timeframe.name)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        if timeframe.name == MINUTE.name:
            series = minute_aggregates(self.catalog.read_bars(symbol))
        else:
            series = resample(self._series_locked(symbol, MINUTE), timeframe)
        self._cache[key] = series
        self._rows += len(series)
        while self._rows > self._max_rows and len(self._cache) > 1:
            _, evicted = self._cache.popitem(last=False)
            self._rows -= len(evicted)
        return series
