"""Pre-open's incremental ingest (live.daily_ingest) from the Polygon sandbox: the sessions
before the day that the catalog lacks, and nothing again on the next run."""

from datetime import date
from pathlib import Path

import pandas as pd

from adapters.polygon.sandbox import PolygonSandbox
from catalog.store import MarketCatalog
from live.daily_ingest import ingest_recent_sessions
from tests.live.conftest import SYMBOLS


def test_pre_open_ingests_the_missing_sessions_before_the_day_once(market, tmp_path: Path):
    source, _ = market
    dest = tmp_path / "catalog"
    with PolygonSandbox(source, api_key="key") as polygon:
        def ingest(day: date):
            return ingest_recent_sessions(dest, SYMBOLS, day, 2, base_url=polygon.base_url, api_key="key")

        first = ingest(date(2024, 12, 27))  # the two sessions before: 12-24 (half day) and 12-26
        again = ingest(date(2024, 12, 27))
        next_day = ingest(date(2024, 12, 30))  # 12-26 is there: only 12-27 is fetched
    assert first.ok and first.sessions_fetched == {s: 2 for s in SYMBOLS}
    assert again.sessions_fetched == {s: 0 for s in SYMBOLS} and again.sessions_skipped == {s: 2 for s in SYMBOLS}
    assert next_day.sessions_fetched == {s: 1 for s in SYMBOLS}
    bars = MarketCatalog(dest).read_bars("S000")
    days = sorted({d.date() for d in bars.index.tz_convert("America/New_York")})
    assert days == [date(2024, 12, 24), date(2024, 12, 26), date(2024, 12, 27)]
    expected = MarketCatalog(source).read_bars("S000", start=pd.Timestamp("2024-12-24", tz="UTC"),
                                               end=pd.Timestamp("2024-12-28", tz="UTC"))
    pd.testing.assert_frame_equal(bars, expected.round(4), check_freq=False)
