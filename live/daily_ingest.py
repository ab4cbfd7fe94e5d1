"""Pre-open's incremental ingest: the last sessions before today that the catalog lacks, from
Polygon REST, through the same resumable job as `sextant catalog ingest` (its manifest
skips what is already there, so a daily run fetches only yesterday)."""

from datetime import date, timedelta
from pathlib import Path

from adapters.polygon.config import PolygonHistoricalConfig
from adapters.polygon.http import PolygonHttpClient
from adapters.polygon.loader import PolygonBarSource
from catalog.ingest import IngestReport, ProgressCallback, ingest_bars
from catalog.sessions import sessions_ending


def ingest_recent_sessions(
    catalog: str | Path,
    symbols: list[str],
    day: date,
    n_sessions: int,
    *,
    base_url: str,
    api_key: str,
    sectors: dict[str, str] | None = None,
    on_progress: ProgressCallback | None = None,
    wait_secs: float = 0.0,
) -> IngestReport:
    """Bring the ``n_sessions`` sessions before ``day`` of ``symbols``' 1-minute bars into
    ``catalog`` (regular session, split-adjusted: the settings the catalog's ingests share).
    ``on_progress(symbol, sessions_done, sessions_total)`` and ``wait_secs`` (for another
    writer of the catalog): ``ingest_bars``'."""
    sessions = sessions_ending(day - timedelta(days=1), n_sessions)
    config = PolygonHistoricalConfig(base_url=base_url.rstrip("/"))
    client = PolygonHttpClient(api_key, config)
    return ingest_bars(
        catalog, symbols, sessions.index[0].date(), sessions.index[-1].date(), "1m",
        PolygonBarSource(client, config.regular_session_only), sectors=sectors, on_progress=on_progress,
        source_settings={"adjusted": config.adjusted, "regular_session_only": config.regular_session_only},
        wait_secs=wait_secs,
    )
