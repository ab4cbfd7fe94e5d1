"""The order-path measurement counts what it claims: one order per bar per symbol, each
timed from the frame that carried its bar, for the floor, the full path and the full path
with the journal on alike, the latter's rows committed (figures are for `sextant bench`, not
asserted)."""

import pytest

from live.bench import order_latency


@pytest.mark.slow
def test_order_latency_times_every_order_on_every_variant():
    result = order_latency(n_symbols=3, minutes=4, rounds=2)
    assert result["orders"] == 2 * 3 * 4 and result["closes"] == 2 * 4
    for variant in ("floor", "full", "journal"):
        assert result[f"{variant}_orders"] == 2 * 3 * 4
        assert 0 < result[f"{variant}_decision_p50_ms"] <= result[f"{variant}_p50_ms"]
        assert result[f"{variant}_p50_ms"] <= result[f"{variant}_p99_ms"] <= result[f"{variant}_max_ms"]
        assert result[f"{variant}_round_p99_min_ms"] <= result[f"{variant}_round_p99_max_ms"]
    assert 0 < result["full_broker_p50_ms"] <= result["full_broker_p99_ms"]
    assert result["ratio_p99"] == pytest.approx(result["full_p99_ms"] / result["floor_p99_ms"])
    assert result["journal_ratio_p99"] == pytest.approx(result["journal_p99_ms"] / result["full_p99_ms"])
    assert result["journal_change_pct"] == pytest.approx((result["journal_ratio_p99"] - 1) * 100)
    assert result["journal_paired_ratio_median"] > 0
    # two journal-on runs of 12 orders: at least an order, an event and a bar row for each
    assert result["journal_rows"] >= 2 * 3 * 12
