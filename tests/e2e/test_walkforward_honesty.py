"""The walk-forward backtest's honesty checks, end to end on generated markets.

Two markets from the SAME seed, differing only in the planted signal strength (the
generator's random draws do not depend on it):

* ``signal_strength = 0``: a directionless random walk. Every model's out-of-sample AUC must be
  indistinguishable from a coin flip; an edge here would be a leak.
* ``signal_strength = 0.25``: a causal, learnable edge (catalog/synthetic.py measures AUC ~0.7
  for a linear model). The ensemble must find it and the strategy must trade it profitably
  after commissions and slippage in the NautilusTrader engine.

The planted run is also used to check the run directory (metrics.json, engine reports, report,
predictions, model registry) and that no fold saw its test window: models' training windows
end before their test windows (embargo included), predictions exist only for test-window bars,
and the registry's saved models reproduce the predictions.

Each market is generated once and each run executed once per module (module-scoped fixtures);
12 symbols x 60 sessions, 3 folds of 12 test sessions, light model parameters.
"""

import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rich.console import Console
from sklearn.metrics import roc_auc_score

from backtests.config import VenueConfig, load_config
from backtests.train import build_panel
from backtests.walkforward import RunResult, run_walkforward
from catalog.jobs import generate_catalog
from catalog.store import MarketCatalog
from models.features import FEATURE_NAMES
from models.registry import ModelRegistry

pytestmark = pytest.mark.slow

SEED = 7
SYMBOLS = 12
DAYS = 60
FOLDS, TRAIN_DAYS, TEST_DAYS, EMBARGO_DAYS = 3, 20, 12, 1
PLANTED_STRENGTH = 0.25
MODELS = ("lightgbm", "xgboost", "lstm")
NY = "America/New_York"

TRADING_KEYS = (
    "total_return", "cagr", "sharpe", "sortino", "max_drawdown", "win_rate", "profit_factor",
    "avg_return_per_trade", "trades", "exposure",
)
FOLD_KEYS = ("fold", "train_start", "train_end", "test_start", "test_end", "train_rows",
             "test_rows", "models", "return", "trades")


def write_config(tmp: Path, catalog: Path, name: str) -> Path:
    config = {
        "name": name,
        "seed": SEED,
        "catalog": {"path": str(catalog)},
        "walk_forward": {"folds": FOLDS, "train_days": TRAIN_DAYS, "test_days": TEST_DAYS,
                         "embargo_days": EMBARGO_DAYS},
        "models": {
            "lightgbm": {"params": {"n_estimators": 100}},
            "xgboost": {"params": {"n_estimators": 100}},
            "lstm": {"params": {"epochs": 2, "max_train_rows": 10000}},
        },
        "workers": 2,
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class Market:
    catalog: MarketCatalog
    run: RunResult
    config_path: Path


def _run_market(tmp_path_factory: pytest.TempPathFactory, name: str, strength: float) -> Market:
    tmp = tmp_path_factory.mktemp(name)
    catalog = generate_catalog(tmp / "catalog", SYMBOLS, DAYS, SEED, strength)
    config_path = write_config(tmp, tmp / "catalog", name)
    result = run_walkforward(load_config(config_path), tmp / "runs", Console(file=io.StringIO()))
    return Market(catalog, result, config_path)


@pytest.fixture(scope="module")
def null_market(tmp_path_factory) -> Market:
    return _run_market(tmp_path_factory, "null", 0.0)


@pytest.fixture(scope="module")
def planted_market(tmp_path_factory) -> Market:
    return _run_market(tmp_path_factory, "planted", PLANTED_STRENGTH)


@pytest.fixture(scope="module")
def planted_predictions(planted_market) -> pd.DataFrame:
    return pd.read_parquet(planted_market.run.run_dir / "predictions.parquet")


@pytest.fixture(scope="module")
def metas(planted_market) -> dict[str, list[dict]]:
    """Registry meta of every saved model version, per model, ordered by fold."""
    root = planted_market.run.run_dir / "models"
    out = {}
    for name in MODELS:
        versions = sorted((root / name).glob("v*/meta.json"))
        out[name] = sorted((json.loads(p.read_text()) for p in versions), key=lambda m: m["fold"])
    return out


def session_dates(catalog: MarketCatalog) -> list[pd.Timestamp]:
    """The New York dates of the sessions present in the catalog (from the bars themselves)."""
    days = set()
    for symbol in catalog.symbols():
        days |= set(catalog.read_bars(symbol).index.tz_convert(NY).normalize().tz_localize(None))
    return sorted(days)


def ny_date(iso: str | pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(iso).tz_convert(NY).normalize().tz_localize(None)


def sessions_between(sessions: list[pd.Timestamp], lo: pd.Timestamp, hi: pd.Timestamp) -> int:
    """Sessions whose New York date lies in [lo, hi) (window bounds sit at New York midnight)."""
    return sum(ny_date(lo) <= d < ny_date(hi) for d in sessions)


# -- 1. the null market has no edge; the planted one is found and traded ------------------------


def test_null_market_every_model_is_a_coin_flip(null_market):
    metrics = null_market.run.metrics
    assert null_market.catalog.synthetic_origin()["signal_strength"] == 0.0
    assert set(metrics["models"]) == {*MODELS, "ensemble"}
    for name, m in metrics["models"].items():
        # Enough labelled out-of-sample rows for +-0.03 to be a meaningful band.
        assert m["rows"] >= 20_000, (name, m)
        assert abs(m["auc"] - 0.5) <= 0.03, f"{name} finds an edge in a random walk: {m}"
    # What the README promises: on a random walk the ensemble is never sure enough to trade.
    assert metrics["trading"]["trades"] == 0, metrics["trading"]
    assert metrics["trading"]["final_equity"] == metrics["trading"]["start_equity"]
    print("null market:", {n: round(m["auc"], 4) for n, m in metrics["models"].items()},
          "rows", metrics["models"]["ensemble"]["rows"],
          "return", metrics["trading"]["total_return"], "trades", metrics["trading"]["trades"])


def test_planted_signal_is_found_and_traded_profitably(planted_market, null_market):
    planted, null = planted_market.run.metrics, null_market.run.metrics
    # Same seed, same bars timeline: the only difference between the markets is the signal.
    p_origin, n_origin = planted_market.catalog.synthetic_origin(), null_market.catalog.synthetic_origin()
    assert p_origin["seed"] == n_origin["seed"] == SEED
    assert p_origin["signal_strength"] == PLANTED_STRENGTH
    assert planted_market.catalog.symbols() == null_market.catalog.symbols()
    assert planted_market.catalog.read_bars("S000").index.equals(null_market.catalog.read_bars("S000").index)

    ensemble = planted["models"]["ensemble"]
    assert ensemble["rows"] >= 20_000
    assert ensemble["auc"] > 0.55, ensemble
    for name in MODELS:
        # Every model learns what was planted, far beyond the null market's noise.
        assert planted["models"][name]["auc"] > null["models"][name]["auc"] + 0.1, name

    trading = planted["trading"]
    assert trading["trades"] >= 100, trading
    assert trading["total_return"] > 0, trading
    assert trading["final_equity"] > trading["start_equity"]
    # ... and that profit is net of the default costs, which were really charged.
    venue = load_config(planted_market.config_path).venue
    assert venue == VenueConfig() and venue.commission_per_share > 0 and venue.slippage_probability > 0
    fills = pd.read_parquet(planted_market.run.run_dir / "fills.parquet")
    commissions = fills["commissions"].str.extract(r"([0-9.]+) USD", expand=False).astype(float)
    assert len(fills) >= 2 * trading["trades"] and (commissions >= venue.min_commission).all()
    assert commissions.sum() > 0
    print("planted market:", {n: round(m["auc"], 4) for n, m in planted["models"].items()},
          "return", trading["total_return"], "trades", trading["trades"], "sharpe", trading["sharpe"])


# -- 2. the run directory --------------------------------------------------------------------


def test_metrics_json_has_every_reported_key(planted_market):
    run_dir = planted_market.run.run_dir
    on_disk = json.loads((run_dir / "metrics.json").read_text())
    assert on_disk["trading"] == pytest.approx(planted_market.run.metrics["trading"])
    for key in TRADING_KEYS:
        assert key in on_disk["trading"], key
        assert isinstance(on_disk["trading"][key], int | float) and math.isfinite(on_disk["trading"][key]), key
    for name in (*MODELS, "ensemble"):
        assert 0.0 < on_disk["models"][name]["auc"] < 1.0
        assert 0.0 < on_disk["models"][name]["accuracy"] < 1.0
    assert len(on_disk["folds"]) == FOLDS
    for k, row in enumerate(on_disk["folds"]):
        assert set(FOLD_KEYS) <= set(row), row.keys()
        assert row["fold"] == k
        assert set(row["models"]) == {*MODELS, "ensemble"}
        assert all({"auc", "accuracy"} <= set(m) for m in row["models"].values())
    assert sum(row["trades"] for row in on_disk["folds"]) == on_disk["trading"]["trades"]
    assert on_disk["run"]["symbols"] == [f"S{i:03d}" for i in range(SYMBOLS)]
    assert "SYNTHETIC" in on_disk["run"]["data_note"]


def test_trading_metrics_agree_with_engine_reports(planted_market, metas):
    run_dir, trading = planted_market.run.run_dir, planted_market.run.metrics["trading"]
    fills = pd.read_parquet(run_dir / "fills.parquet")
    positions = pd.read_parquet(run_dir / "positions.parquet")
    assert len(fills) > 0 and len(positions) > 0
    assert set(fills["fold"]) == set(positions["fold"]) == set(range(FOLDS))
    closed = positions[positions["ts_closed"].notna()]
    pnl = closed["realized_pnl"].astype(str).str.split(" ").str[0].astype(float)
    assert trading["trades"] == len(closed)
    assert trading["win_rate"] == pytest.approx((pnl > 0).mean())
    assert trading["profit_factor"] == pytest.approx(pnl[pnl > 0].sum() / -pnl[pnl < 0].sum())
    assert trading["avg_return_per_trade"] == pytest.approx(closed["realized_return"].mean())
    assert trading["total_return"] == pytest.approx(trading["final_equity"] / trading["start_equity"] - 1)
    assert 0 < trading["exposure"] <= 1
    assert 0 <= trading["max_drawdown"] < 1
    # Every order filled inside its own fold's test window, during the regular session, and
    # every position is flat by the close (the strategy holds nothing overnight).
    windows = {m["fold"]: m for m in metas["lightgbm"]}
    for fold, rows in fills.groupby("fold"):
        ts = pd.to_datetime(rows["ts_last"], utc=True)
        assert (ts >= pd.Timestamp(windows[fold]["test_start"])).all()
        assert (ts < pd.Timestamp(windows[fold]["test_end"])).all()
        minute = ts.dt.tz_convert(NY).dt.hour * 60 + ts.dt.tz_convert(NY).dt.minute
        assert minute.between(9 * 60 + 31, 16 * 60).all()
    opened = pd.to_datetime(closed["ts_opened"], utc=True).dt.tz_convert(NY).dt.date
    shut = pd.to_datetime(closed["ts_closed"], utc=True).dt.tz_convert(NY).dt.date
    assert (opened == shut).all()


def test_report_html_is_self_contained_with_figures(planted_market):
    html = (planted_market.run.run_dir / "report.html").read_text()
    assert html.count("Plotly.newPlot") >= 3  # equity/drawdown, per-model AUC, importance
    assert re.search(r"<script[^>]*\bsrc\s*=", html, re.IGNORECASE) is None  # works offline
    assert re.search(r"<link[^>]*\bhref\s*=\s*[\"']?(https?:)?//", html, re.IGNORECASE) is None
    assert len(html) > 1_000_000 and "plotly.js" in html  # the library itself is inlined
    for label in ("Sharpe", "Max drawdown", "Profit factor", "Folds"):
        assert label in html


def test_predictions_match_reported_model_metrics(planted_market, planted_predictions):
    preds, metrics = planted_predictions, planted_market.run.metrics
    assert {"fold", "ts", "symbol", "y", *MODELS, "ensemble"} <= set(preds.columns)
    labelled = preds[np.isfinite(preds["y"])]
    for name in (*MODELS, "ensemble"):
        assert preds[name].between(0, 1).all()
        assert metrics["models"][name]["rows"] == len(labelled)
        assert metrics["models"][name]["auc"] == pytest.approx(roc_auc_score(labelled["y"], labelled[name]))
    # No (symbol, bar) is predicted twice: test windows do not overlap.
    assert not preds.duplicated(["symbol", "ts"]).any()


def test_model_registry_holds_every_fold_model(planted_market, metas):
    root = planted_market.run.run_dir / "models"
    for name in MODELS:
        assert (root / name / "v0001" / "meta.json").is_file()
        assert [m["version"] for m in metas[name]] == list(range(1, FOLDS + 1))
        assert [m["fold"] for m in metas[name]] == list(range(FOLDS))
        for meta, row in zip(metas[name], planted_market.run.metrics["folds"]):
            assert meta["name"] == name and meta["kind"] == name
            assert meta["features"] == list(FEATURE_NAMES)
            for key in ("train_start", "train_end", "test_start", "test_end"):
                assert pd.Timestamp(meta[key]).tzinfo is not None
            assert meta["metrics"]["auc"] == pytest.approx(row["models"][name]["auc"])
            assert len(meta["data_hash"]) == 64 and int(meta["data_hash"], 16) >= 0
        # Each fold trains on different rows, so the fingerprints differ.
        assert len({m["data_hash"] for m in metas[name]}) == FOLDS


# -- 3. no look-ahead at the split level ---------------------------------------------------------


def test_models_never_train_on_their_test_window(planted_market, metas):
    sessions = session_dates(planted_market.catalog)
    fold_rows = {row["fold"]: row["train_rows"] for row in planted_market.run.metrics["folds"]}
    for name in MODELS:
        previous_test_end = None
        for meta in metas[name]:
            train_start, train_end = pd.Timestamp(meta["train_start"]), pd.Timestamp(meta["train_end"])
            test_start, test_end = pd.Timestamp(meta["test_start"]), pd.Timestamp(meta["test_end"])
            assert train_start < train_end <= test_start < test_end
            # Row level: the bars the model was fitted on, and the future their labels looked
            # at, end inside the train window; whole embargo sessions separate them from the test.
            fitted = meta["fitted"]
            assert fitted["rows"] == fold_rows[meta["fold"]] > 0
            first, last_seen = pd.Timestamp(fitted["first_ts"]), pd.Timestamp(fitted["last_label_end"])
            assert train_start <= first <= pd.Timestamp(fitted["last_ts"]) <= last_seen < train_end
            embargo = [d for d in sessions if ny_date(last_seen) < d < ny_date(test_start)]
            assert len(embargo) >= EMBARGO_DAYS, (name, meta["fold"], last_seen, test_start)
            assert sessions_between(sessions, train_start, train_end) == TRAIN_DAYS
            # The embargo: whole sessions between the end of training and the test window.
            assert sessions_between(sessions, train_end, test_start) == EMBARGO_DAYS
            assert sessions_between(sessions, test_start, test_end) == TEST_DAYS
            if previous_test_end is not None:
                assert test_start == previous_test_end  # test windows tile, no gaps or overlap
            previous_test_end = test_end
        assert ny_date(metas[name][-1]["test_end"]) == sessions[-1] + pd.Timedelta(days=1)


def test_predictions_only_for_test_window_bars(planted_market, planted_predictions, metas):
    preds = planted_predictions
    windows = {m["fold"]: m for m in metas["lightgbm"]}
    assert set(preds["fold"]) == set(windows)
    for fold, rows in preds.groupby("fold"):
        meta = windows[fold]
        ts = rows["ts"].to_numpy()
        lo, hi = pd.Timestamp(meta["test_start"]).value, pd.Timestamp(meta["test_end"]).value
        assert (ts >= lo).all() and (ts < hi).all()
        assert (ts >= pd.Timestamp(meta["train_end"]).value).all()
        days = pd.to_datetime(ts, utc=True).tz_convert(NY).normalize().unique()
        assert len(days) == TEST_DAYS
        assert set(rows["symbol"]) == set(planted_market.catalog.symbols())
    # The MLSignal rows the engine replays are the same test-window bars, nothing earlier.
    signal_files = list((planted_market.run.run_dir / "signals" / "data").glob("*signal*/*/*.parquet"))
    assert signal_files
    signal_ts = np.concatenate([pd.read_parquet(f, columns=["ts_init"])["ts_init"].to_numpy() for f in signal_files])
    assert len(signal_ts) == len(preds)
    assert signal_ts.min() >= pd.Timestamp(windows[0]["test_start"]).value
    assert np.isin(signal_ts, preds["ts"].to_numpy()).all()


def test_registry_models_reproduce_the_predictions(planted_market, planted_predictions):
    """Each fold's saved model, reloaded, scores its test rows exactly as the run did."""
    config = load_config(planted_market.config_path)
    panel, _ = build_panel(planted_market.catalog, planted_market.catalog.symbols(), config)
    row_of = {(panel.symbols[c], t): i for i, (c, t) in enumerate(zip(panel.symbol, panel.ts_ns))}
    registry = ModelRegistry(planted_market.run.run_dir / "models")
    for fold, preds in planted_predictions.groupby("fold"):
        rows = np.array([row_of[(s, t)] for s, t in zip(preds["symbol"], preds["ts"])])
        for name in MODELS:
            model, meta = registry.load(name, fold + 1)
            assert meta["fold"] == fold
            np.testing.assert_allclose(model.predict_proba(panel, rows), preds[name].to_numpy(), rtol=1e-5, atol=1e-6)
