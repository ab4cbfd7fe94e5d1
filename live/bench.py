"""Order-path latency for ``sextant bench``: from the Polygon sandbox sending an AM frame to
the Alpaca sandbox receiving the order it caused, with many symbols closing a bar at once,
against NautilusTrader's own floor measured in the same run (``bench_floor``).

The node is the real one (PolygonDataClient, AlpacaExecutionClient, their factories); the
strategy is a probe that sends one market order per bar, so every bar of every symbol makes
an order and the figure is the edges' cost: parse, route, strategy callback, risk checks,
the execution client's request over HTTP, the broker's intake. The floor is the same node
with an execution client that does no I/O: what the full path costs beyond it is ours (the
client, the HTTP exchange) and the sandbox broker's. "Received" is when the broker read the
request off its socket; the broker then decides the burst's requests one at a time, which
``full_broker_*`` reports (received -> answered: the sandbox's queue, not our path). The
SignalActor's inference comes on top and is measured by the backtest bench (batch) and the
parity test (streaming).
"""

import gc
import multiprocessing
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import pandas as pd
from nautilus_trader.config import (
    InstrumentProviderConfig,
    LoggingConfig,
    StrategyConfig,
    TradingNodeConfig,
)
from nautilus_trader.live.config import LiveRiskEngineConfig
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import ClientId, InstrumentId
from nautilus_trader.trading.strategy import Strategy
from psycopg import sql

from adapters.alpaca.common import ALPACA
from adapters.alpaca.config import AlpacaExecClientConfig
from adapters.alpaca.factories import AlpacaLiveExecClientFactory
from adapters.alpaca.sandbox import AlpacaSandbox, CatalogMarket
from adapters.polygon.config import PolygonDataClientConfig
from adapters.polygon.factories import PolygonLiveDataClientFactory
from adapters.polygon.sandbox import PolygonSandbox, SimClock
from catalog.instruments import instrument_id
from catalog.jobs import generate_catalog
from catalog.sessions import session_minutes, sessions_ending
from live.bench_floor import FloorExecClientConfig, FloorExecClientFactory, FloorExecutionClient
from live.journal import Journal, JournalSettings, RunInfo, open_journal
from live.journal.collector import JournalCollector
from live.journal.postgres import connect
from live.journal.rows import ROW_TYPES, table_of
from live.node import NodeThread
from live.rehearsal import SANDBOX_KEYS, broker_activity, sandbox_environment

BENCH_DAY = date(2024, 12, 31)  # the bench catalog's last session, the one the runs trade


class ProbeConfig(StrategyConfig, frozen=True, kw_only=True):
    instrument_ids: list[str]


class OrderProbe(Strategy):
    """One market order per bar, alternating sides per symbol so positions stay small."""

    def __init__(self, config: ProbeConfig) -> None:
        super().__init__(config)
        self._buy: dict[InstrumentId, bool] = {}
        self.decided_ns: list[int] = []  # wall time of each order decision (time.time_ns)

    def on_start(self) -> None:
        for iid in self.config.instrument_ids:
            self.subscribe_bars(BarType.from_str(f"{iid}-1-MINUTE-LAST-EXTERNAL"))

    def on_bar(self, bar: Bar) -> None:
        self.decided_ns.append(time.time_ns())
        iid = bar.bar_type.instrument_id
        buy = self._buy[iid] = not self._buy.get(iid, False)
        instrument = self.cache.instrument(iid)
        self.submit_order(self.order_factory.market(
            iid, OrderSide.BUY if buy else OrderSide.SELL, instrument.make_qty(1)))


JOURNAL_TARGET_PCT = 5.0  # issue 11: the journal may change the order path's p99 by at most this
# between bursts: just over the journal's default flush interval (200 ms), see order_latency
BAR_GAP_SECS = 0.3
VARIANTS = ("floor", "full", "journal")  # the order of a round; every other round runs it backwards


@dataclass
class BurstSamples:
    """One run's per-order latencies (ms); ``broker_ms`` is empty for the floor."""

    latency_ms: np.ndarray
    decision_ms: np.ndarray
    broker_ms: np.ndarray
    closes: int


def order_latency(n_symbols: int = 50, minutes: int = 30, rounds: int = 6, http_workers: int = 4,
                  journal_dir: Path | None = None, bar_gap_secs: float = BAR_GAP_SECS) -> dict[str, float]:
    """The order path, its floor and the order path with the journal on, measured in one
    bench over ``rounds`` rounds; each round runs every variant once over ``minutes`` bar
    closes of ``n_symbols`` symbols (ms, p50/p99/max over all rounds' orders):

    - ``floor_*``: AM frame sent -> order accepted by ``FloorExecutionClient`` (no I/O): the
      feed, the engines, the risk checks and the probe, NautilusTrader's own cost;
    - ``full_*``: AM frame sent -> order received by the Alpaca sandbox, through our
      ``AlpacaExecutionClient``, journal off; ``ratio_p99`` = full p99 / floor p99;
    - ``journal_*``: the full path with the journal's collector in the node writing to
      PostgreSQL (an embedded server in ``journal_dir``, default a temporary directory);
      ``journal_ratio_p99`` = journal p99 / full p99, ``journal_change_pct`` the same in %;
      ``journal_paired_ratio_median`` the median over rounds of that round's journal p99 /
      full p99 (the variants of a round ran back to back: one slow round moves it little);
      ``journal_rows`` what the database committed;
    - ``*_decision_*``: AM frame sent -> the probe's ``on_bar`` (the feed alone);
    - ``*_round_p99_min_ms``/``max``: the spread of the rounds' own p99s (the noise).

    ``bar_gap_secs``: the pause after a burst has settled before the next bar closes, every
    variant alike. Live, bars close a minute apart and the journal writes between them (rows
    built 5-100 ms after the burst, flushed every ``flush_interval_ms``); back-to-back bursts
    (gap 0) would time the journal's flush of one burst against the next, a cadence no live
    day has. The default is just over the flush interval: a minute, compressed.

    Variants interleave (floor, full, journal, then journal, full, floor, ...) so a change in
    the machine's load lands on all of them alike. Each run has fresh sandboxes in a spawned
    process of their own (as remote venues would be), so they do not share the node's
    interpreter lock."""
    with tempfile.TemporaryDirectory(prefix="sextant-latency-") as tmp:
        root = Path(tmp)
        root.chmod(0o711)  # as root, pgserver runs PostgreSQL as its own user
        catalog = root / "catalog"
        symbols = generate_catalog(catalog, n_symbols=n_symbols, n_days=2, seed=3).symbols()
        ids = [str(instrument_id(s)) for s in symbols]
        runs: dict[str, list[BurstSamples]] = {variant: [] for variant in VARIANTS}
        with open_journal(bench_journal_settings(journal_dir or root / "journal")) as journal:
            for k in range(rounds):
                for variant in VARIANTS if k % 2 == 0 else VARIANTS[::-1]:
                    collector = bench_collector(journal) if variant == "journal" else None
                    runs[variant].append(_burst_run(catalog, ids, minutes, floor=variant == "floor",
                                                    http_workers=http_workers, collector=collector,
                                                    bar_gap_secs=bar_gap_secs))
                    if collector is not None:
                        journal.finish(collector)
            journal_rows = _committed_rows(journal.dsn)
    figures = {"symbols": float(n_symbols), "rounds": float(rounds),
               "closes": float(sum(run.closes for run in runs["full"]))}
    for variant, variant_runs in runs.items():
        figures.update({f"{variant}_{key}": value for key, value in _summary(variant_runs).items()})
    figures["orders"] = figures["full_orders"]
    figures["ratio_p99"] = figures["full_p99_ms"] / figures["floor_p99_ms"]
    figures["journal_ratio_p99"] = figures["journal_p99_ms"] / figures["full_p99_ms"]
    figures["journal_change_pct"] = (figures["journal_ratio_p99"] - 1.0) * 100.0
    figures["journal_paired_ratio_median"] = float(np.median(
        [_p99(on) / _p99(off) for on, off in zip(runs["journal"], runs["full"], strict=True)]))
    figures["journal_rows"] = float(journal_rows)
    return figures


def bench_journal_settings(directory: Path) -> JournalSettings:
    """The bench's journal: PostgreSQL only, its embedded server and spool in ``directory``
    (never the project's data/), flushed as a live run's default settings say."""
    return JournalSettings(sinks=("postgres",), data_dir=str(directory / "postgres"),
                           spool_dir=str(directory / "spool"))


def bench_collector(journal: Journal) -> JournalCollector:
    """The journal's collector for one journal-on run of the bench's probe node."""
    return journal.collector(RunInfo(trading_day=BENCH_DAY, name="order-path-bench", mode="bench"))


def _committed_rows(dsn: str | None) -> int:
    """Rows the bench's runs left in the journal database, over all its tables."""
    assert dsn is not None
    with connect(dsn) as conn:
        return sum(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier("journal", table_of(row_type)))).fetchone()[0] for row_type in ROW_TYPES)


def _summary(runs: list[BurstSamples]) -> dict[str, float]:
    """p50/p99/max over every order of ``runs``, and the spread of the runs' own p99s."""
    latency_ms = np.concatenate([run.latency_ms for run in runs])
    decision_ms = np.concatenate([run.decision_ms for run in runs])
    broker_ms = np.concatenate([run.broker_ms for run in runs])
    round_p99 = [_p99(run) for run in runs]
    figures = {
        "orders": float(len(latency_ms)),
        "p50_ms": float(np.percentile(latency_ms, 50)),
        "p99_ms": float(np.percentile(latency_ms, 99)),
        "max_ms": float(latency_ms.max()),
        "round_p99_min_ms": min(round_p99),
        "round_p99_max_ms": max(round_p99),
        "decision_p50_ms": float(np.percentile(decision_ms, 50)),
        "decision_p99_ms": float(np.percentile(decision_ms, 99)),
    }
    if len(broker_ms):  # the sandbox's own queue and work: received -> decided
        figures.update(broker_p50_ms=float(np.percentile(broker_ms, 50)),
                       broker_p99_ms=float(np.percentile(broker_ms, 99)))
    return figures


def _p99(run: BurstSamples) -> float:
    return float(np.percentile(run.latency_ms, 99))


def _burst_run(catalog: Path, ids: list[str], minutes: int, floor: bool, http_workers: int,
               collector: JournalCollector | None = None, bar_gap_secs: float = 0.0) -> BurstSamples:
    """One node between fresh sandboxes over the first ``minutes`` closes of the catalog's
    last session, with the floor client or the Alpaca one, and ``collector`` (the journal)
    among its actors when given. Latencies are from the newest AM frame sent before each
    arrival: in the floor client, or at the broker."""
    day = sessions_ending(BENCH_DAY.isoformat(), 1)
    closes = session_minutes(day)[:minutes]
    n_orders = len(ids)
    probe = OrderProbe(ProbeConfig(instrument_ids=ids))
    context = multiprocessing.get_context("spawn")
    conn, child = context.Pipe()
    host = context.Process(target=_host_sandboxes, args=(str(catalog), day["open"].iloc[0].value, child), daemon=True)
    host.start()
    try:
        polygon_url, ws_feed, broker_url = conn.recv()

        def remote(command: str, arg: object = None) -> object:
            conn.send((command, arg))
            return conn.recv()

        broker = None if floor else broker_url
        with sandbox_environment(), NodeThread(probe_node, ids, polygon_url, ws_feed, broker, http_workers,
                                               probe, collector) as node:
            remote("wait_for_subscribers")
            _wait_running(node)
            if floor:
                client = floor_client(node)
                activity = lambda: (len(client.accepted_ns), len(client.accepted_ns))
                events_per_order = 1
            else:
                activity = lambda: remote("activity")
                events_per_order = 2  # new + fill
            for k, t in enumerate(closes.asi8, start=1):
                remote("advance", int(t))
                wait_quiet(activity, orders=k * n_orders, events=events_per_order * k * n_orders)
                time.sleep(bar_gap_secs)
        frames, received, answered = remote("records")
        remote("stop")
    finally:
        host.join(timeout=30)
    arrived = client.accepted_ns if floor else received
    frame_times = np.array(sorted(frames))
    broker_ms = np.array([]) if floor else (np.array(answered) - np.array(received)) / 1e6
    return BurstSamples(latency_ms=_since_frame(frame_times, np.array(arrived)),
                        decision_ms=_since_frame(frame_times, np.array(probe.decided_ns)),
                        broker_ms=broker_ms, closes=len(closes))


def floor_client(node: NodeThread) -> FloorExecutionClient:
    """The floor client of a ``probe_node`` built without a broker."""
    client = node.node.kernel.exec_engine._clients[ClientId(ALPACA)]  # no public accessor in 1.221
    assert isinstance(client, FloorExecutionClient)
    return client


def _since_frame(frame_times: np.ndarray, times: np.ndarray) -> np.ndarray:
    """ms from the newest frame sent before each time (the frame that carried its bar)."""
    owner = frame_times[np.searchsorted(frame_times, times, side="right") - 1]
    return (times - owner) / 1e6


def probe_node(ids: list[str], polygon_url: str, ws_feed: str, broker_url: str | None, http_workers: int,
               probe: "OrderProbe", collector: JournalCollector | None = None, loop=None) -> TradingNode:
    """The bench's node; ``broker_url`` None: the floor client instead of the Alpaca one;
    ``collector``: the journal's actor, added as a live node adds it (before the others)."""
    load = InstrumentProviderConfig(load_ids=frozenset(ids))
    if broker_url is None:
        exec_config, factory = FloorExecClientConfig(), FloorExecClientFactory
    else:
        exec_config = AlpacaExecClientConfig(base_url=broker_url, http_workers=http_workers, instrument_provider=load)
        factory = AlpacaLiveExecClientFactory
    config = TradingNodeConfig(
        logging=LoggingConfig(log_level="ERROR"),
        data_clients={"POLYGON": PolygonDataClientConfig(
            base_url=polygon_url, ws_feed=ws_feed, secure=False, stale_after_secs=3600.0, instrument_provider=load)},
        exec_clients={ALPACA: exec_config},
        # 50 orders per stepped minute, minutes a few ms apart: lift the default 100/s
        # submit throttle so the figure is latency, not the throttle's queue.
        risk_engine=LiveRiskEngineConfig(max_order_submit_rate="100000/00:00:01"),
        timeout_connection=30.0, timeout_post_stop=1.0,
    )
    node = TradingNode(config=config, loop=loop)
    if collector is not None:
        node.trader.add_actor(collector)
    node.trader.add_strategy(probe)
    node.add_data_client_factory("POLYGON", PolygonLiveDataClientFactory)
    node.add_exec_client_factory(ALPACA, factory)
    node.build()
    return node


@contextmanager
def bench_sandboxes(catalog: str, open_ns: int) -> Iterator[tuple[PolygonSandbox, AlpacaSandbox]]:
    """Both sandboxes serving ``catalog`` on one simulated clock standing at ``open_ns``."""
    clock = SimClock.manual(pd.Timestamp(open_ns, tz="UTC"))
    polygon = PolygonSandbox(catalog, api_key=SANDBOX_KEYS["POLYGON_API_KEY"], clock=clock)
    market = CatalogMarket(catalog)
    market.preload()
    broker = AlpacaSandbox(market, key_id=SANDBOX_KEYS["ALPACA_API_KEY_ID"],
                           secret_key=SANDBOX_KEYS["ALPACA_API_SECRET_KEY"], clock=clock,
                           starting_cash=10_000_000.0)
    with polygon, broker:
        yield polygon, broker


def _host_sandboxes(catalog: str, open_ns: int, conn: Connection) -> None:
    """The spawned process: ``bench_sandboxes`` driven over a pipe."""
    with bench_sandboxes(catalog, open_ns) as (polygon, broker):
        gc.collect()
        gc.freeze()  # the venues' own full collections would stall their intake mid-burst
        conn.send((polygon.base_url, polygon.ws_feed, broker.base_url))
        while True:
            command, arg = conn.recv()
            if command == "wait_for_subscribers":
                polygon.wait_for_subscribers(1, timeout=30.0)
                conn.send(None)
            elif command == "advance":
                ts = pd.Timestamp(arg, tz="UTC")
                broker.advance_to(ts)
                polygon.advance_to(ts)
                conn.send(None)
            elif command == "activity":
                conn.send(broker_activity(broker))
            elif command == "records":
                posts = [r for r in broker.order_requests if r.method == "POST"]
                conn.send(([f.sent_ns for f in polygon.frames_sent],
                           [r.received_ns for r in posts], [r.answered_ns for r in posts]))
            elif command == "stop":
                conn.send(None)
                return
            else:
                raise ValueError(f"unknown sandbox host command {command!r}")


def wait_quiet(activity, orders: int, events: int, timeout: float = 30.0) -> None:
    """Until ``activity()`` (requests, events) has reached ``orders`` and ``events`` and gone
    quiet. Reads the broker or the floor client's record, never the node's loop: that loop
    is what is being timed."""
    deadline = time.monotonic() + timeout
    last, stable = None, 0
    while True:
        snapshot = activity()
        n_events, n_requests = snapshot
        if n_requests >= orders and n_events >= events:
            stable = stable + 1 if snapshot == last else 0
            if stable >= 3:
                return
        last = snapshot
        if time.monotonic() > deadline:
            raise TimeoutError(f"{n_requests}/{orders} orders arrived in {timeout:g} s")
        time.sleep(0.005)


def _wait_running(node: NodeThread, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not node.call(lambda: node.node.trader.is_running):
        if time.monotonic() > deadline:
            raise TimeoutError("the node did not start")
        time.sleep(0.05)
