"""Universe screen: on each Monday it reads only the sessions before it, and a stock that
becomes liquid later is out before and in after."""

import numpy as np
import pandas as pd
import pytest

from catalog.synthetic import generate_market
from models.universe import ScreenRule, daily_bars, screen, week_start

PERMISSIVE = {"min_avg_volume": 0.0, "min_atr_pct": 0.0, "max_atr_pct": 1.0, "min_beta": -100.0,
              "max_beta": 100.0, "min_price": 0.0, "max_price": 1e9}


@pytest.fixture(scope="module")
def market() -> dict[str, pd.DataFrame]:
    return generate_market(n_symbols=4, n_days=40, seed=5).bars


def daily_of(bars: dict[str, pd.DataFrame], before_ns: int | None = None) -> dict[str, pd.DataFrame]:
    out = {}
    for symbol, frame in bars.items():
        if before_ns is not None:
            frame = frame[frame.index.asi8 < before_ns]
        out[symbol] = daily_bars(frame.index.asi8, *(frame[c].to_numpy() for c in ("high", "low", "close", "volume")))
    return out


def mondays(bars: dict[str, pd.DataFrame]) -> list:
    days = next(iter(daily_of(bars).values())).index
    return sorted({week_start(d) for d in days})


def ny_midnight_ns(day) -> int:
    return pd.Timestamp(day).tz_localize("America/New_York").tz_convert("UTC").value


def test_the_screen_on_a_monday_uses_only_the_sessions_before_it(market) -> None:
    """Truncation: the screen of the data cut at Monday d equals the full data's screen for d."""
    rule = ScreenRule(lookback_days=5, min_avg_volume=0.0, min_beta=0.3)
    weeks = mondays(market)[1:]
    full = screen(daily_of(market), rule, weeks)
    assert full["selected"].any() and not full["selected"].all()  # the rule discriminates
    for week in weeks:
        cut = screen(daily_of(market, before_ns=ny_midnight_ns(week)), rule, [week])
        pd.testing.assert_frame_equal(cut, full[full["week"] == week].reset_index(drop=True))


def test_a_stock_that_becomes_liquid_later_is_excluded_before_and_included_after(market) -> None:
    bars = {s: f.copy() for s, f in market.items()}
    late = max(bars)
    days = bars[late].index.tz_convert("America/New_York").normalize()
    switch = days.unique()[20]
    bars[late].loc[days < switch, "volume"] *= 1e-3  # thinly traded for its first 20 sessions
    liquid = daily_of(market)[late]["volume"].median()
    rule = ScreenRule(**{**PERMISSIVE, "lookback_days": 5, "min_avg_volume": 0.3 * liquid})
    result = screen(daily_of(bars), rule, mondays(bars))
    mine = result[result["symbol"] == late].set_index("week")
    switch_day = switch.date()
    before = mine[(mine.index <= switch_day) & (mine["sessions"] == 5)]
    after = mine[mine.index >= switch_day + pd.Timedelta(days=8)]  # a full lookback after the switch
    assert len(before) >= 2 and not before["selected"].any()
    assert len(after) >= 2 and after["selected"].all()
    unchanged = screen(daily_of(market), rule, mondays(bars))
    others = result["symbol"] != late
    assert (result[others]["selected"] == unchanged[others]["selected"]).all()


def test_too_little_history_is_not_selected(market) -> None:
    result = screen(daily_of(market), ScreenRule(**PERMISSIVE, lookback_days=20), mondays(market)[:3])
    assert not result["selected"].any() and (result["sessions"] < 20).all()


def test_an_index_etf_in_the_catalog_is_the_market_proxy(market) -> None:
    daily = daily_of(market)
    proxy = "S000"
    result = screen(daily, ScreenRule(**PERMISSIVE, lookback_days=10, market_proxy=proxy), mondays(market)[3:])
    assert np.allclose(result[result["symbol"] == proxy]["beta"], 1.0)
    equal_weight = screen(daily, ScreenRule(**PERMISSIVE, lookback_days=10), mondays(market)[3:])
    assert not np.allclose(equal_weight[equal_weight["symbol"] == proxy]["beta"], 1.0)


def test_inverted_bands_are_refused() -> None:
    with pytest.raises(ValueError, match="'min_price'"):
        ScreenRule(min_price=10.0, max_price=5.0)
