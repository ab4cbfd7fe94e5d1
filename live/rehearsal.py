"""A whole trading day offline: the Polygon sandbox replays a catalog day, the Alpaca sandbox
fills the orders, and the real TradingNode (data client, execution client, SignalActor,
EnsembleStrategy) trades it exactly as it would trade today.

The day runs in lockstep, minute by minute, as fast as the node keeps up:
1. the broker settles its resting orders (brackets' stops and targets) against the bar
   closing at t, and the node is given time to take in those fills;
2. the Polygon sandbox publishes the AM bars closing at t; the node turns them into
   signals and orders, the broker fills market orders at that bar's close;
3. the next minute starts only when the node has seen every bar of t and no order is in
   flight (submitted, not yet acknowledged; or an acknowledged market order not yet filled)
   and nothing has moved on either side for a few polls.
That is the order a backtest venue works in (a bar first reaches the matching engine, then
the strategy), which is what lets the parity test compare the two paths order by order.

Keys: the sandboxes take throwaway keys, put in the environment only for the rehearsal, so a
real key in the environment is never sent to them.

Ctrl-C stops a rehearsal the way it stops a live node: KeyboardInterrupt leaves the node's
context, the strategy cancels and flattens, the journal is written (``live.node.NodeThread``).
"""

import os
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig, InstrumentProviderConfig
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import OrderType
from nautilus_trader.model.events import OrderEvent

from adapters.alpaca.common import ALPACA
from adapters.alpaca.config import AlpacaExecClientConfig
from adapters.alpaca.sandbox import AlpacaSandbox, CatalogMarket
from adapters.polygon.config import PolygonDataClientConfig
from adapters.polygon.sandbox import PolygonSandbox, SimClock
from catalog.errors import CalendarRangeError
from catalog.instruments import bar_type, instrument_id
from catalog.sessions import session_minutes, sessions_ending, trading_sessions
from catalog.store import MarketCatalog, open_catalog
from live.journal import RunInfo, open_journal
from live.journal.sinks import MemorySink, Sink
from live.node import NodeThread, build_node, node_config
from live.settings import LiveConfig

if TYPE_CHECKING:
    from live.control import TradingControl

SANDBOX_KEYS = {
    "POLYGON_API_KEY": "rehearsal-polygon-key",
    "ALPACA_API_KEY_ID": "rehearsal-key",
    "ALPACA_API_SECRET_KEY": "rehearsal-secret",
}
_POLL_SECS = 0.005
_STABLE_POLLS = 3


class RehearsalError(Exception):
    """A rehearsal that cannot run as asked (the day, the catalog); the message says why."""


class RehearsalStalledError(RehearsalError):
    """The node did not take in a minute in time (a lost bar, an order never acknowledged)."""


@dataclass
class RehearsalResult:
    day: date
    minutes: int
    elapsed_s: float
    signals: list[dict] = field(default_factory=list)
    intents: list[dict] = field(default_factory=list)
    fills: list[dict] = field(default_factory=list)
    order_events: list[dict] = field(default_factory=list)  # the node cache's, per order in order
    broker_orders: list[dict] = field(default_factory=list)
    broker_positions: dict = field(default_factory=dict)
    broker_cash: float = 0.0  # the account's cash afterwards: the next day's starting cash
    run_id: str = ""  # the journal's run
    model_dirs: dict[str, str] = field(default_factory=dict)  # the saved models it traded, as journaled
    equity: list[tuple[int, float]] = field(default_factory=list)  # (ts, account total) as it moved
    bars: set[tuple[str, int]] = field(default_factory=set)  # (instrument id, ts_event) the node received


class PacerConfig(ActorConfig, frozen=True, kw_only=True):
    bar_types: list[str]


class Pacer(Actor):
    """Counts what reached the node, so the driver knows when a minute is fully taken in."""

    def __init__(self, config: PacerConfig) -> None:
        super().__init__(config)
        self.bars_at: dict[int, int] = {}
        self.bars: set[tuple[str, int]] = set()
        self.order_events = 0

    def on_start(self) -> None:
        for bt in self.config.bar_types:
            self.subscribe_bars(BarType.from_str(bt))
        self.msgbus.subscribe(topic="events.order.*", handler=self._on_order_event)

    def on_bar(self, bar: Bar) -> None:
        self.bars_at[bar.ts_event] = self.bars_at.get(bar.ts_event, 0) + 1
        self.bars.add((bar.bar_type.instrument_id.value, bar.ts_event))

    def _on_order_event(self, _event: OrderEvent) -> None:
        self.order_events += 1

    def in_flight(self) -> int:
        """Orders not yet settled with the venue: created but not submitted, submitted but not
        acknowledged, pending a change, or an acknowledged market order not filled yet. From
        the cache's indexes (the driver polls this every few ms on the node's loop)."""
        cache = self.cache
        initialized = (cache.orders_total_count() - cache.orders_open_count() - cache.orders_closed_count()
                       - cache.orders_inflight_count() - cache.orders_emulated_count())
        open_market = sum(1 for o in cache.orders_open() if o.order_type == OrderType.MARKET)
        return initialized + cache.orders_inflight_count() + open_market


def rehearse(
    config: LiveConfig,
    catalog_path: str | Path,
    day: date | str,
    *,
    starting_cash: float = 100_000.0,
    out_dir: Path | None = None,
    on_minute: Callable[[int, int], None] | None = None,
    until: str | None = None,
    minute_timeout_secs: float = 30.0,
    log_level: str = "ERROR",
    withheld_bars: Collection[tuple[str, int]] = (),
    control: "TradingControl | None" = None,
    minute_secs: float = 0.0,
    also: Sequence[Sink] = (),
) -> RehearsalResult:
    """Trade ``day`` of the catalog through both sandboxes; ``on_minute(done, total)``
    reports progress. ``until`` ("HH:MM", New York time) stops the node early, the way an
    operator would: the strategy cancels its orders and flattens on the way out. The journal
    goes where ``config.journal`` says (``out_dir``: the Parquet sink's directory). Returns
    what the journal recorded, the node's own order events and the broker's orders and
    positions afterwards. ``withheld_bars``: (symbol, bar close ns) the Polygon sandbox loses,
    as a live feed can. ``control``: the operator's (the control panel), given the node while
    it trades; ``minute_secs``: a pause after each minute, so a person (or a browser test)
    can watch the day; ``also``: more journal sinks (the panel's)."""
    catalog, sessions = check_rehearsal_day(config, catalog_path, day)
    session_open = sessions["open"].iloc[0]
    minutes = session_minutes(sessions)
    if until is not None:
        stop = pd.Timestamp(f"{sessions.index[0].date()} {until}", tz="America/New_York")
        minutes = minutes[minutes <= stop]
    expected = _bars_per_minute(catalog, config.universe, minutes)
    for _symbol, close in withheld_bars:  # the node waits for the bars the feed sends
        expected[close] = expected.get(close, 0) - 1

    clock = SimClock.manual(session_open)
    polygon = PolygonSandbox(catalog.path, api_key=SANDBOX_KEYS["POLYGON_API_KEY"], clock=clock,
                             withheld_bars=withheld_bars)
    broker = AlpacaSandbox(CatalogMarket(catalog.path), key_id=SANDBOX_KEYS["ALPACA_API_KEY_ID"],
                           secret_key=SANDBOX_KEYS["ALPACA_API_SECRET_KEY"], clock=clock,
                           starting_cash=starting_cash)
    ids = frozenset(str(instrument_id(s)) for s in config.universe)
    pacer = Pacer(PacerConfig(bar_types=[str(bar_type(s)) for s in config.universe]))
    record = MemorySink()
    began = time.perf_counter()
    with open_journal(config.journal, out_dir=out_dir, also=[record, *also]) as journal, sandbox_environment(), polygon, broker:
        model_dirs = {name: str(path) for name, path in config.model_dirs().items()}
        collector = journal.collector(RunInfo(trading_day=sessions.index[0].date(), name=config.name,
                                              mode="rehearsal", model_dirs=model_dirs))
        cfg = node_config(
            config,
            polygon=PolygonDataClientConfig(
                base_url=polygon.base_url, ws_feed=polygon.ws_feed, secure=False,
                stale_after_secs=3600.0, instrument_provider=InstrumentProviderConfig(load_ids=ids),
            ),
            alpaca=AlpacaExecClientConfig(
                base_url=broker.base_url, stream_url=broker.stream_url,
                instrument_provider=InstrumentProviderConfig(load_ids=ids),
                instrument_sectors=catalog.sectors(),
            ),
            log_level=log_level,
            reconciliation_lookback_mins=None,
        )
        with NodeThread(build_node, config, cfg, warmup_as_of=session_open.isoformat(),
                        extra_actors=[pacer, collector]) as node:
            _wait_until_trading(node, polygon, minute_timeout_secs)
            if control is not None:
                control.set_node(node, cfg.exec_clients[ALPACA])
            try:
                for done, t in enumerate(minutes.asi8, start=1):
                    broker.advance_to(pd.Timestamp(t, tz="UTC"))
                    settle(node, pacer, lambda: broker_activity(broker), t, 0, minute_timeout_secs)
                    polygon.advance_to(pd.Timestamp(t, tz="UTC"))
                    settle(node, pacer, lambda: broker_activity(broker), t, expected.get(t, 0), minute_timeout_secs)
                    if on_minute:
                        on_minute(done, len(minutes))
                    if minute_secs:
                        time.sleep(minute_secs)
            finally:
                if control is not None:
                    control.set_node(None)
            result = RehearsalResult(day=sessions.index[0].date(), minutes=len(minutes), elapsed_s=0.0,
                                     intents=node.call(collector.intents))
        result.order_events = _order_events(node.node.cache)  # after the stop's cancels and flatten
        result.run_id, result.bars = collector.config.run_id, pacer.bars
        result.model_dirs = dict(collector.config.model_dirs)
        result.equity = [(a["ts_event"], float(a["total"])) for a in record.records("account_states")]
        result.signals = record.records("signals")
        result.fills = record.records("fills")
        result.broker_orders = broker.orders()
        result.broker_positions = broker.positions()
        result.broker_cash = float(broker.cash())
    result.elapsed_s = time.perf_counter() - began
    return result


def check_rehearsal_day(config: LiveConfig, catalog_path: str | Path, day: date | str) -> tuple[MarketCatalog, pd.DataFrame]:
    """The catalog and ``day``'s session, once it is known the catalog can replay the day
    (``RehearsalError`` says why not): a multi-day rehearsal checks every day before the first."""
    try:
        sessions = trading_sessions(day, day)
    except CalendarRangeError as e:  # a date it cannot read, or outside the NYSE calendar
        raise RehearsalError(f"--day {day!r}: {e} (expected a YYYY-MM-DD session)") from None
    if sessions.empty:
        raise RehearsalError(f"{day} is not an NYSE session")
    catalog = open_catalog(catalog_path)
    missing = sorted(set(config.universe) - set(catalog.symbols()))
    if missing:
        raise RehearsalError(f"the catalog {catalog.path} has no bars for {', '.join(missing)}")
    _check_day(catalog, config, sessions)
    return catalog, sessions


def _order_events(cache) -> list[dict]:
    """Every event of every order in the node's cache: what the journal must hold."""
    return [{"client_order_id": e.client_order_id.value, "kind": type(e).__name__, "event_id": str(e.id),
             "ts_event": e.ts_event, "details": type(e).to_dict(e)} for o in cache.orders() for e in o.events]


def _check_day(catalog: MarketCatalog, config: LiveConfig, sessions: pd.DataFrame) -> None:
    """The day must be in the catalog (else 390 empty minutes "succeed"), with the warm-up
    sessions before it (else the models never get the history a signal needs)."""
    day = sessions.index[0].date()
    opens, closes = sessions["open"].iloc[0], sessions["close"].iloc[0]
    if not any(len(catalog.read_bars(s, start=opens, end=closes)) for s in config.universe):
        first, last = _catalog_sessions(catalog, config.universe)
        raise RehearsalError(
            f"the catalog {catalog.path} has no bars on {day}: it holds {first} .. {last} "
            "(`sextant catalog info` lists what it holds)")
    if config.warmup_sessions == 0:
        return  # the actor builds its history during the day
    warmup = sessions_ending(opens.date() - pd.Timedelta(days=1), config.warmup_sessions)
    start, end = warmup["open"].iloc[0], warmup["close"].iloc[-1]
    if not any(len(catalog.read_bars(s, start=start, end=end)) for s in config.universe):
        first, _ = _catalog_sessions(catalog, config.universe)
        raise RehearsalError(
            f"{day} has no warm-up history in the catalog {catalog.path} (it starts on {first}): "
            f"the models need the {config.warmup_sessions} sessions before the day, so no signal "
            "can be produced; rehearse a later day")


def _catalog_sessions(catalog: MarketCatalog, symbols: list[str]) -> tuple[date, date]:
    """First and last session with bars of any of ``symbols``."""
    stamps = [catalog.read_bars(s).index for s in symbols]
    first = min(ts[0] for ts in stamps if len(ts))
    last = max(ts[-1] for ts in stamps if len(ts))
    return (first.tz_convert("America/New_York").date(), last.tz_convert("America/New_York").date())


def _bars_per_minute(catalog: MarketCatalog, symbols: list[str], minutes: pd.DatetimeIndex) -> dict[int, int]:
    counts: dict[int, int] = {}
    for symbol in symbols:
        for ts in catalog.read_bars(symbol, start=minutes[0], end=minutes[-1]).index.asi8:
            counts[int(ts)] = counts.get(int(ts), 0) + 1
    return counts


def _wait_until_trading(node: NodeThread, polygon: PolygonSandbox, timeout: float) -> None:
    """Connected, reconciled, subscribed and warmed up: the SignalActor holds its history."""
    polygon.wait_for_subscribers(1, timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        ready = node.call(lambda: node.node.trader.is_running and not any(
            getattr(a, "warming_up", False) for a in node.node.trader.actors()))
        if ready:
            return
        if time.monotonic() > deadline:
            raise RehearsalStalledError("the node did not start trading (connect, reconcile, warm-up) in time")
        time.sleep(0.05)


def broker_activity(broker: AlpacaSandbox) -> tuple[int, int]:
    """Counters that move whenever the broker hears or says something."""
    return len(broker.events_sent), len(broker.order_requests)


def settle(node: NodeThread, pacer: Pacer, activity: Callable[[], tuple], t: int, bars: int, timeout: float) -> None:
    """Block until the node holds all ``bars`` bars of minute ``t`` and both sides are quiet
    (``activity()`` reads the broker's counters)."""
    deadline = time.monotonic() + timeout
    last, stable = None, 0
    while True:
        seen, events, in_flight = node.call(lambda: (pacer.bars_at.get(t, 0), pacer.order_events, pacer.in_flight()))
        snapshot = (seen, events, in_flight, *activity())
        if seen >= bars and in_flight == 0:
            stable = stable + 1 if snapshot == last else 0
            if stable >= _STABLE_POLLS:
                return
        last = snapshot
        if time.monotonic() > deadline:
            raise RehearsalStalledError(
                f"minute {pd.Timestamp(t, tz='UTC')}: {seen}/{bars} bars, {in_flight} orders in flight after {timeout:.0f} s"
            )
        time.sleep(_POLL_SECS)


@contextmanager
def sandbox_environment() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in SANDBOX_KEYS}
    os.environ.update(SANDBOX_KEYS)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
