"""The trade step alone: a trained run's stored signals traded again, in another directory,
without its models (so nothing can be refitted or re-predicted).

With the run's own settings it must reproduce the run's metrics exactly: a tuning study's
best.yaml round trip rests on this. With other settings it trades them, and one fold traded
alone is that fold of the run (each window starts from the same capital and fill seed).
"""

import io
import json
import shutil
from pathlib import Path

import msgspec
import pandas as pd
import pytest
from rich.console import Console

from backtests.config import ConfigError, parse_config
from backtests.trade import trade
from backtests.trained import TrainedRun
from backtests.walkforward import run_walkforward
from catalog.jobs import generate_catalog
from models.splits import Fold

CONFIG = {
    "name": "traded",
    "walk_forward": {"folds": 2, "train_days": 4, "test_days": 2, "embargo_days": 1},
    "models": {"lightgbm": {"params": {"n_estimators": 30}}, "xgboost": {"params": {"n_estimators": 30}}},
    "strategy": {"entry_threshold": 0.6},
    "workers": 2,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[TrainedRun, dict, pd.DataFrame]:
    """A walk-forward run, copied without its models/ and loaded from the copy's train.json;
    the metrics and predictions the run reported."""
    work = tmp_path_factory.mktemp("trade")
    generate_catalog(work / "catalog", n_symbols=3, n_days=9, seed=11, signal_strength=0.3)
    config = parse_config({**CONFIG, "catalog": {"path": str(work / "catalog")}})
    result = run_walkforward(config, work / "runs", Console(file=io.StringIO()))
    copy = work / "moved"
    shutil.copytree(result.run_dir, copy, ignore=lambda d, _: [] if d != str(result.run_dir) else
                    [p.name for p in result.run_dir.iterdir() if p.name not in ("signals", "train.json")])
    assert sorted(p.name for p in copy.iterdir()) == ["signals", "train.json"]
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    return TrainedRun.load(copy), metrics, pd.read_parquet(result.run_dir / "predictions.parquet")


@pytest.mark.slow
def test_trading_the_stored_signals_with_the_runs_settings_reproduces_its_metrics(trained, tmp_path):
    run, metrics, _ = trained
    assert metrics["trading"]["trades"] > 0  # else the comparison below proves little
    traded = trade(run, run.config.strategy, tmp_path)
    assert traded.trading == metrics["trading"]
    assert traded.folds == [{k: row[k] for k in ("fold", "return", "trades")} for row in metrics["folds"]]
    assert traded.engine_events == metrics["run"]["engine_events"]
    assert len(traded.daily_returns) == metrics["trading"]["test_sessions"]
    assert (tmp_path / "fills.parquet").is_file() and (tmp_path / "windows" / "fold-1" / "positions.parquet").is_file()


@pytest.mark.slow
def test_other_settings_trade_the_same_signals_differently(trained, tmp_path):
    run, metrics, predictions = trained
    ensemble = predictions["ensemble"]
    assert 0.01 < ensemble.min() and ensemble.max() < 0.99  # so no bar reaches the threshold below
    never = msgspec.structs.replace(run.config.strategy, entry_threshold=0.99)
    traded = trade(run, never, tmp_path)
    assert traded.trading["trades"] == 0 and [f["trades"] for f in traded.folds] == [0, 0]
    assert traded.trading["final_equity"] == run.config.venue.starting_cash
    assert (traded.daily_returns == 0.0).all() and len(traded.daily_returns) == metrics["trading"]["test_sessions"]


@pytest.mark.slow
def test_one_fold_traded_alone_is_that_fold_of_the_run(trained, tmp_path):
    run, metrics, _ = trained
    traded = trade(run, run.config.strategy, tmp_path, folds=[1])
    assert traded.folds == [{k: metrics["folds"][1][k] for k in ("fold", "return", "trades")}]
    assert len(traded.daily_returns) == CONFIG["walk_forward"]["test_days"]
    assert sorted(p.name for p in (tmp_path / "windows").iterdir()) == ["fold-1"]


def hand_made_run(tmp_path: Path) -> TrainedRun:
    """A run as train.json describes it; nothing is traded, so no signals are needed."""
    fold = Fold(index=0, train_start_ns=0, train_end_ns=1, test_start_ns=2, test_end_ns=3)
    return TrainedRun(run_dir=tmp_path, config=parse_config({"models": {"lightgbm": {}, "xgboost": {}}}),
                      catalog_path=tmp_path / "catalog", symbols=("S000",), folds=(fold,))


def test_settings_weighing_other_models_than_the_signals_carry_are_refused(tmp_path):
    run = hand_made_run(tmp_path)
    lstm = msgspec.structs.replace(run.config.strategy, weights={"lightgbm": 1.0, "lstm": 1.0})
    with pytest.raises(ConfigError, match=r"weights \['lightgbm', 'lstm'\] must weigh exactly the models .* "
                                          r"\['lightgbm', 'xgboost'\]"):
        trade(run, lstm, tmp_path / "out")
    with pytest.raises(ConfigError, match=r"folds \[3\]: the run .* has folds \[0\]"):
        trade(run, run.config.strategy, tmp_path / "out", folds=[3])
    assert not (tmp_path / "out").exists()


def test_a_run_reads_back_from_its_manifest(tmp_path):
    run = hand_made_run(tmp_path)
    run.save()
    assert TrainedRun.load(tmp_path) == run
