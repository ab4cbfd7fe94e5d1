"""Parity: one catalog day through the walk-forward backtest path and through a live
rehearsal (Polygon sandbox -> PolygonDataClient -> SignalActor -> EnsembleStrategy ->
AlpacaExecutionClient -> Alpaca sandbox) gives the same signals and the same order intents,
in the same order.

What may differ, and why (the venue rules, not the strategy):
- Backtest leg: zero commission and no slippage here, so both venues charge the same and the
  strategy sizes from the same equity. (With costs on, sizing follows equity and would drift.)
- Market orders fill at the close of the bar the strategy just saw in both venues; stops fill
  at their trigger and targets at their limit in both. When one bar touches both legs of a
  bracket, the backtest venue visits the nearer of high/low first (adaptive ordering) while
  the sandbox takes the stop first: the fills (not the intents) would differ on such a bar.
- Client order ids embed the node's clock date (today in a rehearsal, the bar date in a
  backtest), so they are not compared; creation order is.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from backtests.config import parse_config
from backtests.walkforward import run_walkforward
from catalog.jobs import generate_catalog
from live.journal import JournalSettings
from live.rehearsal import rehearse
from live.settings import LiveConfig, ModelsSection
from strategies.risk import RiskRules
from strategies.settings import StrategySettings

INTENT = ["instrument_id", "side", "quantity", "type", "price", "trigger_price", "time_in_force", "tags"]
DAY = "2024-12-31"
# Stops from the signals' forecast volatility: the order intents then carry the outlook too.
RISK = {"stop_volatility_multiple": 4.0}


@pytest.fixture(scope="module")
def both_paths(tmp_path_factory) -> tuple[Path, object]:
    work = tmp_path_factory.mktemp("parity")
    catalog = work / "catalog"
    generate_catalog(catalog, n_symbols=4, n_days=9, seed=21, signal_strength=0.3)
    config = parse_config({
        "name": "parity",
        "catalog": {"path": str(catalog)},
        "walk_forward": {"folds": 1, "train_days": 6, "test_days": 1, "embargo_days": 1},
        "models": {"lightgbm": {"params": {"n_estimators": 60}}},
        "strategy": {"entry_threshold": 0.6, "weights": {"lightgbm": 1.0}, "risk": RISK},
        "horizons": {"bars": [1, 5, 30], "trade": 30},
        "venue": {"starting_cash": 100_000, "commission_per_share": 0.0, "min_commission": 0.0,
                  "slippage_probability": 0.0},
        "workers": 1,
    })
    backtest = run_walkforward(config, work / "runs", Console(quiet=True))
    live = LiveConfig(
        universe=["S000", "S001", "S002", "S003"],
        models=ModelsSection(registry=str(backtest.run_dir / "models")),
        strategy=StrategySettings(entry_threshold=0.6, weights={"lightgbm": 1.0}, risk=RiskRules(**RISK)),
        journal=JournalSettings(sinks=()),
    )
    rehearsal = rehearse(live, catalog, DAY, starting_cash=100_000)
    return backtest.run_dir, rehearsal


@pytest.mark.slow
def test_same_signals(both_paths):
    run_dir, rehearsal = both_paths
    batch = pd.read_parquet(run_dir / "predictions.parquet")
    batch = batch[pd.to_datetime(batch["ts"], utc=True).dt.strftime("%Y-%m-%d") == DAY]
    batch_probs = {(int(r.ts), f"{r.symbol}.ALPACA"): r.lightgbm for r in batch.itertuples()}
    live_probs = {(s["ts_event"], s["instrument_id"]): s["probabilities"][0] for s in rehearsal.signals}
    assert len(batch_probs) > 1000
    assert set(live_probs) == set(batch_probs)
    diffs = np.array([abs(live_probs[k] - batch_probs[k]) for k in batch_probs])
    assert diffs.max() < 1e-9


@pytest.mark.slow
def test_same_signal_outlook_in_the_journal(both_paths):
    """The journal's signal rows carry the outlook the backtest's stored signals carry."""
    run_dir, rehearsal = both_paths
    batch = pd.read_parquet(run_dir / "predictions.parquet")
    batch = batch[pd.to_datetime(batch["ts"], utc=True).dt.strftime("%Y-%m-%d") == DAY]
    live = {(s["ts_event"], s["instrument_id"]): s for s in rehearsal.signals}
    decisions = set()
    for row in batch.itertuples():
        signal = live[(int(row.ts), f"{row.symbol}.ALPACA")]
        assert (signal["decision"], signal["risk_score"], signal["horizon"], signal["horizons"]) == (
            row.decision, row.risk_score, 30, "1,5,30")
        np.testing.assert_allclose([signal["confidence"], signal["volatility"], signal["expected_return"]],
                                   [row.confidence, row.volatility, row.expected_return], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(signal["horizon_returns"], [row.forecast_1, row.forecast_5, row.forecast_30],
                                   rtol=1e-9, atol=1e-12)
        decisions.add(row.decision)
    assert {"BUY", "SELL", "HOLD"} <= decisions


@pytest.mark.slow
def test_same_order_intents_in_the_same_order(both_paths):
    run_dir, rehearsal = both_paths
    backtest = pd.read_parquet(run_dir / "windows" / "fold-0" / "orders.parquet")
    live = pd.DataFrame(rehearsal.intents)
    assert len(backtest) > 0
    def rows(frame: pd.DataFrame) -> list[tuple]:
        return [tuple("" if pd.isna(v) else str(v) for v in row) for row in frame[INTENT].itertuples(index=False)]

    assert rows(live) == rows(backtest)
    # Every intent reached the broker: the sandbox's orders (legs included) match in number.
    assert len(rehearsal.broker_orders) == len(backtest)


@pytest.mark.slow
def test_fills_agree_where_the_fill_rules_agree(both_paths):
    """Market entries and flattening orders fill at the close of the bar the strategy saw,
    stops at their trigger and targets at their limit, in both venues: with costs off the
    fills are equal (see the module docstring for the one rule that can differ)."""
    run_dir, rehearsal = both_paths
    backtest = pd.read_parquet(run_dir / "windows" / "fold-0" / "fills.parquet")

    def fills(frame: pd.DataFrame, qty: str, px: str) -> list[tuple]:
        return sorted((r.instrument_id, r.side, float(getattr(r, qty)), float(getattr(r, px)))
                      for r in frame.itertuples())

    live = fills(pd.DataFrame(rehearsal.fills), "last_qty", "last_px")
    assert live, "the rehearsal filled nothing: there is nothing to compare"
    assert live == fills(backtest, "filled_qty", "avg_px")


@pytest.mark.slow
def test_stopping_mid_session_leaves_no_orphan_orders(both_paths):
    """An operator stops the node at 11:30 with brackets working: the strategy cancels every
    order and closes every position before the node disconnects."""
    run_dir, _ = both_paths
    live = LiveConfig(
        universe=["S000", "S001", "S002", "S003"],
        models=ModelsSection(registry=str(run_dir / "models")),
        strategy=StrategySettings(entry_threshold=0.6, weights={"lightgbm": 1.0}, risk=RiskRules(**RISK)),
        journal=JournalSettings(sinks=()),
    )
    result = rehearse(live, run_dir.parent.parent / "catalog", DAY, starting_cash=100_000, until="11:30")
    assert result.minutes == 120
    assert any(i["tags"] == "STOP_LOSS" for i in result.intents)  # brackets were working
    still_open = [o for o in result.broker_orders if o["status"] in ("new", "accepted", "held", "partially_filled")]
    assert still_open == []
    assert all(qty == 0 for qty, _ in result.broker_positions.values())
