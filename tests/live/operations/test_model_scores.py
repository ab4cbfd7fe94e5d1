"""Live per-model accuracy and AUC (live.operations.model_scores): signals are scored with the
training label only once the bars defining it have arrived, and the scores find a planted edge
and no edge in a random walk."""

import json
from pathlib import Path

import numpy as np
import pytest

from catalog.synthetic import generate_market
from live.journal.rows import BarRow, SignalRow
from live.operations.model_scores import ModelScores, auc, label_rule_of
from models.labels import LabelRule, direction_labels

RULE = LabelRule(horizon=15, cost=0.0005)


def bar_row(seq: int, symbol: str, ts: int, close: float) -> BarRow:
    c = f"{close:.4f}"
    return BarRow(run_id="r", seq=seq, ts_event=ts, ts_init=ts, instrument_id=f"{symbol}.ALPACA", open=c, high=c,
                  low=c, close=c, volume="100")


def signal_row(seq: int, symbol: str, ts: int, probabilities: list[float]) -> SignalRow:
    return SignalRow(run_id="r", seq=seq, ts_event=ts, instrument_id=f"{symbol}.ALPACA", models="momentum,coin",
                     probabilities=probabilities, decision="HOLD", confidence=0.5, expected_return=0.0,
                     risk_score=1, volatility=0.0, horizon=RULE.horizon, horizons="", horizon_returns=[])


def momentum_probability(close: np.ndarray, i: int) -> float:
    """A causal score: the direction of the last 30 bars (what the planted signal rewards)."""
    past = close[i] / close[max(0, i - 30)] - 1.0
    return float(1.0 / (1.0 + np.exp(-past * 400.0)))


def replay(strength: float, seed: int = 3, days: int = 4, symbols: int = 4) -> tuple[ModelScores, dict]:
    """A node's rows in its order (each symbol's bar, then its signal), and the batch labels of
    every signal over the whole data (what the live scores must agree with)."""
    market = generate_market(n_symbols=symbols, n_days=days, seed=seed, signal_strength=strength)
    scores = ModelScores(RULE, window=100_000)
    rng = np.random.default_rng(seed)
    frames = {s: f for s, f in market.bars.items()}
    stamps = sorted(set().union(*(f.index.asi8 for f in frames.values())))
    position = {s: 0 for s in frames}
    batch = {"y": [], "momentum": [], "coin": []}
    labels = {s: direction_labels(f["close"].to_numpy(), f.index.asi8, RULE.horizon, RULE.cost)[0]
              for s, f in frames.items()}
    seq = 0
    for ts in stamps:
        for symbol, frame in frames.items():
            i = position[symbol]
            if i >= len(frame) or frame.index.asi8[i] != ts:
                continue
            position[symbol] += 1
            close = frame["close"].to_numpy()
            probabilities = [momentum_probability(close, i), float(rng.random())]
            scores.put(bar_row(seq := seq + 1, symbol, ts, close[i]))
            scores.put(signal_row(seq := seq + 1, symbol, ts, probabilities))
            if np.isfinite(labels[symbol][i]):
                batch["y"].append(labels[symbol][i])
                batch["momentum"].append(probabilities[0])
                batch["coin"].append(probabilities[1])
    return scores, {k: np.array(v) for k, v in batch.items()}


def test_a_planted_edge_scores_clearly_above_one_half_and_a_coin_does_not():
    scores, _ = replay(strength=0.3)
    models = scores.snapshot()["models"]
    assert models["momentum"]["auc"] > 0.6 and models["momentum"]["accuracy"] > 0.55
    assert abs(models["coin"]["auc"] - 0.5) < 0.05


def test_a_random_walk_scores_about_one_half():
    scores, _ = replay(strength=0.0)
    models = scores.snapshot()["models"]
    assert abs(models["momentum"]["auc"] - 0.5) < 0.05 and abs(models["coin"]["auc"] - 0.5) < 0.05


def test_the_live_scores_equal_the_training_labels_over_the_whole_data():
    """Every signal whose training label is defined is scored, with that label: the same
    function, the same horizon and cost, no signal lost or labelled differently."""
    scores, batch = replay(strength=0.2, days=2, symbols=2)
    snapshot = scores.snapshot()
    assert snapshot["models"]["momentum"]["scored"] == len(batch["y"])
    assert snapshot["models"]["momentum"]["auc"] == pytest.approx(auc(batch["y"], batch["momentum"]))
    assert snapshot["models"]["coin"]["auc"] == pytest.approx(auc(batch["y"], batch["coin"]))


def test_a_signal_is_scored_only_once_the_bar_horizon_bars_later_has_arrived():
    rule = LabelRule(horizon=3, cost=0.0)
    scores = ModelScores(rule)
    t0, minute = 1_735_051_800_000_000_000, 60_000_000_000  # 2024-12-24 14:50 UTC, inside the session
    closes = [100.0, 101.0, 99.0, 98.0, 102.0]
    scores.put(bar_row(1, "S000", t0, closes[0]))
    scores.put(signal_row(2, "S000", t0, [0.9, 0.1]))
    for k in (1, 2):
        scores.put(bar_row(2 + k, "S000", t0 + k * minute, closes[k]))
    assert scores.snapshot()["models"] == {} and scores.snapshot()["waiting"] == 1  # bar t+3 not there yet
    scores.put(bar_row(5, "S000", t0 + 3 * minute, closes[3]))  # 98 < 100: the label is "down"
    snapshot = scores.snapshot()
    assert snapshot["waiting"] == 0 and snapshot["models"]["momentum"]["scored"] == 1
    assert snapshot["models"]["momentum"]["accuracy"] == 0.0 and snapshot["models"]["coin"]["accuracy"] == 1.0
    assert snapshot["models"]["momentum"]["auc"] is None  # one class so far


def test_a_horizon_crossing_the_close_is_never_scored():
    rule = LabelRule(horizon=3, cost=0.0)
    scores = ModelScores(rule)
    close_ts = 1_735_063_200_000_000_000  # 2024-12-24 18:00 UTC: the half day's last bar
    next_open = 1_735_223_460_000_000_000  # 2024-12-26 14:31 UTC
    minute = 60_000_000_000
    scores.put(bar_row(1, "S000", close_ts, 100.0))
    scores.put(signal_row(2, "S000", close_ts, [0.9, 0.1]))
    for k in range(3):
        scores.put(bar_row(3 + k, "S000", next_open + k * minute, 110.0))
    snapshot = scores.snapshot()
    assert snapshot["resolved"] == 1 and snapshot["models"] == {}


def test_publish_if_changed_publishes_once_per_change():
    scores = ModelScores(LabelRule(horizon=1, cost=0.0))
    published = []
    scores.publish_if_changed(lambda topic, payload: published.append(topic))
    scores.publish_if_changed(lambda topic, payload: published.append(topic))
    t0 = 1_735_051_800_000_000_000
    scores.put(bar_row(1, "S000", t0, 100.0))
    scores.put(signal_row(2, "S000", t0, [0.9, 0.1]))
    scores.put(bar_row(3, "S000", t0 + 60_000_000_000, 101.0))
    scores.publish_if_changed(lambda topic, payload: published.append(topic))
    assert published == ["models", "models"]


def test_the_label_rule_is_the_one_the_models_were_trained_on(tmp_path: Path):
    for name, labels in (("a", {"horizon": 30, "cost": 0.002}), ("b", {"horizon": 30, "cost": 0.002})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "meta.json").write_text(json.dumps({"labels": labels}))
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "meta.json").write_text(json.dumps({}))
    assert label_rule_of({"a": tmp_path / "a", "b": tmp_path / "b"}) == LabelRule(30, 0.002)
    assert label_rule_of({"old": tmp_path / "old"}) == LabelRule()
    with pytest.raises(ValueError, match="different labels"):
        label_rule_of({"a": tmp_path / "a", "old": tmp_path / "old"})


def test_a_panel_reads_the_champion_s_label_and_never_pins_one(market, tmp_path: Path):
    from live.operations.listeners import champion_label_rule
    from models.promotion import PromotionStore, find_ensembles
    from models.registry import ModelRegistry
    from tests.live.conftest import live_config, unpinned_copy

    _, models = market
    root = unpinned_copy(models, tmp_path / "models")
    config = live_config(root)
    assert champion_label_rule(config) == LabelRule() and not PromotionStore(root).has_champion()
    meta = json.loads((root / "lightgbm" / "v0001" / "meta.json").read_text())
    (root / "lightgbm" / "v0001" / "meta.json").write_text(json.dumps({**meta, "labels": {"horizon": 30, "cost": 0.0}}))
    PromotionStore(root).pin(find_ensembles(ModelRegistry(root))[0], "test")
    assert champion_label_rule(config) == LabelRule(horizon=30, cost=0.0)
