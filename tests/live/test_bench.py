"""The order-path measurement counts what it claims: one order per bar per symbol, each
timed from the frame that carried its bar (figures are for `sextant bench`, not asserted)."""

import pytest

from live.bench import order_latency


@pytest.mark.slow
def test_order_latency_times_every_order():
    result = order_latency(n_symbols=3, minutes=4)
    assert result["orders"] == 3 * 4 and result["closes"] == 4
    assert 0 < result["decision_p50_ms"] <= result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
