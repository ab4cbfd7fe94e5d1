"""Polygon as a ``catalog.ingest.BarSource``: the bars of whole NYSE sessions, catalog layout.

A fetch asks for whole Eastern calendar days (Polygon's own date semantics), so one request
covers a run of sessions with its extended hours; the regular-session filter is applied here,
after the close times are known: an intraday bar is kept when its close lies in a session's
``(open, close]``. Daily bars close at their session's close and are always kept. Note that a
Polygon hourly bar is aligned on the clock hour, so the 09:00-10:00 ET bar (close 10:00, kept)
includes the pre-market half hour's trades; that is the data, not a filter leak.
"""

import multiprocessing
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from adapters.polygon.config import PolygonHistoricalConfig
from adapters.polygon.http import PolygonHttpClient
from adapters.polygon.parsing.aggregates import EXCHANGE_TZ
from catalog.ingest import ingest_bars
from catalog.jobs import generate_catalog
from catalog.sessions import in_regular_session, sessions_ending, trading_sessions


class PolygonBarSource:
    """Fetches one symbol's bars for a run of sessions through a shared ``PolygonHttpClient``
    (thread-safe: the ingest job calls it from several worker threads)."""

    def __init__(self, client: PolygonHttpClient, regular_session_only: bool = True) -> None:
        self.client = client
        self.regular_session_only = regular_session_only

    def fetch(self, symbol: str, first_session: date, last_session: date, timeframe: str) -> pd.DataFrame:
        bars = self.client.aggregates(symbol, timeframe, first_session, last_session)
        if timeframe == "1d" or not len(bars):
            return bars.to_frame()
        index = pd.DatetimeIndex(bars.ts_ns.view("datetime64[ns]")).tz_localize("UTC")
        if self.regular_session_only:
            keep = in_regular_session(index)
        else:  # bars of the requested sessions' Eastern dates; the range holds non-sessions too
            sessions = trading_sessions(first_session, last_session).index
            # a bar closing at 00:00 ET belongs to the day before
            bar_dates = (index - pd.Timedelta(1, "ns")).tz_convert(EXCHANGE_TZ).tz_localize(None).normalize()
            keep = bar_dates.isin(sessions)
        return bars.select(np.asarray(keep)).to_frame()


def measure_ingest_throughput(
    n_symbols: int = 10,
    n_days: int = 130,
    timeframe: str = "1m",
    max_workers: int = 4,
    workdir: str | Path | None = None,
) -> dict:
    """Bars/s of a full ingest from a sandbox serving a synthetic catalog, with the sandbox in
    its own (spawned) process so server and client do not share a GIL. For ``sextant bench``
    and the issue's throughput target; prints nothing, returns the numbers."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        source_path, dest_path = Path(tmp) / "source", Path(tmp) / "dest"
        symbols = generate_catalog(source_path, n_symbols=n_symbols, n_days=n_days, seed=7).symbols()
        sessions = sessions_ending("2024-12-31", n_days).index
        context = multiprocessing.get_context("spawn")
        ready = context.Queue()
        stop = context.Event()
        server = context.Process(target=_serve_sandbox, args=(str(source_path), ready, stop), daemon=True)
        server.start()
        try:
            base_url = ready.get(timeout=120)
            client = PolygonHttpClient("bench-key", PolygonHistoricalConfig(base_url=base_url, max_workers=max_workers))
            source = PolygonBarSource(client)
            started = time.perf_counter()
            report = ingest_bars(dest_path, symbols, sessions[0].date(), sessions[-1].date(), timeframe, source,
                                 max_workers=max_workers)
            elapsed = time.perf_counter() - started
        finally:
            stop.set()
            server.join(timeout=30)
        bars = sum(report.bars_written.values())
        return {"bars": bars, "seconds": elapsed, "bars_per_second": bars / elapsed,
                "failures": [str(f) for f in report.failures]}


def _serve_sandbox(catalog_path: str, ready: "multiprocessing.Queue", stop: "multiprocessing.synchronize.Event") -> None:
    """The spawned server process; the sandbox (an aiohttp app) is imported only here, so
    production code importing the loader does not load it."""
    from adapters.polygon.sandbox import PolygonSandbox

    with PolygonSandbox(catalog_path, api_key="bench-key", port=0) as sandbox:
        ready.put(sandbox.base_url)
        stop.wait()
