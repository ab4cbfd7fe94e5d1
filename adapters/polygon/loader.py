"""Polygon as a ``catalog.ingest.BarSource``: the bars of whole NYSE sessions, catalog layout.

A fetch asks for whole Eastern calendar days (Polygon's own date semantics), so one request
covers a run of sessions with its extended hours; the regular-session filter is applied here,
after the close times are known: an intraday bar is kept when its close lies in a session's
``(open, close]``. Daily bars close at their session's close and are always kept. Note that a
Polygon hourly bar is aligned on the clock hour, so the 09:00-10:00 ET bar (close 10:00, kept)
includes the pre-market half hour's trades; that is the data, not a filter leak.
"""

from datetime import date

import numpy as np
import pandas as pd

from adapters.polygon.http import PolygonHttpClient
from adapters.polygon.parsing.aggregates import EXCHANGE_TZ
from catalog.sessions import in_regular_session, trading_sessions


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
