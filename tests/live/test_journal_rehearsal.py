"""A rehearsed day journaled into a real PostgreSQL: what the database holds equals the
node's own record (its cache's orders and every event of each, their fills) and the signals
the actor published, in counts and in values; `sextant journal day` reads it back."""

import json
import logging
import math
from datetime import date
from decimal import Decimal

import psycopg
import pytest
from psycopg.rows import dict_row
from typer.testing import CliRunner

from live.journal import JournalSettings, open_journal
from live.rehearsal import rehearse
from sextant.cli import app
from tests.live.conftest import live_config
from tests.live.journal_support import dsn, new_database, server, start_server, stop_server  # noqa: F401 - fixtures

DAY = "2024-12-30"


@pytest.fixture(scope="module")
def journaled(market, server, tmp_path_factory):  # noqa: F811
    """The first 90 minutes of DAY rehearsed with the PostgreSQL journal only."""
    catalog, models = market
    base, _ = server
    db = new_database(base, "rehearsed")
    settings = JournalSettings(sinks=("postgres",), dsn=db,
                               spool_dir=str(tmp_path_factory.mktemp("spool")))
    result = rehearse(live_config(models, journal=settings), catalog, DAY, until="11:00")
    return db, result


def nan_free(record: dict) -> dict:
    """NaN (a signal without an outlook yet) as None, so equal records compare equal."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in record.items()}


def rows(db: str, query: str) -> list[dict]:
    with psycopg.connect(db, row_factory=dict_row) as conn:
        return conn.execute(query).fetchall()


@pytest.mark.slow
def test_every_order_event_in_the_database_is_the_nodes(journaled):
    db, result = journaled
    node = {e["event_id"]: e for e in result.order_events}
    stored = {r["event_id"]: r for r in rows(db, "SELECT * FROM journal.order_events")}
    assert len(node) > 10 and {e["kind"] for e in node.values()} >= {
        "OrderInitialized", "OrderSubmitted", "OrderAccepted", "OrderFilled", "OrderCanceled"}
    assert len(stored) == len(rows(db, "SELECT event_id FROM journal.order_events"))  # no duplicate
    assert stored.keys() == node.keys()
    for event_id, event in node.items():
        row = stored[event_id]
        assert (row["kind"], row["client_order_id"], row["ts_event"]) == (
            event["kind"], event["client_order_id"], event["ts_event"])
        assert row["details"] == json.loads(json.dumps(event["details"]))
    # one order row per order, as the strategy created it (the stop's closing orders included)
    orders = rows(db, "SELECT client_order_id, side, quantity, type FROM journal.orders")
    created = {e["client_order_id"]: e["details"] for e in result.order_events if e["kind"] == "OrderInitialized"}
    assert sorted(o["client_order_id"] for o in orders) == sorted(created)
    assert {i["client_order_id"] for i in result.intents} < created.keys()
    for order in orders:
        init = created[order["client_order_id"]]
        assert (order["side"], order["quantity"], order["type"]) == (
            init["order_side"], Decimal(init["quantity"]), init["order_type"])


@pytest.mark.slow
def test_every_fill_in_the_database_is_the_nodes(journaled):
    db, result = journaled
    node = sorted((e["details"]["trade_id"], e["client_order_id"], Decimal(e["details"]["last_qty"]),
                   Decimal(e["details"]["last_px"])) for e in result.order_events if e["kind"] == "OrderFilled")
    stored = sorted((r["trade_id"], r["client_order_id"], r["last_qty"], r["last_px"])
                    for r in rows(db, "SELECT * FROM journal.fills"))
    assert node and stored == node


@pytest.mark.slow
def test_every_signal_in_the_database_is_the_actors(journaled):
    db, result = journaled
    stored = rows(db, "SELECT * FROM journal.signals ORDER BY seq")
    assert len(stored) == len(result.signals) > 100
    for row, signal in zip(stored, result.signals, strict=True):
        assert nan_free({k: row[k] for k in signal}) == nan_free(signal)


@pytest.mark.slow
def test_every_signal_has_one_decision_and_every_entry_its_order(journaled):
    """Each signal of a traded stock (all of them: a rehearsal trades the whole universe) was
    decided once; an entry decision names the entry order the node created for that stock, in
    the minute of its signal (no other minute's signal journaled between them); the database
    holds exactly the decisions the run recorded."""
    db, result = journaled
    decided = sorted((d["ts_event"], d["instrument_id"]) for d in result.decisions)
    assert decided == sorted((s["ts_event"], s["instrument_id"]) for s in result.signals)
    entries = [d for d in result.decisions if d["action"] in ("enter_long", "enter_short")]
    created = {i["client_order_id"]: i for i in result.intents}
    assert entries and sorted(d["client_order_id"] for d in entries) == sorted(
        cid for cid, i in created.items() if i["tags"] == "ENTRY")
    for decision in entries:
        order = created[decision["client_order_id"]]
        assert order["instrument_id"] == decision["instrument_id"]
        assert order["side"] == ("BUY" if decision["action"] == "enter_long" else "SELL")
    journal = rows(db, "SELECT seq, 'signal' AS what, ts_event, NULL AS client_order_id FROM journal.signals "
                       "UNION ALL SELECT seq, 'order', NULL, client_order_id FROM journal.orders ORDER BY seq")
    minute_of = {}
    last_signal = None
    for row in journal:
        if row["what"] == "signal":
            last_signal = row["ts_event"]
        else:
            minute_of[row["client_order_id"]] = last_signal
    assert all(minute_of[d["client_order_id"]] == d["ts_event"] for d in entries)
    stored = rows(db, "SELECT * FROM journal.strategy_decisions ORDER BY seq")
    assert [{k: r[k] for k in decision} for r, decision in zip(stored, result.decisions, strict=True)] == result.decisions
    assert {d["reason"] for d in result.decisions} >= {"below_threshold", "position_open"}


@pytest.mark.slow
def test_the_run_its_models_equity_and_summary_are_journaled(journaled, market):
    db, result = journaled
    _, models = market
    assert [r["kind"] for r in rows(db, "SELECT kind FROM journal.run_events ORDER BY seq")] == ["started", "stopped"]
    [version] = rows(db, "SELECT name, version, path FROM journal.model_versions")
    assert version == {"name": "lightgbm", "version": 1, "path": str(models / "lightgbm" / "v0001")}
    assert rows(db, "SELECT count(*) AS n FROM journal.account_states")[0]["n"] > 0
    assert {r["kind"] for r in rows(db, "SELECT kind FROM journal.positions")} >= {"opened", "closed"}
    [summary] = rows(db, "SELECT * FROM journal.daily_summaries")
    kinds = [e["kind"] for e in result.order_events]
    assert (summary["signals"], summary["orders"], summary["fills"]) == (
        len(result.signals), kinds.count("OrderInitialized"), kinds.count("OrderFilled"))
    assert summary["start_equity"] == Decimal("100000.00")


@pytest.mark.slow
def test_sextant_journal_day_shows_the_rehearsed_day(journaled):
    db, result = journaled
    with open_journal(JournalSettings(sinks=()), dsn=db, must_exist=True) as journal:
        report = journal.read_day(date.fromisoformat(DAY))
    created = sum(e["kind"] == "OrderInitialized" for e in result.order_events)
    assert len(report.orders) == created and report.signal_count == len(result.signals)
    shown = CliRunner().invoke(app, ["journal", "day", DAY, "--dsn", db], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    assert f"signals: {len(result.signals):,}" in shown.output
    assert "lightgbm" in shown.output and "rehearsal" in shown.output


@pytest.mark.slow
def test_a_database_outage_mid_session_loses_and_duplicates_nothing(market, server, tmp_path, caplog):  # noqa: F811
    """The server process is stopped at 10:00 of the rehearsed day and started again at 10:20:
    the rows of those minutes wait in the spool and reach the database once."""
    catalog, models = market
    base, handle = server
    db = new_database(base, "outage")
    settings = JournalSettings(sinks=("postgres",), dsn=db, spool_dir=str(tmp_path / "spool"),
                               flush_interval_ms=20)

    def on_minute(done: int, _total: int) -> None:
        if done == 30:
            stop_server(handle)
        elif done == 50:
            start_server(handle)

    caplog.set_level(logging.INFO, logger="live.journal.postgres")
    try:
        result = rehearse(live_config(models, journal=settings), catalog, DAY, until="11:00", on_minute=on_minute)
    finally:
        start_server(handle)  # a no-op when it runs
    assert "lost the database" in caplog.text and "was replayed" in caplog.text  # it did spool
    signals = rows(db, "SELECT ts_event, instrument_id FROM journal.signals")
    assert sorted((r["ts_event"], r["instrument_id"]) for r in signals) == sorted(
        (s["ts_event"], s["instrument_id"]) for s in result.signals)
    events = [r["event_id"] for r in rows(db, "SELECT event_id FROM journal.order_events")]
    assert sorted(events) == sorted(e["event_id"] for e in result.order_events)
    seq = [r["seq"] for r in rows(db, "SELECT seq FROM (SELECT seq FROM journal.signals UNION ALL "
                                      "SELECT seq FROM journal.order_events) s ORDER BY seq")]
    assert len(seq) == len(set(seq))
    assert list((tmp_path / "spool").rglob("*.spool")) == []  # replayed and removed
