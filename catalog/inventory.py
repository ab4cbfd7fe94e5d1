"""What a catalog holds, per symbol and timeframe: the answer to "what data do I have".

The ``sextant catalog info`` command prints it; errors about a missing day or symbol point
there. Provenance comes from the two records the catalog keeps: the synthetic marker lists the
generated symbols, the ingest manifest the ingested (symbol, timeframe) pairs; any other bars
were imported from CSV files.
"""

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from catalog.ingest import EXCHANGE_TZ, IngestManifest
from catalog.instruments import BAR_SPECS
from catalog.sessions import in_regular_session, trading_sessions
from catalog.store import open_catalog

SYNTHETIC, INGESTED, IMPORTED = "synthetic", "ingested", "imported"


@dataclass(frozen=True)
class SeriesInfo:
    """One symbol's bars of one timeframe."""

    symbol: str
    sector: str
    timeframe: str
    bars: int
    first_session: date
    last_session: date
    sessions: int  # NYSE sessions from first to last, both included
    incomplete_sessions: int  # 1m: fewer regular-session minutes than the session has; else: no bar
    provenance: str


@dataclass(frozen=True)
class CatalogInfo:
    path: Path
    series: tuple[SeriesInfo, ...]
    synthetic: dict | None  # the generator's description when the catalog holds a synthetic market

    @property
    def symbols(self) -> list[str]:
        return sorted({s.symbol for s in self.series})


def describe_catalog(path: str | Path) -> CatalogInfo:
    """Inventory of an existing catalog (a missing path or empty directory is an error).

    Only the timestamp column of each bar file is read, so this stays quick on large catalogs;
    every file is still opened, so a damaged one is named here as well."""
    catalog = open_catalog(path)
    sectors = catalog.sectors()
    synthetic = catalog.synthetic_origin()
    generated = set((synthetic or {}).get("generated_symbols", []))
    manifest = IngestManifest(catalog.path)
    series = []
    for symbol in sorted(sectors):
        for timeframe in BAR_SPECS:
            ts = catalog.bar_times(symbol, timeframe)
            if not len(ts):
                continue
            if symbol in generated:
                provenance = SYNTHETIC
            elif manifest.done(symbol, timeframe):
                provenance = INGESTED
            else:
                provenance = IMPORTED
            series.append(_series(symbol, sectors[symbol], timeframe, ts, provenance))
    return CatalogInfo(path=catalog.path, series=tuple(series), synthetic=synthetic)


def session_dates(ts: pd.DatetimeIndex) -> np.ndarray:
    """Eastern date of each bar-close time (a bar closing at midnight belongs to the day before)."""
    return (ts - pd.Timedelta(1, "ns")).tz_convert(EXCHANGE_TZ).tz_localize(None).normalize().to_numpy()


def _series(symbol: str, sector: str, timeframe: str, ts: pd.DatetimeIndex, provenance: str) -> SeriesInfo:
    dates = session_dates(ts)
    first, last = pd.Timestamp(dates[0]), pd.Timestamp(dates[-1])
    sessions = trading_sessions(first, last)
    if timeframe == "1m":
        regular = dates[in_regular_session(ts)]
        counts = pd.Series(regular).value_counts().reindex(sessions.index, fill_value=0).to_numpy()
        expected = ((sessions["close"] - sessions["open"]) // pd.Timedelta(minutes=1)).to_numpy()
        incomplete = int(np.sum(counts < expected))
    else:
        incomplete = int(np.sum(~sessions.index.isin(pd.DatetimeIndex(np.unique(dates)))))
    return SeriesInfo(symbol=symbol, sector=sector, timeframe=timeframe, bars=len(ts),
                      first_session=first.date(), last_session=last.date(), sessions=len(sessions),
                      incomplete_sessions=incomplete, provenance=provenance)
