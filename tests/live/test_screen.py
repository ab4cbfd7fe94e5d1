"""The weekly universe screen at pre-open: the walk-forward's rule over the schedule's catalog,
from the sessions before the week's Monday only."""

from datetime import date

import pandas as pd
import pytest

from catalog.jobs import generate_catalog
from live.screen import screened_universe
from live.settings import LiveConfigError, load_live_config
from models.universe import ScreenRule

OPEN = {"min_avg_volume": 0.0, "min_atr_pct": 0.0, "max_atr_pct": 1.0, "min_beta": -100.0, "max_beta": 100.0,
        "min_price": 0.0, "max_price": 1e9, "lookback_days": 5}


def test_the_screen_passes_what_its_rule_allows_from_the_sessions_before_monday(tmp_path):
    catalog = generate_catalog(tmp_path / "cat", n_symbols=3, n_days=15, seed=4)
    symbols = catalog.symbols()
    day = date.fromisoformat(str(catalog.read_bars(symbols[0]).index[-1].tz_convert("America/New_York").date()))
    everyone = screened_universe(catalog.path, symbols, ScreenRule(**OPEN), day)
    assert everyone["selected"].all() and sorted(everyone["symbol"]) == symbols
    # Price band below the dearest stock's last price before Monday: that one is out this week.
    dearest = everyone.sort_values("price").iloc[-1]
    banded = screened_universe(catalog.path, symbols, ScreenRule(**OPEN | {"max_price": dearest["price"] - 0.01}), day)
    assert set(banded.loc[banded["selected"], "symbol"]) == set(symbols) - {dearest["symbol"]}
    # A symbol the catalog never held has no sessions: it never passes.
    unknown = screened_universe(catalog.path, [*symbols, "ZZZ"], ScreenRule(**OPEN), day)
    assert "ZZZ" not in set(unknown.loc[unknown["selected"], "symbol"])


def test_a_screen_needs_the_schedule_catalog(tmp_path):
    path = tmp_path / "live.yaml"
    path.write_text("universe: [AAA]\nmodels: {registry: runs/none}\nstrategy: {weights: {lightgbm: 1.0}}\n"
                    "universe_screen: {min_price: 5}\n")
    with pytest.raises(LiveConfigError, match=r"'universe_screen': screens the bars of 'schedule.catalog', which is not set"):
        load_live_config(path)


def test_the_live_day_trades_what_the_screen_passed(tmp_path):
    from live.live_phases import LiveDayPhases
    from live.schedule import ScheduleSection
    from live.scheduler import SimulatedClock
    from tests.live.conftest import live_config

    catalog = generate_catalog(tmp_path / "cat", n_symbols=3, n_days=15, seed=4)
    symbols = catalog.symbols()
    day = date.fromisoformat(str(catalog.read_bars(symbols[0]).index[-1].tz_convert("America/New_York").date()))
    prices = screened_universe(catalog.path, symbols, ScreenRule(**OPEN), day).set_index("symbol")["price"]
    rule = ScreenRule(**OPEN | {"max_price": float(prices.max()) - 0.01})
    config = live_config(tmp_path / "models", universe=symbols, universe_screen=rule,
                         schedule=ScheduleSection(catalog=str(catalog.path)))
    phases = LiveDayPhases(config, tmp_path / "runs", SimulatedClock(pd.Timestamp(day, tz="UTC")))
    assert phases._screen(day) == sorted(set(symbols) - {prices.idxmax()})
    assert LiveDayPhases(live_config(tmp_path / "models", universe=symbols), tmp_path / "runs",
                         SimulatedClock(pd.Timestamp(day, tz="UTC")))._screen(day) is None
