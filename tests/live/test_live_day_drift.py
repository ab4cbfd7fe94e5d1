"""The drift report of a live day, end to end through ``LiveDayPhases``: the real node trades a
sandbox day whose Polygon feed withholds a bar; the journal records the bars the node
received (migration 0004); the close ingests the day into the schedule's catalog, backtests
it and explains the lost bar as "missing bar live", with the report in the journal."""

import time
from datetime import date
from pathlib import Path

import msgspec
import pandas as pd
import psycopg
import pytest

from adapters.alpaca.sandbox import AlpacaSandbox, CatalogMarket
from adapters.polygon.sandbox import PolygonSandbox, SimClock
from live.journal import JournalSettings, open_journal
from live.live_phases import LiveDayPhases
from live.rehearsal import SANDBOX_KEYS, sandbox_environment
from live.schedule import NEW_YORK, ScheduleSection, day_plan
from live.scheduler import SimulatedClock
from live.settings import AlpacaSection, PolygonSection
from sextant.commands.drift import drift_after_live_day
from strategies.risk import RiskRules
from tests.live.journal_support import dsn, server  # noqa: F401 - fixtures
from tests.live.test_drift_day import RISK, SYMBOLS, setup  # noqa: F401 - fixture

DAY = date(2024, 12, 24)  # a half day: the strategy flattens at 11:00 with 120 minutes' notice
OPEN = pd.Timestamp(f"{DAY} 09:30", tz=NEW_YORK).tz_convert("UTC")
FLATTEN = pd.Timestamp(f"{DAY} 11:00", tz=NEW_YORK).tz_convert("UTC")
LOST = pd.Timestamp(f"{DAY} 10:15", tz=NEW_YORK).tz_convert("UTC")


def journaled(journal_dsn: str, table: str, ts: int) -> int:
    with psycopg.connect(journal_dsn) as conn:
        return conn.execute(f"SELECT count(*) FROM journal.{table} WHERE ts_event = %s", (ts,)).fetchone()[0]


def quiet(broker: AlpacaSandbox) -> None:
    """The broker has answered everything the node sent (a few polls with nothing new)."""
    last, stable = None, 0
    while stable < 5:
        now = (len(broker.order_requests), len(broker.events_sent))
        stable = stable + 1 if now == last else 0
        last = now
        time.sleep(0.02)


@pytest.mark.slow
def test_a_live_day_with_a_lost_bar_reports_it_as_missing_bar_live(setup, dsn: str, tmp_path: Path):  # noqa: F811
    work, catalog, live = setup
    clock = SimClock.manual(OPEN)
    polygon = PolygonSandbox(catalog, api_key=SANDBOX_KEYS["POLYGON_API_KEY"], clock=clock,
                             withheld_bars=[("S001", LOST.value)])
    broker = AlpacaSandbox(CatalogMarket(catalog), key_id=SANDBOX_KEYS["ALPACA_API_KEY_ID"],
                           secret_key=SANDBOX_KEYS["ALPACA_API_SECRET_KEY"], clock=clock)
    risk = RiskRules(**RISK, flatten_minutes_before_close=120, no_entry_minutes_before_close=120)
    with sandbox_environment(), polygon, broker:
        config = msgspec.structs.replace(
            live, warmup_sessions=1, strategy=msgspec.structs.replace(live.strategy, risk=risk),
            journal=JournalSettings(sinks=("postgres",), dsn=dsn, spool_dir=str(tmp_path / "spool")),
            schedule=ScheduleSection(catalog=str(catalog), ingest_sessions=1),
            polygon=PolygonSection(base_url=polygon.base_url, ws_feed=polygon.ws_feed, secure=False,
                                   stale_after_secs=3600.0),
            alpaca=AlpacaSection(base_url=broker.base_url, stream_url=broker.stream_url))
        plan = day_plan(DAY, config.schedule, risk.flatten_minutes_before_close)
        drift = drift_after_live_day(config, work / "live-drift", None)
        with LiveDayPhases(config, tmp_path / "runs", SimulatedClock(OPEN), drift=drift) as phases:
            phases.pre_open(plan)
            polygon.wait_for_subscribers(1, timeout=30)
            for t in pd.date_range(OPEN + pd.Timedelta(minutes=1), FLATTEN, freq="1min"):
                broker.advance_to(t)
                quiet(broker)
                polygon.advance_to(t)
                expected = len(SYMBOLS) - (t == LOST)
                deadline = time.monotonic() + 30
                while journaled(dsn, "signals", t.value) < expected:
                    assert time.monotonic() < deadline, f"no signals of {t} in the journal"
                    time.sleep(0.02)
                quiet(broker)
            closed = phases.close(plan)
    assert closed["flat"] is True
    assert journaled(dsn, "bars", LOST.value) == len(SYMBOLS) - 1  # the journal holds what arrived
    with open_journal(JournalSettings(sinks=("postgres",), dsn=dsn)) as journal:
        [report] = journal.read_drift(DAY)
    assert closed["drift"]["differences"] == len(report.differences)
    missing = [d for d in report.differences if d.reason == "missing bar live"]
    # the lost bar, then S001's later signals (its features miss that bar): nothing else
    assert next(d.key for d in missing if d.kind == "signal") == f"S001.ALPACA @ {LOST.value}"
    assert all(d.key.startswith("S001.ALPACA") for d in missing)
    assert all(int(d.key.split(" @ ")[1]) >= LOST.value for d in missing if d.kind == "signal")
    assert report.counts["live_signals"] == report.counts["backtest_signals"] - 1
    assert report.unexplained == [], report.unexplained[:5]
    assert report.features
