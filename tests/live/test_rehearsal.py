"""Rehearsals (`sextant live --rehearse`): the day must be one the catalog can replay, and
Ctrl-C stops the day the way it stops a live node (cancel, flatten, journal)."""

import os
import signal
from pathlib import Path

import pandas as pd
import pytest

from backtests.config import BacktestConfig, CatalogConfig
from backtests.walkforward import build_panel
from catalog.jobs import generate_catalog
from catalog.store import MarketCatalog
from live.rehearsal import RehearsalError, rehearse
from live.settings import LiveConfig, ModelsSection, StrategySection
from models.registry import ModelRegistry
from models.zoo import build_model

SYMBOLS = ["S000", "S001"]
# sessions of this catalog: 2024-12-20, 23, 24 (half day), 26, 27, 30, 31
FIRST, SECOND, LAST = "2024-12-20", "2024-12-23", "2024-12-31"
TRADE_DAY = "2024-12-30"


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 7-session catalog and a small LightGBM fitted on it, saved in a registry."""
    root = tmp_path_factory.mktemp("rehearsal")
    catalog = root / "catalog"
    generate_catalog(catalog, n_symbols=len(SYMBOLS), n_days=7, seed=5, signal_strength=0.3)
    config = BacktestConfig(catalog=CatalogConfig(path=catalog))
    panel, _ = build_panel(MarketCatalog(catalog), SYMBOLS, config)
    model = build_model("lightgbm", {"n_estimators": 30}, name="lightgbm")
    model.fit(panel, panel.usable_rows(require_label=True), seed=0)
    ModelRegistry(root / "models").save(model, {
        "train_start": FIRST, "train_end": LAST, "fold": 0, "metrics": {}, "data_hash": "test",
    })
    return catalog, root / "models"


def live_config(models: Path, **fields) -> LiveConfig:
    return LiveConfig(
        universe=SYMBOLS,
        models=ModelsSection(registry=str(models), weights={"lightgbm": 1.0}),
        strategy=StrategySection(entry_threshold=0.51),
        **fields,
    )


def test_a_day_outside_the_catalog_names_the_catalogs_range(market):
    catalog, models = market
    with pytest.raises(RehearsalError, match=f"no bars on 2025-01-03: it holds {FIRST} .. {LAST}"):
        rehearse(live_config(models), catalog, "2025-01-03")


def test_a_day_that_is_not_a_session_is_refused(market):
    catalog, models = market
    with pytest.raises(RehearsalError, match="2024-12-25 is not an NYSE session"):
        rehearse(live_config(models), catalog, "2024-12-25")


def test_the_first_day_has_no_warm_up_so_no_signal_can_be_produced(market):
    catalog, models = market
    with pytest.raises(RehearsalError, match=f"no warm-up history .* starts on {FIRST}.*no signal can be produced"):
        rehearse(live_config(models), catalog, FIRST)


@pytest.mark.slow
def test_ctrl_c_stops_the_rehearsal_cancels_flattens_and_writes_the_journal(market, tmp_path: Path):
    """A real SIGINT in the middle of the day (NautilusTrader would take it for the node's
    own loop, stop the node and leave the day running to its end)."""
    catalog, models = market
    journal = tmp_path / "journal"
    progress: list[int] = []
    positions: list[int] = []

    def on_minute(done: int, _total: int) -> None:
        progress.append(done)
        if done == 90:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        rehearse(live_config(models), catalog, TRADE_DAY, out_dir=journal, on_minute=on_minute)
    assert 90 <= progress[-1] < 390  # stopped where the signal came, not at the end
    orders = pd.read_parquet(journal / "orders.parquet")
    fills = pd.read_parquet(journal / "fills.parquet")
    assert len(orders) > 0 and len(fills) > 0  # it traded before the stop
    # every position the fills opened was closed by the stop: net zero per symbol
    signed = fills["last_qty"].astype(float) * fills["side"].map({"BUY": 1, "SELL": -1})
    positions = signed.groupby(fills["instrument_id"]).sum().tolist()
    assert positions and all(qty == 0 for qty in positions)
