"""The window runner: one fresh process per window, results in the order asked, a window's
Python error raised in the parent with the child's traceback, a dead window a clear error."""

import os
from pathlib import Path

import pandas as pd
import pytest
from nautilus_trader.trading.strategy import Strategy

from backtests.bench import IdleStrategyConfig
from backtests.window import VenueSpec, WindowCrashedError, WindowSpec, run_windows
from catalog.instruments import instrument_id
from catalog.sessions import session_minutes, trading_sessions
from catalog.store import MarketCatalog

DAY = "2024-11-26"


class DyingStrategy(Strategy):
    """Ends its process the way an engine panic does: no Python error, no result."""

    def on_start(self) -> None:
        os._exit(3)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> MarketCatalog:
    minutes = session_minutes(trading_sessions(DAY, DAY))
    bars = pd.DataFrame({"open": 10.0, "high": 10.01, "low": 9.99, "close": 10.0, "volume": 1e6}, index=minutes)
    store = MarketCatalog(tmp_path_factory.mktemp("runner") / "catalog")
    store.write_bars("AAA", bars, sector="TECH")
    return store


def spec(catalog: MarketCatalog, name: str, out_dir: Path, strategy: str = "backtests.bench:IdleStrategy") -> WindowSpec:
    minutes = session_minutes(trading_sessions(DAY, DAY))
    iid = str(instrument_id("AAA"))
    return WindowSpec(
        name=name, catalog_path=str(catalog.path), signal_catalog_path=None, instrument_ids=(iid,),
        start_ns=int(minutes[0].value), end_ns=int(minutes[-1].value), strategy={"instrument_ids": [iid]},
        venue=VenueSpec(starting_cash=1e5, commission_per_share=0.005, min_commission=1.0,
                        slippage_probability=0.0, seed=1),
        out_dir=str(out_dir), strategy_path=strategy,
        config_path=f"{IdleStrategyConfig.__module__}:{IdleStrategyConfig.__name__}",
    )


def test_windows_run_in_processes_of_their_own_and_come_back_in_the_order_asked(catalog, tmp_path):
    specs = [spec(catalog, f"w{i}", tmp_path / f"w{i}") for i in range(3)]
    done = []
    results = run_windows(specs, workers=2, on_done=lambda r: done.append(r.name))
    assert [r.name for r in results] == ["w0", "w1", "w2"] and sorted(done) == ["w0", "w1", "w2"]
    assert all(Path(r.account_path).is_file() and r.iterations == 390 for r in results)


def test_a_windows_python_error_is_raised_here_with_the_childs_traceback(catalog, tmp_path):
    (tmp_path / "taken").write_text("a file where the window's output directory should go")
    with pytest.raises(FileExistsError) as raised:
        run_windows([spec(catalog, "ok", tmp_path / "ok"), spec(catalog, "bad", tmp_path / "taken")], workers=2)
    assert "in run_window" in str(raised.value.__cause__)


def test_a_window_that_dies_is_a_crash_naming_it(catalog, tmp_path):
    dying = spec(catalog, "dies", tmp_path / "dies", strategy=f"{__name__}:DyingStrategy")
    with pytest.raises(WindowCrashedError, match="'dies' died without a Python error .exit code 3"):
        run_windows([dying])
