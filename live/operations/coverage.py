"""Which sessions the historical catalog holds per symbol: the Data page's coverage table.

The NYSE sessions from a symbol's first held session to its last (or to ``through``, the
session the catalog should reach: yesterday before the open) are the ones it should hold; any
without a bar is listed as missing, so a gap an interrupted ingest left, or a catalog behind
the day, is seen before the nightly retrain trains on it. Only the bar-close times are read
(``MarketCatalog.bar_times``), as ``sextant catalog info`` does.
"""

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from catalog.inventory import session_dates
from catalog.sessions import trading_sessions
from catalog.store import open_catalog


@dataclass(frozen=True)
class SymbolCoverage:
    symbol: str
    sector: str
    timeframe: str
    bars: int
    first_session: date
    last_session: date
    sessions_expected: int  # NYSE sessions from first_session to max(last_session, through)
    sessions_held: int
    missing: tuple[date, ...]

    def payload(self) -> dict:
        return {"symbol": self.symbol, "sector": self.sector, "timeframe": self.timeframe, "bars": self.bars,
                "first_session": self.first_session.isoformat(), "last_session": self.last_session.isoformat(),
                "sessions_expected": self.sessions_expected, "sessions_held": self.sessions_held,
                "missing": [d.isoformat() for d in self.missing]}


def catalog_coverage(path: str | Path, timeframe: str = "1m", through: date | None = None) -> list[SymbolCoverage]:
    """Every symbol of the catalog at ``path`` with ``timeframe`` bars, by symbol (a missing
    catalog is the catalog's MissingCatalogError). ``through``: a session the catalog should
    reach; the sessions after a symbol's last one up to it count as missing."""
    catalog = open_catalog(path)
    coverage = []
    for symbol, sector in sorted(catalog.sectors().items()):
        ts = catalog.bar_times(symbol, timeframe)
        if not len(ts):
            continue
        held = pd.DatetimeIndex(np.unique(session_dates(ts)))
        end = held[-1] if through is None else max(held[-1], pd.Timestamp(through))
        expected = trading_sessions(held[0], end).index
        missing = expected[~expected.isin(held)]
        coverage.append(SymbolCoverage(
            symbol=symbol, sector=sector, timeframe=timeframe, bars=len(ts), first_session=held[0].date(),
            last_session=held[-1].date(), sessions_expected=len(expected),
            sessions_held=int(expected.isin(held).sum()), missing=tuple(d.date() for d in missing)))
    return coverage
