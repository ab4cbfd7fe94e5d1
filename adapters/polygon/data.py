"""The live Polygon data client for a NautilusTrader TradingNode.

Streams ``AM`` (-> 1-MINUTE bars), ``A`` (-> 1-SECOND bars), ``T`` (-> TradeTick) and ``Q``
(-> QuoteTick) through ``PolygonStream`` and answers ``request_bars`` (strategy warm-up) over
REST. Strategies must see every minute bar exactly once and in order even when the socket
drops mid-session: after each reconnect the bars closed while disconnected are fetched over
REST, and until that backfill is done the symbol's live bars are held back, then released
behind it (``BarSequencer``), so a live 10:05 bar cannot overtake a backfilled 10:03 one.
"""

import asyncio
import random
from collections.abc import Callable, Iterable

import pandas as pd
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.data.messages import (
    RequestBars,
    SubscribeBars,
    SubscribeQuoteTicks,
    SubscribeTradeTicks,
    UnsubscribeBars,
    UnsubscribeQuoteTicks,
    UnsubscribeTradeTicks,
)
from nautilus_trader.live.data_client import LiveMarketDataClient
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import AggregationSource, BarAggregation, PriceType
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.objects import Price, Quantity

from adapters.connection import KeepsConnectError
from adapters.polygon.common import NANOS_PER_MILLI, POLYGON, TIMEFRAMES
from adapters.polygon.config import PolygonDataClientConfig
from adapters.polygon.errors import PolygonError
from adapters.polygon.http import AggregateBars, PolygonHttpClient
from adapters.polygon.parsing.stream import (
    DEFAULT_PRICE_PRECISION,
    SIZE_PRECISION,
    StatusMessage,
    StreamParser,
)
from adapters.polygon.websocket import PolygonStream, backoff_delay
from catalog.instruments import BAR_SPECS, VENUE, instrument_id

_MINUTE_NS = TIMEFRAMES["1m"].interval_ns
_OK_STATUSES = frozenset({"connected", "auth_success", "success"})
_SUBSCRIBED, _UNSUBSCRIBED = "subscribed to: ", "unsubscribed to: "
# catalog bar spec (e.g. "1-MINUTE-LAST-EXTERNAL") -> Polygon timeframe name ("1m"), for REST
_REST_TIMEFRAMES = {spec: name for name, spec in BAR_SPECS.items()}


class BarSequencer:
    """Exactly-once, in-order bar delivery per stream key (``AM.AAPL``).

    ``offer`` is the live path: a bar at or before the last delivered ``ts_event`` of its key
    is a duplicate and dropped. ``hold`` starts buffering a key's live bars (a backfill is
    running); ``release`` delivers the backfilled bars, then the held ones, in ``ts_event``
    order, each only if newer than the last delivered. Keys are strings because hashing a
    NautilusTrader BarType costs more than parsing the bar."""

    def __init__(self, deliver: Callable[[Bar], None]) -> None:
        self._deliver = deliver
        self._last: dict[str, int] = {}
        self._held: dict[str, list[Bar]] = {}
        self.duplicates = 0

    def offer(self, key: str, bar: Bar) -> None:
        held = self._held.get(key)
        if held is not None:
            held.append(bar)
            return
        self._pass(key, bar)

    def _pass(self, key: str, bar: Bar) -> bool:
        ts = bar.ts_event
        last = self._last.get(key)
        if last is not None and ts <= last:
            self.duplicates += 1
            return False
        self._last[key] = ts
        self._deliver(bar)
        return True

    def last_ts(self, key: str) -> int | None:
        return self._last.get(key)

    def holding(self, key: str) -> bool:
        return key in self._held

    def hold(self, key: str) -> None:
        self._held.setdefault(key, [])

    def release(self, key: str, backfilled: Iterable[Bar] = ()) -> tuple[int, int]:
        """Stop holding ``key``: deliver the backfilled and held bars merged in ``ts_event``
        order (a backfilled bar wins a tie), skipping any not newer than the last delivered.
        Returns how many of each were delivered."""
        merged = [(bar.ts_event, 0, bar) for bar in backfilled]
        merged += [(bar.ts_event, 1, bar) for bar in self._held.pop(key, [])]
        merged.sort(key=lambda item: item[:2])
        delivered = [0, 0]
        for _, source, bar in merged:
            delivered[source] += self._pass(key, bar)
        return delivered[0], delivered[1]

    def forget(self, key: str) -> None:
        """Stop holding ``key`` (unsubscribed); its last delivered time is kept, so a later
        re-subscription still never repeats a bar."""
        self._held.pop(key, None)


def bar_topic(bar_type: BarType) -> str | None:
    """The Polygon stream topic for a bar type, or None when Polygon does not stream it."""
    spec = bar_type.spec
    if (
        bar_type.aggregation_source != AggregationSource.EXTERNAL
        or spec.price_type != PriceType.LAST
        or spec.step != 1
    ):
        return None
    symbol = bar_type.instrument_id.symbol.value
    if spec.aggregation == BarAggregation.MINUTE:
        return f"AM.{symbol}"
    if spec.aggregation == BarAggregation.SECOND:
        return f"A.{symbol}"
    return None


def aggregate_bars_to_list(
    bars: AggregateBars, bar_type: BarType, price_precision: int, ts_init: int
) -> list[Bar]:
    """REST columns -> Bars, rounded to the instrument's precision as the stream does."""
    return [
        Bar(
            bar_type,
            Price(o, price_precision),
            Price(h, price_precision),
            Price(lo, price_precision),
            Price(c, price_precision),
            Quantity(v, SIZE_PRECISION),
            ts,
            ts_init,
        )
        for ts, o, h, lo, c, v in zip(
            bars.ts_ns.tolist(),
            bars.open.tolist(),
            bars.high.tolist(),
            bars.low.tolist(),
            bars.close.tolist(),
            bars.volume.tolist(),
            strict=True,
        )
    ]


class PolygonDataClient(KeepsConnectError, LiveMarketDataClient):
    """Polygon market data for a TradingNode (see the module docstring)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        http_client: PolygonHttpClient,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
        instrument_provider: InstrumentProvider,
        config: PolygonDataClientConfig,
        api_key: str,
        name: str | None = None,
    ) -> None:
        super().__init__(
            loop=loop,
            client_id=ClientId(name or POLYGON),
            venue=VENUE,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=instrument_provider,
            config=config,
        )
        self._config = config
        self._http = http_client
        self._parser = StreamParser(self._price_precision)
        self._bars = BarSequencer(self._handle_data)
        # AM topic -> the close after which bars are owed: the subscription's minute (wall
        # clock) until a first bar is delivered, then the sequencer's last delivered close
        self._minute_since: dict[str, int] = {}
        self._backfill_task: asyncio.Task | None = None
        self._acknowledged: set[str] = set()
        self._rng = random.Random()
        self.backfilled_bars = 0  # bars delivered from REST after reconnects
        self.messages = 0  # stream messages parsed (a frame holds several): the feed's rate
        self._stream = PolygonStream(
            api_key,
            config,
            on_frame=self.handle_frame,
            on_reconnected=self._on_reconnected,
            now_ns=clock.timestamp_ns,
            logger=self._log,
        )

    @property
    def stream(self) -> PolygonStream:
        """The supervised socket: status and counters for health checks."""
        return self._stream

    @property
    def duplicate_bars_dropped(self) -> int:
        return self._bars.duplicates

    @property
    def acknowledged_topics(self) -> frozenset[str]:
        """Topics the server confirmed on the current session (a topic subscribed but never
        confirmed is one the server does not serve)."""
        return frozenset(self._acknowledged)

    @property
    def backfill_pending(self) -> bool:
        """True from a reconnect until its backfill has released every held bar."""
        return self._backfill_task is not None and not self._backfill_task.done()

    # -- connection --------------------------------------------------------------------------

    async def _open(self) -> None:
        await self._instrument_provider.initialize()
        for instrument in self._instrument_provider.list_all():
            self._handle_data(instrument)
        self._stream.start()
        if not await self._stream.wait_connected(self._config.connect_timeout_secs):
            self._log.warning(
                f"Polygon stream not connected within {self._config.connect_timeout_secs:g}s; "
                "still retrying in the background"
            )

    async def _disconnect(self) -> None:
        if self._backfill_task is not None and not self._backfill_task.done():
            self._backfill_task.cancel()
        await self._stream.stop()

    # -- subscriptions -----------------------------------------------------------------------

    async def _subscribe_bars(self, command: SubscribeBars) -> None:
        topic = bar_topic(command.bar_type)
        if topic is None:
            self._remove_subscription_bars(command.bar_type)
            self._log.error(
                f"Cannot subscribe {command.bar_type}: Polygon streams only "
                "1-MINUTE-LAST-EXTERNAL (AM) and 1-SECOND-LAST-EXTERNAL (A) bars"
            )
            return
        if topic.startswith("AM."):
            now = self._clock.timestamp_ns()
            self._minute_since.setdefault(topic, now - now % _MINUTE_NS)
        self._stream.subscribe(topic)

    async def _unsubscribe_bars(self, command: UnsubscribeBars) -> None:
        topic = bar_topic(command.bar_type)
        if topic is None:
            return
        self._minute_since.pop(topic, None)
        self._stream.unsubscribe(topic)
        # bars held for a backfill in flight are released to nobody
        self._bars.forget(topic)

    async def _subscribe_trade_ticks(self, command: SubscribeTradeTicks) -> None:
        self._stream.subscribe(f"T.{command.instrument_id.symbol.value}")

    async def _unsubscribe_trade_ticks(self, command: UnsubscribeTradeTicks) -> None:
        self._stream.unsubscribe(f"T.{command.instrument_id.symbol.value}")

    async def _subscribe_quote_ticks(self, command: SubscribeQuoteTicks) -> None:
        self._stream.subscribe(f"Q.{command.instrument_id.symbol.value}")

    async def _unsubscribe_quote_ticks(self, command: UnsubscribeQuoteTicks) -> None:
        self._stream.unsubscribe(f"Q.{command.instrument_id.symbol.value}")

    # -- live frames (hot path) --------------------------------------------------------------

    def handle_frame(self, raw: str | bytes, received_ns: int) -> None:
        """Every frame of the stream comes here (``received_ns`` stamped on receipt). Public
        so the benchmark drives the very path the socket does, minus the socket."""
        parsed = self._parser.parse(raw, received_ns)
        self.messages += len(parsed.data) + len(parsed.statuses) + parsed.skipped
        offer = self._bars.offer
        handle = self._handle_data
        for topic, obj in parsed.data:
            if topic is None:
                handle(obj)
            else:
                offer(topic, obj)
        for status in parsed.statuses:
            self._on_status_message(status)

    def _on_status_message(self, status: StatusMessage) -> None:
        if status.status not in _OK_STATUSES:
            self._log.warning(f"Polygon status {status.status}: {status.message}")
        elif status.message.startswith(_SUBSCRIBED):
            self._acknowledged.update(_topics_in(status.message, _SUBSCRIBED))
        elif status.message.startswith(_UNSUBSCRIBED):
            self._acknowledged.difference_update(_topics_in(status.message, _UNSUBSCRIBED))

    def _price_precision(self, symbol: str) -> int:
        instrument = self._cache.instrument(instrument_id(symbol))
        return DEFAULT_PRICE_PRECISION if instrument is None else instrument.price_precision

    # -- reconnect backfill ------------------------------------------------------------------

    def _on_reconnected(self) -> None:
        """Runs before the new session's first frame: hold every minute-bar topic now, so no
        live bar can be delivered ahead of the bars missed while disconnected."""
        self._acknowledged.clear()  # the new session confirms its subscriptions afresh
        if not self._config.backfill_on_reconnect or not self._minute_since:
            return
        for topic in self._minute_since:
            self._bars.hold(topic)
        if self._backfill_task is not None and not self._backfill_task.done():
            self._backfill_task.cancel()  # the new run starts from what was delivered since
        self._backfill_task = self.create_task(self._backfill(), log_msg="polygon-backfill")

    async def _backfill(self) -> None:
        topics = [t for t in self._minute_since if self._bars.holding(t)]
        await asyncio.gather(*(self._backfill_topic(topic) for topic in topics))

    async def _backfill_topic(self, topic: str) -> None:
        symbol = topic.removeprefix("AM.")
        after_ns = self._bars.last_ts(topic) or self._minute_since.get(topic)
        bars = await self._fetch_missed(symbol, after_ns) if after_ns is not None else []
        if topic not in self._minute_since:  # unsubscribed while fetching
            return
        from_rest, from_live = self._bars.release(topic, bars)
        self.backfilled_bars += from_rest
        self._log.info(
            f"Backfilled {symbol}: {from_rest} missed bar(s) from REST, then {from_live} held "
            "live bar(s)"
        )

    async def _fetch_missed(self, symbol: str, after_ns: int) -> list[Bar]:
        """The minute bars closing in (after_ns, now], retried with backoff; an empty list
        (and an ERROR naming the gap) when every attempt fails."""
        attempts = self._config.backfill_attempts
        for attempt in range(attempts):
            now_ns = self._clock.timestamp_ns()
            try:
                return await asyncio.to_thread(self._closed_minutes, symbol, after_ns, now_ns)
            except PolygonError as exc:
                if attempt + 1 == attempts:
                    self._log.error(
                        f"Backfill of {symbol} failed {attempts} times, bars after "
                        f"{after_ns} may be missing: {exc}"
                    )
                    return []
                delay = backoff_delay(
                    attempt,
                    self._config.reconnect_initial_delay_secs,
                    self._config.reconnect_max_delay_secs,
                    self._rng,
                )
                self._log.warning(f"Backfill of {symbol} failed ({exc}); retrying in {delay:.2f}s")
                await asyncio.sleep(delay)
        return []

    def _closed_minutes(self, symbol: str, after_ns: int, now_ns: int) -> list[Bar]:
        """Blocking REST call (run in a worker thread). Window starts in [after, now - 1m]
        are exactly the bars closing in (after, now]: closed bars only."""
        first_start_ms = after_ns // NANOS_PER_MILLI
        last_start_ms = (now_ns - _MINUTE_NS) // NANOS_PER_MILLI
        if last_start_ms < first_start_ms:
            return []
        rows = self._http.aggregates(symbol, "1m", first_start_ms, last_start_ms)
        keep = (rows.ts_ns > after_ns) & (rows.ts_ns <= now_ns)
        bar_type = BarType.from_str(f"{symbol}.{VENUE}-{BAR_SPECS['1m']}")
        return aggregate_bars_to_list(
            rows.select(keep), bar_type, self._price_precision(symbol), now_ns
        )

    # -- requests ----------------------------------------------------------------------------

    async def _request_bars(self, request: RequestBars) -> None:
        """Closed bars with their close in [start, end] (end defaults to now). Every request
        is answered, with no bars when it cannot be served, so a warm-up never hangs; the
        reason is logged as an ERROR."""
        bar_type = request.bar_type
        bars: list[Bar] = []
        timeframe = _REST_TIMEFRAMES.get(f"{bar_type.spec}-EXTERNAL")
        if timeframe is None or bar_type.aggregation_source != AggregationSource.EXTERNAL:
            self._log.error(f"Cannot request {bar_type} from Polygon: not a catalog bar size")
        elif request.start is None:
            self._log.error(f"Cannot request {bar_type} from Polygon without a start time")
        else:
            now_ns = self._clock.timestamp_ns()
            start_ns = pd.Timestamp(request.start).value
            end_ns = min(now_ns, pd.Timestamp(request.end).value) if request.end else now_ns
            try:
                bars = await asyncio.to_thread(
                    self._history, bar_type, timeframe, start_ns, end_ns, now_ns
                )
            except PolygonError as exc:
                self._log.error(f"Request of {bar_type} bars failed: {exc}")
        if request.limit > 0:
            bars = bars[-request.limit :]
        self._handle_bars(bar_type, bars, request.id, request.start, request.end, request.params)

    def _history(
        self, bar_type: BarType, timeframe: str, start_ns: int, end_ns: int, now_ns: int
    ) -> list[Bar]:
        """Closed bars whose close lies in [start, end] (blocking; runs in a worker thread).
        A bar closing at or after ``start`` opened at most one interval before it (a daily
        bar less: it closes with its session), and one closing by ``end`` opened before it."""
        if end_ns < start_ns:
            return []
        symbol = bar_type.instrument_id.symbol.value
        interval = TIMEFRAMES[timeframe].interval_ns
        rows = self._http.aggregates(
            symbol,
            timeframe,
            (start_ns - interval) // NANOS_PER_MILLI,
            end_ns // NANOS_PER_MILLI,
        )
        keep = (rows.ts_ns >= start_ns) & (rows.ts_ns <= end_ns)
        return aggregate_bars_to_list(
            rows.select(keep), bar_type, self._price_precision(symbol), now_ns
        )



def _topics_in(message: str, prefix: str) -> list[str]:
    """``subscribed to: AM.AAPL`` -> ["AM.AAPL"] (a comma-separated list is accepted too)."""
    return [t.strip() for t in message.removeprefix(prefix).split(",") if t.strip()]
