"""A generated market with a fitted model, for the live benches (`sextant bench --part panel`).

The benches of the live side need a catalog and a registry to trade; fitting is the backtests'
step, so it lives here and `sextant` hands it to them (live reaches the train step only through
a function it is given: DESIGN.md).
"""

from pathlib import Path

from backtests.config import BacktestConfig, CatalogConfig
from backtests.train import build_panel
from catalog.jobs import generate_catalog
from catalog.store import MarketCatalog
from models.registry import ModelRegistry
from models.zoo import build_model

BENCH_DAY_INDEX = -1  # the catalog's last session: the six before it warm the models up


def lightgbm_market(root: Path, n_symbols: int) -> tuple[Path, Path, list[str], str]:
    """A 7-session catalog of ``n_symbols`` under ``root`` and a small LightGBM fitted on it in
    ``root/models``: (catalog, registry, symbols, the session to trade)."""
    catalog = generate_catalog(root / "catalog", n_symbols=n_symbols, n_days=7, seed=11, signal_strength=0.3)
    symbols = catalog.symbols()
    panel, _ = build_panel(MarketCatalog(catalog.path), symbols, BacktestConfig(catalog=CatalogConfig(path=catalog.path)))
    model = build_model("lightgbm", {"n_estimators": 30}, name="lightgbm")
    model.fit(panel, panel.usable_rows(require_label=True), seed=0)
    sessions = sorted({str(d) for d in catalog.read_bars(symbols[0]).index.tz_convert("America/New_York").date})
    ModelRegistry(root / "models").save(model, {"train_start": sessions[0], "train_end": sessions[-1], "fold": 0,
                                                "metrics": {}, "data_hash": "bench", "universe": symbols})
    return catalog.path, root / "models", symbols, sessions[BENCH_DAY_INDEX]
