"""The journal throughput measurement writes every row it counts (figures are for
`sextant bench --part journal`, not asserted)."""

from live.journal.bench import journal_throughput, mixed_rows
from live.journal.rows import FillRow, OrderEventRow, SignalRow, StrategyDecisionRow


def test_the_mix_holds_signals_decisions_order_events_and_fills_in_sequence():
    rows = mixed_rows("r", 100)
    assert [r.seq for r in rows] == list(range(1, 101))
    kinds = {type(r) for r in rows}
    assert {SignalRow, StrategyDecisionRow, OrderEventRow, FillRow} <= kinds


def test_journal_throughput_commits_every_row_it_times():
    r = journal_throughput(n=2_000, flush_interval_secs=0.01, max_batch=500)
    assert r["flushed"] == r["rows"] == 2_000
    assert r["committed_per_sec"] > 0 and r["put_per_sec"] >= r["committed_per_sec"]
    assert r["collector_signal_us"] > 0
