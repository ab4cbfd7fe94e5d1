"""The drift reports of the journal database (migration 0003): written once a day's
comparison is done, read back by `sextant journal drift`."""

import time
from datetime import date

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from live.drift import Difference, DriftReport
from models.drift import FeatureDrift


class NoDriftReportError(Exception):
    """The journal holds no drift report on that day; the message says which days it does."""


def write_drift(conn: psycopg.Connection, report: DriftReport) -> None:
    """Store ``report`` (replacing an earlier report of the same run) in one transaction."""
    with conn.transaction():
        conn.execute("DELETE FROM journal.drift_reports WHERE run_id = %s", (report.run_id,))
        conn.execute(
            "INSERT INTO journal.drift_reports VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (report.run_id, report.trading_day, time.time_ns(), Jsonb(report.counts), report.live_pnl,
             report.backtest_pnl, len(report.unexplained), len(report.significant),
             Jsonb(report.live_equity), Jsonb(report.backtest_equity)))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO journal.drift_differences VALUES (%s, %s, %s, %s, %s, %s)",
                            [(report.run_id, seq, d.kind, d.key, d.reason, d.detail)
                             for seq, d in enumerate(report.differences)])
            cur.executemany("INSERT INTO journal.drift_features VALUES (%s, %s, %s, %s, %s)",
                            [(report.run_id, f.feature, f.psi, f.level, f.rows) for f in report.features])


def read_drift(conn: psycopg.Connection, day: date) -> list[DriftReport]:
    """The drift reports of ``day``'s runs, oldest first."""
    cur = conn.cursor(row_factory=dict_row)
    reports = cur.execute("SELECT * FROM journal.drift_reports WHERE trading_day = %s ORDER BY ts",
                          (day,)).fetchall()
    if not reports:
        days = [r["trading_day"].isoformat() for r in cur.execute(
            "SELECT DISTINCT trading_day FROM journal.drift_reports ORDER BY trading_day DESC LIMIT 5")]
        raise NoDriftReportError(f"the journal holds no drift report on {day.isoformat()} "
                                 f"(latest: {', '.join(days) or 'none yet'})")
    out = []
    for r in reports:
        differences = cur.execute("SELECT kind, key, reason, detail FROM journal.drift_differences "
                                  "WHERE run_id = %s ORDER BY seq", (r["run_id"],)).fetchall()
        features = cur.execute("SELECT feature, psi, level, rows FROM journal.drift_features "
                               "WHERE run_id = %s ORDER BY psi DESC, feature", (r["run_id"],)).fetchall()
        out.append(DriftReport(
            trading_day=r["trading_day"], run_id=r["run_id"], counts=r["counts"], live_pnl=r["live_pnl"],
            backtest_pnl=r["backtest_pnl"], differences=[Difference(**d) for d in differences],
            features=[FeatureDrift(**f) for f in features],
            live_equity=[tuple(p) for p in r["live_equity"]], backtest_equity=[tuple(p) for p in r["backtest_equity"]]))
    return out
