"""One run read back from the journal database as the drift report's live side needs it: the
bars the node received, its signals, order intents (as created), fills, equity and models;
and what the strategy decided about each signal."""

from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row


@dataclass(frozen=True)
class RunRows:
    model_dirs: dict[str, str]
    bars: set[tuple[str, int]]       # (instrument id, bar close ns) the node received
    signals: list[dict]              # SignalRow fields, in the order they happened
    intents: list[dict]              # strategies.records.order_intent fields, in creation order
    fills: list[dict]                # FillRow fields, in order
    equity: list[tuple[int, float]]  # (ts, the first currency's account total) as it moved
    decisions: list[dict]            # StrategyDecisionRow fields, in the order they happened


def read_run(conn: psycopg.Connection, run_id: str) -> RunRows:
    cur = conn.cursor(row_factory=dict_row)

    def rows(query: str) -> list[dict]:
        return cur.execute(query, (run_id,)).fetchall()

    intents = rows("SELECT ts_init, client_order_id, instrument_id, side, quantity::text AS quantity, type, "
                   "price::text AS price, trigger_price::text AS trigger_price, time_in_force, tags "
                   "FROM journal.orders WHERE run_id = %s ORDER BY seq")
    fills = rows("SELECT ts_event, client_order_id, instrument_id, side, last_qty::text AS last_qty, "
                 "last_px::text AS last_px FROM journal.fills WHERE run_id = %s ORDER BY seq")
    signals = rows("SELECT ts_event, instrument_id, models, probabilities FROM journal.signals "
                   "WHERE run_id = %s ORDER BY seq")
    bars = {(r["instrument_id"], r["ts_event"]) for r in rows(
        "SELECT instrument_id, ts_event FROM journal.bars WHERE run_id = %s")}
    accounts = rows("SELECT ts_event, currency, total FROM journal.account_states WHERE run_id = %s ORDER BY seq")
    currency = accounts[0]["currency"] if accounts else None
    decisions = rows("SELECT ts_event, ts_init, instrument_id, probability, threshold, action, reason, "
                     "client_order_id FROM journal.strategy_decisions WHERE run_id = %s ORDER BY seq")
    models = rows("SELECT name, path FROM journal.model_versions WHERE run_id = %s ORDER BY seq")
    return RunRows(model_dirs={m["name"]: m["path"] for m in models}, bars=bars, signals=signals,
                   intents=intents, fills=fills, decisions=decisions,
                   equity=[(a["ts_event"], float(a["total"])) for a in accounts if a["currency"] == currency])
