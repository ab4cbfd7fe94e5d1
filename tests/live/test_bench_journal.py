"""The order-path bench's journal-on variant really journals: its node, built as the bench
builds it, leaves every bar, order intent and fill of a tiny run in the PostgreSQL journal
(the bench's latency figures are for `sextant bench`, not asserted)."""

import shutil
import tempfile
from pathlib import Path

from catalog.instruments import instrument_id
from catalog.jobs import generate_catalog
from catalog.sessions import session_minutes, sessions_ending
from live.bench import (
    BENCH_DAY,
    OrderProbe,
    ProbeConfig,
    bench_collector,
    bench_journal_settings,
    bench_sandboxes,
    probe_node,
    wait_quiet,
)
from live.journal import open_journal
from live.node import NodeThread
from live.rehearsal import broker_activity, sandbox_environment


def test_the_journal_on_variant_records_every_bar_order_and_fill_in_postgres(tmp_path: Path):
    catalog = tmp_path / "catalog"
    symbols = generate_catalog(catalog, n_symbols=2, n_days=2, seed=3).symbols()
    ids = [str(instrument_id(s)) for s in symbols]
    day = sessions_ending(BENCH_DAY.isoformat(), 1)
    closes = session_minutes(day)[:3]
    probe = OrderProbe(ProbeConfig(instrument_ids=ids))
    # not under tmp_path: as root, pgserver runs PostgreSQL as its own user (pytest's are 0700)
    journal_dir = Path(tempfile.mkdtemp(prefix="sextant-bench-journal-"))
    journal_dir.chmod(0o711)
    try:
        with (open_journal(bench_journal_settings(journal_dir)) as journal,
              bench_sandboxes(str(catalog), day["open"].iloc[0].value) as (polygon, broker),
              sandbox_environment()):
            collector = bench_collector(journal)
            with NodeThread(probe_node, ids, polygon.base_url, polygon.ws_feed, broker.base_url, 1, probe,
                            collector) as node:
                polygon.wait_for_subscribers(1, timeout=30.0)
                for k, close in enumerate(closes, start=1):
                    broker.advance_to(close)
                    polygon.advance_to(close)
                    wait_quiet(lambda: broker_activity(broker), orders=k * len(ids), events=2 * k * len(ids))
                created = node.call(collector.intents)
            journal.finish(collector)
            journaled = journal.read_run(collector.config.run_id)
            day_report = journal.read_day(BENCH_DAY)
    finally:
        shutil.rmtree(journal_dir, ignore_errors=True)
    assert journaled.bars == {(iid, close.value) for iid in ids for close in closes}
    assert len(created) == len(ids) * len(closes)
    assert [i["client_order_id"] for i in journaled.intents] == [i["client_order_id"] for i in created]
    assert sorted(f["client_order_id"] for f in journaled.fills) == sorted(i["client_order_id"] for i in created)
    assert [o["status"] for o in day_report.orders] == ["OrderFilled"] * len(created)
    [summary] = day_report.summaries
    assert (summary["orders"], summary["fills"]) == (len(created), len(created))
