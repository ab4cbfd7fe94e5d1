"""`sextant bench --part journal`: how fast the PostgreSQL sink takes rows and commits them.

A realistic mix (per bar close and symbol a signal and the strategy's decision about it;
every fifth an order with its events and a fill) is handed to a real ``PostgresSink`` on an embedded server in a temporary directory,
as the collector hands rows over on the event loop. Figures: the hand-over rate, the
committed rate (first row handed over -> the last one committed, COPY through the staging
tables, conflict checks included; target >= 50,000 events/s), and what the event loop pays
per MLSignal in the real collector (row built from the signal and handed to the sink).
"""

import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from nautilus_trader.model.identifiers import InstrumentId

from catalog.database import embedded_postgres_dsn
from live.journal.collector import JournalCollector, JournalCollectorConfig
from live.journal.postgres import PostgresSink
from live.journal.rows import FillRow, OrderEventRow, Row, RunEvent, SignalRow, StrategyDecisionRow
from strategies.signals import MLSignal

TARGET_EVENTS_PER_SEC = 50_000


def mixed_rows(run_id: str, n: int) -> list[Row]:
    """``n`` rows: mostly signals and decisions, with order events and fills among them."""
    rows: list[Row] = [RunEvent(run_id=run_id, seq=1, ts=0, kind="started", trading_day=date(2024, 12, 30),
                                trader_id="BENCH-001", name="bench", mode="bench")]
    for seq in range(2, n + 1):
        ts = 1_735_570_000_000_000_000 + seq * 1_000_000
        if seq % 10 == 0:
            rows.append(FillRow(run_id=run_id, seq=seq, ts_event=ts, client_order_id=f"O-{seq}",
                                venue_order_id=f"V-{seq}", trade_id=f"T-{seq}", position_id="S000.ALPACA-P",
                                instrument_id="S000.ALPACA", side="BUY", last_qty="12", last_px="101.25",
                                commission="0.05", currency="USD", liquidity_side="TAKER"))
        elif seq % 5 == 0:
            rows.append(OrderEventRow(run_id=run_id, seq=seq, ts_event=ts, ts_init=ts, event_id=f"e-{seq}",
                                      kind="OrderAccepted", client_order_id=f"O-{seq}", venue_order_id=f"V-{seq}",
                                      strategy_id="EnsembleStrategy-000", instrument_id="S000.ALPACA",
                                      details='{"type": "OrderAccepted", "reconciliation": false}'))
        elif seq % 2 == 0:
            rows.append(StrategyDecisionRow(run_id=run_id, seq=seq, ts_event=ts - 1_000_000, ts_init=ts,
                                            instrument_id="S000.ALPACA", probability=0.58, threshold=0.65,
                                            action="hold", reason="below_threshold", client_order_id=""))
        else:
            rows.append(SignalRow(run_id=run_id, seq=seq, ts_event=ts, instrument_id="S000.ALPACA",
                                  models="lightgbm,xgboost,lstm", probabilities=[0.61, 0.58, 0.55],
                                  decision="BUY", confidence=0.58, expected_return=0.0012, risk_score=3,
                                  volatility=0.011, horizon=30, horizons="1,5,30",
                                  horizon_returns=[0.0001, 0.0004, 0.0012]))
    return rows


def journal_throughput(n: int = 200_000, flush_interval_secs: float = 0.2, max_batch: int = 5_000) -> dict:
    with tempfile.TemporaryDirectory(prefix="sextant-journal-bench-") as tmp:
        root = Path(tmp)
        root.chmod(0o711)  # as root, pgserver runs PostgreSQL as its own user
        with embedded_postgres_dsn(root / "pg") as dsn:
            rows = mixed_rows("bench", n)
            sink = PostgresSink(dsn, root / "spool" / "bench.spool", flush_interval_secs=flush_interval_secs,
                                max_batch=max_batch)
            sink.open()
            began = time.perf_counter()
            for row in rows:
                sink.put(row)
            handed = time.perf_counter() - began
            sink.close()
            committed = time.perf_counter() - began
            signal_us = _collector_signal_us(dsn, root, n_signals=min(n, 50_000))
    return {"rows": n, "flushed": sink.flushed, "put_per_sec": n / handed, "put_us": handed / n * 1e6,
            "committed_per_sec": n / committed, "seconds": committed, "collector_signal_us": signal_us,
            "flush_interval_ms": flush_interval_secs * 1000, "max_batch": max_batch}


def _collector_signal_us(dsn: str, root: Path, n_signals: int) -> float:
    """Microseconds per MLSignal through ``JournalCollector.on_data`` into an open sink."""
    sink = PostgresSink(dsn, root / "spool" / "collector.spool")
    sink.open()
    collector = JournalCollector(JournalCollectorConfig(run_id="bench-collector", trading_day="2024-12-30",
                                                        name="bench", mode="bench", model_dirs={}), [sink])
    signals = [MLSignal(ts_event=k, ts_init=k, instrument_id=InstrumentId.from_str("S000.ALPACA"),
                        models="lightgbm,xgboost,lstm", probabilities=np.array([0.61, 0.58, 0.55]),
                        decision="BUY", confidence=0.58, expected_return=0.0012, risk_score=3,
                        volatility=0.011, horizon=30, horizons="1,5,30",
                        horizon_returns=np.array([0.0001, 0.0004, 0.0012])) for k in range(n_signals)]
    began = time.perf_counter()
    for signal in signals:
        collector.on_data(signal)
    elapsed = time.perf_counter() - began
    sink.close()
    return elapsed / n_signals * 1e6
