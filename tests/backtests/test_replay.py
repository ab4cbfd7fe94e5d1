"""Catalog replay: the engine sees exactly the catalog's bars, in time order, with the
SignalActor and EnsembleStrategy of the backtest when models are given."""

from pathlib import Path

import pandas as pd
import pytest

from backtests.config import parse_config
from backtests.replay import ReplayEvent, replay
from backtests.train import build_panel
from catalog.errors import CalendarRangeError
from catalog.jobs import generate_catalog
from catalog.store import EmptyCatalogError, MarketCatalog
from models.zoo import build_model

LAST_TWO = ("2024-12-30", "2024-12-31")


@pytest.fixture(scope="module")
def catalog_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "catalog"
    generate_catalog(path, n_symbols=2, n_days=4, seed=3, signal_strength=0.2)
    return path


def test_replay_shows_every_catalog_bar_once_in_time_order(catalog_path: Path):
    events: list[ReplayEvent] = []
    summary = replay(catalog_path, *LAST_TWO, events.append)
    catalog = MarketCatalog(catalog_path)
    for symbol in ("S000", "S001"):
        expected = catalog.read_bars(symbol, start=pd.Timestamp("2024-12-30 14:30", tz="UTC"))
        seen = [e for e in events if e.symbol == symbol]
        assert [e.ts_ns for e in seen] == list(expected.index.asi8)
        first = expected.iloc[0]
        assert seen[0].detail == (f"o={first.open:.4f} h={first.high:.4f} l={first.low:.4f} "
                                  f"c={first.close:.4f} v={first.volume:.0f}")  # the catalog's 4 decimals
        assert summary.symbols[symbol].bars == len(expected) == 780
        assert summary.symbols[symbol].missing_minutes == 0
    assert [e.ts_ns for e in events] == sorted(e.ts_ns for e in events)
    assert summary.sessions == 2


def test_missing_minutes_are_counted(tmp_path: Path, catalog_path: Path):
    source = MarketCatalog(catalog_path).read_bars("S000")
    holed = source.drop(source.index[source.index.normalize() == pd.Timestamp("2024-12-31", tz="UTC")][10:17])
    MarketCatalog(tmp_path / "holed").write_bars("S000", holed)
    summary = replay(tmp_path / "holed", "2024-12-31", "2024-12-31", lambda e: None)
    assert summary.symbols["S000"].missing_minutes == 7


def test_unknown_symbols_and_empty_ranges_are_clear_errors(catalog_path: Path):
    with pytest.raises(EmptyCatalogError, match="no bars for NOPE"):
        replay(catalog_path, *LAST_TWO, lambda e: None, symbols=["S000", "NOPE"])
    with pytest.raises(CalendarRangeError, match="no NYSE session between 2024-12-28 and 2024-12-29"):
        replay(catalog_path, "2024-12-28", "2024-12-29", lambda e: None)


@pytest.mark.slow
def test_replay_with_models_runs_the_signal_actor_and_strategy(tmp_path: Path, catalog_path: Path):
    config = parse_config({"models": {"lightgbm": {}},
                           "strategy": {"entry_threshold": 0.55, "weights": {"lightgbm": 1.0}}})
    panel, _ = build_panel(MarketCatalog(catalog_path), ["S000", "S001"], config)
    model = build_model("lightgbm", {"n_estimators": 20}, name="lightgbm")
    model.fit(panel, panel.usable_rows(require_label=True), seed=0)
    model.save(tmp_path / "lightgbm")
    events: list[ReplayEvent] = []
    summary = replay(catalog_path, "2024-12-26", "2024-12-31", events.append,
                     model_dirs={"lightgbm": tmp_path / "lightgbm"}, config=config)
    bar_ts = {(e.symbol, e.ts_ns) for e in events if e.kind == "bar"}
    signals = [e for e in events if e.kind == "signal"]
    assert signals and all((e.symbol, e.ts_ns) in bar_ts for e in signals)
    assert all(e.detail.startswith("lightgbm=") for e in signals)
    # The actor needs its feature warm-up before the first signal: never on the first bars.
    first_bar = min(e.ts_ns for e in events if e.kind == "bar")
    assert min(e.ts_ns for e in signals) > first_bar + 390 * 60 * 10**9
    assert summary.symbols["S000"].signals + summary.symbols["S001"].signals == len(signals)
    assert any(e.kind == "order" for e in events)
