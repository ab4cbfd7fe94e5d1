"""The order-path measurement counts what it claims: one order per bar per symbol, each
timed from the frame that carried its bar, for the floor and the full path alike (figures
are for `sextant bench`, not asserted)."""

import pytest

from live.bench import order_latency


@pytest.mark.slow
def test_order_latency_times_every_order_on_both_paths():
    result = order_latency(n_symbols=3, minutes=4)
    assert result["orders"] == 3 * 4 and result["closes"] == 4
    for path in ("floor", "full"):
        assert result[f"{path}_orders"] == 3 * 4
        assert 0 < result[f"{path}_decision_p50_ms"] <= result[f"{path}_p50_ms"]
        assert result[f"{path}_p50_ms"] <= result[f"{path}_p99_ms"] <= result[f"{path}_max_ms"]
    assert 0 < result["full_broker_p50_ms"] <= result["full_broker_p99_ms"]
    assert result["ratio_p99"] == pytest.approx(result["full_p99_ms"] / result["floor_p99_ms"])
