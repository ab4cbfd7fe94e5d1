"""The live-inference measurement runs the full zoo through the real SignalActor and counts what
it claims: one MLSignal per symbol per close, the features seam, every model's one batched
call, the meta-learner and the horizon models timed (figures are for `sextant bench --part inference`, not asserted)."""

from backtests.inference_bench import TARGET_P99_MS, inference_latency
from models.zoo import MODEL_KINDS


def test_inference_latency_times_every_close_and_splits_it():
    r = inference_latency(n_symbols=2, closes=2)
    assert r["symbols"] == 2 and r["closes"] == r["measured_closes"] == 2
    assert r["signals"] == 2 * 2
    assert {name.split("@")[0] for name in r["models"]} == set(MODEL_KINDS) and r["stacks"] == ["stack"]
    assert 0 < r["p50_ms"] <= r["p99_ms"]
    assert r["p99_over_target"] == r["p99_ms"] / TARGET_P99_MS
    split = r["per_close_ms"]
    assert {"features", "horizons", "stack:stack", "other"} | {f"model:{m}" for m in r["models"]} == set(split)
    assert all(ms >= 0 for ms in split.values()) and split["features"] > 0
    # The parts are measured inside the closes: their mean cannot add up to more than the slowest close took.
    assert sum(split.values()) <= r["p99_ms"] * 1.0001
