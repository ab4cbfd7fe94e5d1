"""The weekly universe screen in live trading: the stocks the strategy may enter this week.

The same screen the walk-forward applies (``models.universe``: average daily volume, ATR %,
beta, price band, from the sessions before the week's Monday only), run at pre-open over the
schedule's catalog. As in the backtest, a stock the screen leaves out still has its features
computed (the market proxy and every rolling window need its bars) but gets no signal, so the
strategy never enters it; positions it already holds keep their stop and target.
"""

from datetime import date
from pathlib import Path

import pandas as pd

from catalog.store import open_catalog
from models.universe import ScreenRule, daily_bars, screen, week_start


def screened_universe(catalog_path: str | Path, universe: list[str], rule: ScreenRule, day: date) -> pd.DataFrame:
    """Each of ``universe``'s statistics for ``day``'s week and whether it passes
    (``models.universe.SCREEN_COLUMNS``); the rule's index ETF is read from the catalog when it
    holds one, else the proxy is the universe's equal-weight mean."""
    catalog = open_catalog(catalog_path)
    held = set(catalog.symbols())
    daily = {}
    for symbol in dict.fromkeys([*universe, *([rule.market_proxy] if rule.market_proxy in held else [])]):
        if symbol not in held:
            continue  # never ingested: the screen cannot pass it, it has no sessions
        bars = catalog.read_bars(symbol)
        daily[symbol] = daily_bars(bars.index.asi8, bars["high"].to_numpy(), bars["low"].to_numpy(),
                                   bars["close"].to_numpy(), bars["volume"].to_numpy())
    frame = screen(daily, rule, [week_start(day)])
    return frame[frame["symbol"].isin(universe)].reset_index(drop=True)
