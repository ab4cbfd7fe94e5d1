"""A small catalog with a model registry fitted on it, for tests that run the live node's
real SignalActor and EnsembleStrategy (rehearsals, the CLI)."""

import shutil
from pathlib import Path

import pytest

from backtests.config import BacktestConfig, CatalogConfig
from backtests.train import build_panel
from catalog.jobs import generate_catalog
from catalog.store import MarketCatalog
from live.journal import JournalSettings
from live.settings import LiveConfig, ModelsSection
from models.promotion import PROMOTION_FILE
from models.registry import ModelRegistry
from models.zoo import build_model
from strategies.settings import StrategySettings

SYMBOLS = ["S000", "S001"]
# sessions of this catalog: 2024-12-20, 23, 24 (half day), 26, 27, 30, 31
FIRST, LAST = "2024-12-20", "2024-12-31"


@pytest.fixture(scope="session")
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
        "universe": SYMBOLS,
    })
    return catalog, root / "models"


def unpinned_copy(models: Path, dest: Path) -> Path:
    """The market's registry at ``dest`` as a first run finds it, nothing pinned: a node built
    on the shared registry pins its newest ensemble there, so what it holds depends on which
    tests ran before."""
    shutil.copytree(models, dest, ignore=shutil.ignore_patterns(PROMOTION_FILE, ".*.lock"))
    return dest


def live_config(models: Path, **fields) -> LiveConfig:
    """A rehearsal's config; its journal stays in memory unless ``journal=`` says otherwise."""
    return LiveConfig(**{
        "universe": SYMBOLS,
        "models": ModelsSection(registry=str(models)),
        "strategy": StrategySettings(entry_threshold=0.51, weights={"lightgbm": 1.0}),
        "journal": JournalSettings(sinks=()),
        **fields,
    })


