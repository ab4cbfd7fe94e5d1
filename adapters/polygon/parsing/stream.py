"""Polygon WebSocket frames -> NautilusTrader Bar / TradeTick / QuoteTick.

Pure and on the hot path: every frame the live feed delivers goes through ``StreamParser.parse``
before it reaches the data engine, so the wire format is declared once as msgspec Structs
tagged by ``ev`` (one C-level decode per frame, no dicts) and the per-symbol constants (bar
types, instrument id, price precision) are built once and cached.

Conventions (DESIGN.md): a bar's ``ts_event`` is its CLOSE. ``AM``/``A`` carry the window end
in ``e`` (ms), which is that close. ``ts_init`` is the receive time the caller stamps, so the
engine can measure feed-to-strategy latency. Status messages are returned next to the data:
they describe the session, not the market.
"""

from collections.abc import Callable
from typing import NamedTuple, TypeAlias

import msgspec
from nautilus_trader.model.data import Bar, BarType, QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.identifiers import InstrumentId, TradeId
from nautilus_trader.model.objects import Price, Quantity

from adapters.polygon.common import NANOS_PER_MILLI
from catalog.instruments import BAR_SPEC, PRICE_PRECISION, VENUE, instrument_id

SECOND_BAR_SPEC = "1-SECOND-LAST-EXTERNAL"
DEFAULT_PRICE_PRECISION = PRICE_PRECISION  # Polygon's up to 4 decimals (catalog.instruments)
SIZE_PRECISION = 0
EXCERPT_CHARS = 160


class MalformedFrameError(ValueError):
    """A frame that is not a Polygon event array (bad JSON, wrong shape, impossible values).

    Carries a short excerpt so the log line shows what arrived without dumping a whole frame."""

    def __init__(self, reason: str, raw: str | bytes) -> None:
        text = raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")
        self.reason = reason
        self.excerpt = text[:EXCERPT_CHARS] + ("..." if len(text) > EXCERPT_CHARS else "")
        super().__init__(f"malformed Polygon frame ({reason}): {self.excerpt}")


class _Aggregate(msgspec.Struct, tag_field="ev"):
    sym: str
    o: float
    h: float
    l: float
    c: float
    v: float
    s: int  # window start, ms
    e: int  # window end = bar close, ms


class MinuteAggregate(_Aggregate, tag="AM"):
    pass


class SecondAggregate(_Aggregate, tag="A"):
    pass


class Trade(msgspec.Struct, tag_field="ev", tag="T"):
    sym: str
    i: str  # trade id
    p: float
    s: float  # size
    t: int  # SIP timestamp, ms


class Quote(msgspec.Struct, tag_field="ev", tag="Q"):
    sym: str
    bp: float
    bs: float
    ap: float
    as_: float = msgspec.field(name="as")
    t: int = 0


class StatusMessage(msgspec.Struct, tag_field="ev", tag="status"):
    status: str
    message: str = ""


Event = MinuteAggregate | SecondAggregate | Trade | Quote | StatusMessage
_KNOWN_EVENTS = frozenset({"AM", "A", "T", "Q", "status"})


class _EventTag(msgspec.Struct):
    ev: str


_frame_decoder = msgspec.json.Decoder(list[Event])
_lenient_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_event_decoder = msgspec.json.Decoder(Event)
_tag_decoder = msgspec.json.Decoder(_EventTag)


MarketData: TypeAlias = Bar | TradeTick | QuoteTick


class ParsedFrame(NamedTuple):
    """``data`` pairs each object with its bar stream key (``AM.AAPL`` / ``A.AAPL``; None for
    ticks), so the client can keep bars exactly-once per stream without hashing BarTypes."""

    data: list[tuple[str | None, MarketData]]
    statuses: list[StatusMessage]
    skipped: int  # events of a type this client never subscribes to (ignored, not an error)


class _SymbolContext(NamedTuple):
    instrument_id: InstrumentId
    minute_bar_type: BarType
    second_bar_type: BarType
    minute_topic: str
    second_topic: str
    price_precision: int


def minute_bar_type(symbol: str) -> BarType:
    return BarType.from_str(f"{symbol}.{VENUE}-{BAR_SPEC}")


def second_bar_type(symbol: str) -> BarType:
    return BarType.from_str(f"{symbol}.{VENUE}-{SECOND_BAR_SPEC}")


def _decode_events(raw: str | bytes) -> tuple[list[Event], int]:
    """Fast path: the whole frame in one typed decode. Only when that fails do we look at
    events one by one, to tell an unknown event type (skipped) from a broken one (error)."""
    try:
        return _frame_decoder.decode(raw), 0
    except msgspec.ValidationError as exc:
        try:
            items = _lenient_decoder.decode(raw)
        except msgspec.DecodeError:
            raise MalformedFrameError(str(exc), raw) from exc
    except msgspec.DecodeError as exc:
        raise MalformedFrameError(str(exc), raw) from exc
    events: list[Event] = []
    skipped = 0
    for position, item in enumerate(items):
        try:
            tag = _tag_decoder.decode(item).ev
            if tag not in _KNOWN_EVENTS:
                skipped += 1
                continue
            events.append(_event_decoder.decode(item))
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            raise MalformedFrameError(f"event {position}: {exc}", raw) from exc
    return events, skipped


class StreamParser:
    """Decodes frames into NautilusTrader objects, caching per-symbol constants.

    ``price_precision_of(symbol)`` gives an instrument's price precision (the data client
    reads it from the cache); it is asked once per symbol."""

    def __init__(self, price_precision_of: Callable[[str], int] | None = None) -> None:
        self._precision_of = price_precision_of or (lambda _symbol: DEFAULT_PRICE_PRECISION)
        self._symbols: dict[str, _SymbolContext] = {}

    def _context(self, symbol: str) -> _SymbolContext:
        ctx = self._symbols.get(symbol)
        if ctx is None:
            ctx = _SymbolContext(
                instrument_id(symbol),
                minute_bar_type(symbol),
                second_bar_type(symbol),
                f"AM.{symbol}",
                f"A.{symbol}",
                self._precision_of(symbol),
            )
            self._symbols[symbol] = ctx
        return ctx

    def parse(self, raw: str | bytes, ts_init: int) -> ParsedFrame:
        """Decode one frame; raises MalformedFrameError for anything that is not a valid
        Polygon event array (including values NautilusTrader rejects, e.g. high < low)."""
        events, skipped = _decode_events(raw)
        data: list[tuple[str | None, MarketData]] = []
        statuses: list[StatusMessage] = []
        context = self._context
        try:
            for m in events:
                kind = type(m)
                if kind is MinuteAggregate or kind is SecondAggregate:
                    ctx = context(m.sym)
                    prec = ctx.price_precision
                    minute = kind is MinuteAggregate
                    bar = Bar(
                        ctx.minute_bar_type if minute else ctx.second_bar_type,
                        Price(m.o, prec),
                        Price(m.h, prec),
                        Price(m.l, prec),
                        Price(m.c, prec),
                        Quantity(m.v, SIZE_PRECISION),
                        m.e * NANOS_PER_MILLI,
                        ts_init,
                    )
                    data.append((ctx.minute_topic if minute else ctx.second_topic, bar))
                elif kind is Trade:
                    ctx = context(m.sym)
                    trade = TradeTick(
                        ctx.instrument_id,
                        Price(m.p, ctx.price_precision),
                        Quantity(m.s, SIZE_PRECISION),
                        AggressorSide.NO_AGGRESSOR,
                        TradeId(m.i),
                        m.t * NANOS_PER_MILLI,
                        ts_init,
                    )
                    data.append((None, trade))
                elif kind is Quote:
                    ctx = context(m.sym)
                    prec = ctx.price_precision
                    quote = QuoteTick(
                        ctx.instrument_id,
                        Price(m.bp, prec),
                        Price(m.ap, prec),
                        Quantity(m.bs, SIZE_PRECISION),
                        Quantity(m.as_, SIZE_PRECISION),
                        m.t * NANOS_PER_MILLI,
                        ts_init,
                    )
                    data.append((None, quote))
                else:
                    statuses.append(m)
        except (ValueError, TypeError, OverflowError) as exc:
            # NautilusTrader's own checks: high < low, negative size, empty trade id, ...
            raise MalformedFrameError(str(exc), raw) from exc
        return ParsedFrame(data, statuses, skipped)
