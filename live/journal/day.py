"""One trading day read back from the journal database: what `sextant journal` shows."""

from dataclasses import dataclass
from datetime import date

import psycopg
from psycopg.rows import dict_row

TOP_SIGNALS = 10


class EmptyDayError(Exception):
    """The journal holds no run on that day; the message says which days it does hold."""


@dataclass(frozen=True)
class DayReport:
    day: date
    runs: list[dict]            # run_id, name, mode, trader_id, started, stopped (ns)
    model_versions: list[dict]  # run_id, name, version, path
    orders: list[dict]          # as created, with the last event's kind as status
    fills: list[dict]
    summaries: list[dict]       # per run: counts, start/end equity, pnl, realized_pnl
    signal_count: int
    top_signals: list[dict]     # the most confident signals
    decisions: list[dict]       # ts, kind, subject, details: promotions and the like
    strategy_decisions: list[dict]  # per run, action and reason: how many signals ended so


def read_day(conn: psycopg.Connection, day: date) -> DayReport:
    cur = conn.cursor(row_factory=dict_row)
    runs = cur.execute(
        "SELECT run_id, min(name) AS name, min(mode) AS mode, min(trader_id) AS trader_id, "
        "min(ts) FILTER (WHERE kind = 'started') AS started, "
        "max(ts) FILTER (WHERE kind = 'stopped') AS stopped "
        "FROM journal.run_events WHERE trading_day = %s GROUP BY run_id ORDER BY started", (day,)).fetchall()
    decisions = cur.execute("SELECT ts, kind, subject, details FROM journal.decisions "
                            "WHERE trading_day = %s ORDER BY ts", (day,)).fetchall()
    if not runs and not decisions:
        days = [r["trading_day"] for r in cur.execute(
            "SELECT trading_day FROM journal.run_events UNION SELECT trading_day FROM journal.decisions "
            "ORDER BY trading_day DESC LIMIT 5")]
        held = ", ".join(d.isoformat() for d in days) if days else "none yet"
        raise EmptyDayError(f"the journal holds nothing on {day.isoformat()} (latest days: {held})")
    ids = [r["run_id"] for r in runs]

    def rows(query: str) -> list[dict]:
        return cur.execute(query, (ids,)).fetchall()

    orders = rows(
        "SELECT o.ts_init, o.client_order_id, o.instrument_id, o.side, o.quantity, o.type, o.price, "
        "o.trigger_price, o.tags, (SELECT e.kind FROM journal.order_events e WHERE e.run_id = o.run_id "
        "AND e.client_order_id = o.client_order_id ORDER BY e.seq DESC LIMIT 1) AS status "
        "FROM journal.orders o WHERE o.run_id = ANY(%s) ORDER BY o.run_id, o.seq")
    fills = rows("SELECT ts_event, client_order_id, instrument_id, side, last_qty, last_px, commission "
                 "FROM journal.fills WHERE run_id = ANY(%s) ORDER BY run_id, seq")
    summaries = rows("SELECT run_id, signals, orders, fills, start_equity, end_equity, "
                     "end_equity - start_equity AS pnl, realized_pnl FROM journal.daily_summaries "
                     "WHERE run_id = ANY(%s) ORDER BY seq")
    versions = rows("SELECT run_id, name, version, path FROM journal.model_versions "
                    "WHERE run_id = ANY(%s) ORDER BY run_id, seq")
    count = cur.execute("SELECT count(*) AS n FROM journal.signals WHERE run_id = ANY(%s)",
                        (ids,)).fetchone()["n"]
    top = cur.execute(
        "SELECT ts_event, instrument_id, decision, confidence, expected_return, risk_score "
        "FROM journal.signals WHERE run_id = ANY(%s) AND confidence <> 'NaN' "
        "ORDER BY confidence DESC, seq LIMIT %s",
        (ids, TOP_SIGNALS)).fetchall()
    strategy_decisions = rows("SELECT run_id, action, reason, count(*) AS n FROM journal.strategy_decisions "
                              "WHERE run_id = ANY(%s) GROUP BY run_id, action, reason "
                              "ORDER BY run_id, action, reason")
    return DayReport(day=day, runs=runs, model_versions=versions, orders=orders, fills=fills,
                     summaries=summaries, signal_count=count, top_signals=top, decisions=decisions,
                     strategy_decisions=strategy_decisions)
