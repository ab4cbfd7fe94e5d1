"""A walk-forward run with horizon models, the weekly universe screen and the
volatility-targeted stop: what the train step stores, what the backtest trades, what the
report and the live actor are handed."""

import io
import shutil

import msgspec
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from backtests.config import ConfigError, parse_config
from backtests.trade import trade
from backtests.trained import TrainedRun
from backtests.walkforward import run_walkforward
from catalog.jobs import generate_catalog
from catalog.store import MarketCatalog
from models.features import ny_day
from models.horizons import HorizonModels
from models.outlook import read_outlook_spec
from models.universe import week_start
from strategies.risk import RiskRules
from strategies.signals import MLSignal, signals_from_table

K = 3.0
CONFIG = {
    "name": "outlook",
    "walk_forward": {"folds": 2, "train_days": 5, "test_days": 3, "embargo_days": 1},
    "models": {"lightgbm": {"params": {"n_estimators": 30}}},
    "strategy": {"entry_threshold": 0.6, "risk": {"stop_volatility_multiple": K, "stop_min": 0.002, "stop_max": 0.05}},
    "horizons": {"bars": [1, 5, 30], "trade": 30},
    "workers": 2,
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("outlook-run")
    catalog = generate_catalog(work / "catalog", n_symbols=4, n_days=12, seed=13, signal_strength=0.3)
    volumes = {s: catalog.read_bars(s)["volume"].sum() for s in catalog.symbols()}
    # A volume floor between the symbols' daily volumes: the screen keeps some and drops others.
    floor = float(np.median(list(volumes.values()))) / 12
    screen = {"lookback_days": 5, "min_avg_volume": floor, "min_atr_pct": 0.0, "max_atr_pct": 1.0,
              "min_beta": -100.0, "max_beta": 100.0}
    config = parse_config({**CONFIG, "catalog": {"path": str(work / "catalog")}, "universe_screen": screen})
    result = run_walkforward(config, work / "runs", Console(file=io.StringIO()))
    return result, catalog


def stored_signals(run_dir) -> pd.DataFrame:
    store = MarketCatalog(run_dir / "signals")
    ids = [f"S00{i}.ALPACA" for i in range(4)]
    signals = signals_from_table(store.read_table(MLSignal, ids))
    return pd.DataFrame({"ts": [s.ts_event for s in signals], "symbol": [s.instrument_id.symbol.value for s in signals],
                         "decision": [s.decision for s in signals], "volatility": [s.volatility for s in signals],
                         "horizon": [s.horizon for s in signals], "horizons": [s.horizons for s in signals],
                         "expected_return": [s.expected_return for s in signals]})


@pytest.mark.slow
def test_only_the_weeks_screened_stocks_have_signals(run) -> None:
    result, _ = run
    universe = pd.read_parquet(result.run_dir / "universe.parquet")
    assert universe["selected"].any() and not universe["selected"].all()
    signals = stored_signals(result.run_dir)
    weeks = [week_start(d) for d in pd.to_datetime(ny_day(signals["ts"].to_numpy()), unit="D").date]
    chosen = set(zip(universe.loc[universe["selected"], "week"], universe.loc[universe["selected"], "symbol"]))
    assert all((w, s) in chosen for w, s in zip(weeks, signals["symbol"]))
    preds = pd.read_parquet(result.run_dir / "predictions.parquet")
    assert len(signals) == int(preds["traded"].sum()) < len(preds)  # the screen removed rows
    report = (result.run_dir / "report.html").read_text()
    assert "Universe over time" in report and "Horizon models (out of sample)" in report


@pytest.mark.slow
def test_stored_signals_carry_the_outlook_and_the_models_are_handed_to_live(run) -> None:
    result, _ = run
    signals = stored_signals(result.run_dir)
    preds = pd.read_parquet(result.run_dir / "predictions.parquet")
    merged = signals.merge(preds[preds["traded"]], on=["ts", "symbol"], suffixes=("", "_batch"))
    assert len(merged) == len(signals)
    assert (merged["decision"] == merged["decision_batch"]).all()
    np.testing.assert_array_equal(merged["expected_return"], merged["forecast_30"])
    assert set(signals["horizon"]) == {30} and set(signals["horizons"]) == {"1,5,30"}
    spec = read_outlook_spec(result.run_dir / "models")
    assert spec["horizon"] == 30 and spec["volatility_feature"] == "rv_60"
    assert spec["horizons_dir"].endswith("horizons/fold-1")  # the newest fold's models
    assert HorizonModels.load(spec["horizons_dir"]).horizons == (1, 5, 30)


@pytest.mark.slow
def test_entry_stops_sit_k_sigmas_over_the_horizon_from_the_entry(run) -> None:
    result, catalog = run
    signals = stored_signals(result.run_dir).set_index(["ts", "symbol"])
    checked = []
    for fold in (0, 1):
        orders = pd.read_parquet(result.run_dir / "windows" / f"fold-{fold}" / "orders.parquet")
        for entry in orders[orders["tags"] == "ENTRY"].itertuples():
            symbol = entry.instrument_id.split(".")[0]
            stop = orders[(orders["ts_init"] == entry.ts_init) & (orders["instrument_id"] == entry.instrument_id)
                          & (orders["tags"].str.contains("STOP_LOSS"))]
            close = catalog.read_bars(symbol)["close"].loc[pd.Timestamp(entry.ts_init, tz="UTC")]
            sigma = signals.loc[(entry.ts_init, symbol), "volatility"]
            distance = min(max(K * sigma * np.sqrt(30), 0.002), 0.05)
            expected = close * (1 - distance) if entry.side == "BUY" else close * (1 + distance)
            assert abs(float(stop["trigger_price"].iloc[0]) - expected) <= 0.01 + 1e-9
            checked.append(distance)
    assert len(checked) >= 3 and np.ptp(checked) > 0.001  # stops differ with the volatility


def test_an_unknown_volatility_feature_is_a_config_error(tmp_path) -> None:
    generate_catalog(tmp_path / "catalog", n_symbols=1, n_days=12, seed=1)
    config = parse_config({**CONFIG, "catalog": {"path": str(tmp_path / "catalog")},
                           "signal": {"volatility_feature": "garch_vol"}})
    with pytest.raises(ConfigError, match="'signal.volatility_feature': 'garch_vol' is not a feature column"):
        run_walkforward(config, tmp_path / "runs", Console(file=io.StringIO()))
    assert not (tmp_path / "runs").exists()  # refused before a run directory is made


@pytest.mark.slow
def test_a_run_trained_before_the_outlook_cannot_trade_volatility_stops(run, tmp_path) -> None:
    result, _ = run
    old = tmp_path / "old-run"
    shutil.copytree(result.run_dir, old, ignore=shutil.ignore_patterns("windows", "models"))
    outlook_columns = {"decision", "confidence", "expected_return", "risk_score", "volatility", "horizon",
                       "horizons", "horizon_returns"}
    for file in (old / "signals" / "data").glob("custom_ml_signal/*/*.parquet"):
        table = pq.read_table(file)
        pq.write_table(table.select([c for c in table.column_names if c not in outlook_columns]), file)
    trained = TrainedRun.load(old)
    with pytest.raises(ConfigError, match="trained before signals carried one"):
        trade(trained, trained.config.strategy, tmp_path / "out")
    fixed = msgspec.structs.replace(trained.config.strategy, risk=RiskRules())
    assert trade(trained, fixed, tmp_path / "out").trading["trades"] > 0  # the old signals still trade
