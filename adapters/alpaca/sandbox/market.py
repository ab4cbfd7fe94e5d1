"""The catalog as the paper broker sees it: per-symbol bar arrays and "what traded by when".

The broker looks prices up at every order and every bar close, so each symbol is read from
Parquet once, on first use, and kept as numpy arrays (the sandbox serves a handful of symbols;
unlike the Polygon sandbox it never needs a whole large catalog at once).
"""

import threading
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
from nautilus_trader.model.data import Bar

from catalog.instruments import PENNY, PRICE_PRECISION, SUB_PENNY, bar_type
from catalog.store import EmptyCatalogError, MarketCatalog


@dataclass(frozen=True)
class SymbolBars:
    """One symbol's 1-minute bars as arrays, sorted by bar close (UTC ns)."""

    symbol: str
    close_ns: np.ndarray  # int64
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    _converted: dict[int, "BarPrices"] = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.close_ns)

    def last_index_at(self, ts_ns: int) -> int | None:
        """Row of the latest bar closing at or before ``ts_ns``."""
        i = int(np.searchsorted(self.close_ns, ts_ns, side="right")) - 1
        return i if i >= 0 else None

    def index_range(self, after_ns: int, upto_ns: int) -> tuple[int, int]:
        """Rows [first, last) of the bars closing in (after_ns, upto_ns]."""
        first = int(np.searchsorted(self.close_ns, after_ns, side="right"))
        last = int(np.searchsorted(self.close_ns, upto_ns, side="right"))
        return first, last

    def bar(self, i: int) -> "BarPrices":
        """Row ``i`` in the broker's units, converted once: every order and every account
        valuation asks for the latest bars again."""
        cached = self._converted.get(i)
        if cached is None:
            cached = self._converted[i] = self._convert(i)
        return cached

    def _convert(self, i: int) -> "BarPrices":
        return BarPrices(
            close_ns=int(self.close_ns[i]),
            high=price(self.high[i]),
            low=price(self.low[i]),
            close=price(self.close[i]),
            volume=int(self.volume[i]),
        )


@dataclass(frozen=True)
class BarPrices:
    """One bar in the broker's units: exact Decimal prices, whole-share volume."""

    close_ns: int
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


def price(value: float) -> Decimal:
    """A catalog float price as an exact Decimal with at least 2 decimals (catalogs store at
    most 4, so a market order fills at a sub-penny bar price as a real one can)."""
    exact = Decimal(repr(round(float(value), PRICE_PRECISION)))
    cents = exact.quantize(PENNY)
    return cents if cents == exact else exact.quantize(SUB_PENNY)


class CatalogMarket:
    """Read-only, thread-safe bars of a catalog's symbols, loaded lazily and cached."""

    def __init__(self, catalog_path: str | Path) -> None:
        self.catalog_path = Path(catalog_path)
        self._catalog = MarketCatalog(self.catalog_path)
        self.symbols: list[str] = self._catalog.symbols()
        if not self.symbols:  # a mistyped path would otherwise serve an empty market
            raise EmptyCatalogError(f"no symbols with bars in catalog {self.catalog_path}")
        self._known = frozenset(self.symbols)
        self._bars: dict[str, SymbolBars] = {}
        self._lock = threading.Lock()

    def has(self, symbol: str) -> bool:
        return symbol in self._known

    def preload(self) -> None:
        """Read every symbol now (a few ms each) rather than on its first order, so the
        first minute of a rehearsal or a latency measurement does not pay for it."""
        for symbol in self.symbols:
            self.bars(symbol)

    def bars(self, symbol: str) -> SymbolBars:
        if symbol not in self._known:
            raise KeyError(f"symbol {symbol!r} is not in catalog {self.catalog_path}")
        with self._lock:
            cached = self._bars.get(symbol)
            if cached is None:
                cached = _load(symbol, self._catalog.read_bars(symbol))
                self._bars[symbol] = cached
            return cached

    def first_close_ns(self) -> int:
        """Earliest bar close over all symbols, from the file intervals (no bars are read)."""
        starts = [
            lo
            for s in self.symbols
            for lo, _ in self._catalog.nautilus.get_intervals(Bar, str(bar_type(s, "1m")))
        ]
        return int(min(starts))


def _load(symbol: str, frame: pd.DataFrame) -> SymbolBars:
    return SymbolBars(
        symbol=symbol,
        close_ns=pd.DatetimeIndex(frame.index).as_unit("ns").asi8.astype(np.int64),
        high=frame["high"].to_numpy(np.float64),
        low=frame["low"].to_numpy(np.float64),
        close=frame["close"].to_numpy(np.float64),
        volume=np.floor(frame["volume"].to_numpy(np.float64)),
    )
