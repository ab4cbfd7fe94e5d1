"""Polygon WebSocket frames -> NautilusTrader objects (pure, no sockets)."""


import msgspec
import pytest
from nautilus_trader.model.data import Bar, BarType, QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.identifiers import InstrumentId, TradeId
from nautilus_trader.model.objects import Price, Quantity

from adapters.polygon.parsing.stream import (
    EXCERPT_CHARS,
    MalformedFrameError,
    StatusMessage,
    StreamParser,
)

RECEIVED_NS = 1_704_205_860_123_456_789
AM = {"ev": "AM", "sym": "AAPL", "v": 1200, "av": 50000, "op": 184.5, "vw": 185.03, "o": 185.0,
      "c": 185.04, "h": 185.1, "l": 184.9, "a": 184.9, "z": 85, "s": 1704205800000,
      "e": 1704205860000}
T = {"ev": "T", "sym": "AAPL", "x": 4, "i": "5298", "z": 3, "p": 185.12, "s": 100, "c": [12, 37],
     "t": 1704205800123, "q": 1063}
Q = {"ev": "Q", "sym": "AAPL", "bx": 4, "bp": 185.10, "bs": 2, "ax": 7, "ap": 185.12, "as": 3,
     "t": 1704205800123, "q": 50385480, "z": 3}


def frame(*messages: dict) -> bytes:
    return msgspec.json.encode(list(messages))


def test_minute_aggregate_becomes_a_bar_stamped_at_its_window_end() -> None:
    parsed = StreamParser().parse(frame(AM), RECEIVED_NS)

    [(key, bar)] = parsed.data
    assert key == "AM.AAPL"
    assert isinstance(bar, Bar)
    assert bar.bar_type == BarType.from_str("AAPL.ALPACA-1-MINUTE-LAST-EXTERNAL")
    assert (bar.open, bar.high, bar.low, bar.close) == (
        Price.from_str("185.00"), Price.from_str("185.10"), Price.from_str("184.90"),
        Price.from_str("185.04"),
    )
    assert bar.volume == Quantity.from_int(1200)
    assert bar.ts_event == 1704205860000 * 1_000_000  # `e`: the close, not the start `s`
    assert bar.ts_init == RECEIVED_NS
    assert parsed.statuses == [] and parsed.skipped == 0


def test_second_aggregate_becomes_a_one_second_bar() -> None:
    [(key, bar)] = StreamParser().parse(frame({**AM, "ev": "A"}), RECEIVED_NS).data
    assert key == "A.AAPL"
    assert bar.bar_type == BarType.from_str("AAPL.ALPACA-1-SECOND-LAST-EXTERNAL")
    assert bar.ts_event == 1704205860000 * 1_000_000


def test_trade_becomes_a_trade_tick_without_aggressor() -> None:
    [(key, tick)] = StreamParser().parse(frame(T), RECEIVED_NS).data
    assert key is None
    assert isinstance(tick, TradeTick)
    assert tick.instrument_id == InstrumentId.from_str("AAPL.ALPACA")
    assert tick.price == Price.from_str("185.12")
    assert tick.size == Quantity.from_int(100)
    assert tick.aggressor_side == AggressorSide.NO_AGGRESSOR
    assert tick.trade_id == TradeId("5298")
    assert (tick.ts_event, tick.ts_init) == (1704205800123 * 1_000_000, RECEIVED_NS)


def test_quote_becomes_a_quote_tick() -> None:
    [(key, quote)] = StreamParser().parse(frame(Q), RECEIVED_NS).data
    assert key is None
    assert isinstance(quote, QuoteTick)
    assert (quote.bid_price, quote.ask_price) == (Price.from_str("185.10"), Price.from_str("185.12"))
    assert (quote.bid_size, quote.ask_size) == (Quantity.from_int(2), Quantity.from_int(3))
    assert quote.ts_event == 1704205800123 * 1_000_000


def test_mixed_frame_keeps_order_and_returns_statuses_apart() -> None:
    status = {"ev": "status", "status": "success", "message": "subscribed to: AM.AAPL"}
    parsed = StreamParser().parse(frame(status, AM, T, {**AM, "sym": "MSFT"}, Q), RECEIVED_NS)
    assert [type(obj) for _, obj in parsed.data] == [Bar, TradeTick, Bar, QuoteTick]
    assert [key for key, _ in parsed.data] == ["AM.AAPL", None, "AM.MSFT", None]
    assert parsed.statuses == [StatusMessage("success", "subscribed to: AM.AAPL")]


def test_event_types_never_subscribed_are_skipped_not_errors() -> None:
    parsed = StreamParser().parse(frame({"ev": "LULD", "sym": "AAPL", "h": 1}, AM), RECEIVED_NS)
    assert parsed.skipped == 1
    assert [key for key, _ in parsed.data] == ["AM.AAPL"]


def test_price_precision_comes_from_the_instrument_and_is_asked_once_per_symbol() -> None:
    asked: list[str] = []

    def precision(symbol: str) -> int:
        asked.append(symbol)
        return 4

    parser = StreamParser(precision)
    parser.parse(frame(AM, AM), RECEIVED_NS)
    [(_, bar)] = parser.parse(frame({**AM, "c": 185.0401}), RECEIVED_NS).data
    assert bar.close == Price.from_str("185.0401")
    assert asked == ["AAPL"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'[{"ev":"AM","sym":"AAPL","o":1', "truncated"),
        (b'{"ev":"AM"}', "Expected `array`"),
        (frame(AM, {**AM, "v": "lots"}), "event 1: expected `float`, got `str` - at `$.v`"),
        (frame({k: v for k, v in AM.items() if k != "e"}), "event 0: object missing required field `e`"),
        (frame({**AM, "h": 180.0}), "high was < open"),  # NautilusTrader's own invariant
        (frame({**T, "s": -5}), "less than `quantity_min`"),
        (frame({**T, "i": ""}), "string was invalid"),
        (frame(AM, {"sym": "AAPL"}), "event 1: object missing required field `ev`"),
    ],
)
def test_malformed_frames_raise_with_the_reason_and_an_excerpt(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedFrameError) as caught:
        StreamParser().parse(raw, RECEIVED_NS)
    assert reason.lower() in str(caught.value).lower()
    assert caught.value.excerpt.startswith(raw.decode()[:20])


def test_excerpt_of_a_long_frame_is_short() -> None:
    raw = frame(*([AM] * 50))[:-1]  # cut the closing bracket: invalid
    with pytest.raises(MalformedFrameError) as caught:
        StreamParser().parse(raw, RECEIVED_NS)
    assert len(caught.value.excerpt) == EXCERPT_CHARS + 3
    assert caught.value.excerpt.endswith("...")


def test_per_symbol_constants_are_built_once() -> None:
    """What keeps parsing on the hot path cheap: the instrument's precision is asked once per
    symbol, however many frames arrive (the rate itself is ``sextant bench --part polygon``)."""
    raw = frame(*({**AM, "sym": f"S{i:03d}"} for i in range(50)))
    asked: list[str] = []
    parser = StreamParser(lambda symbol: asked.append(symbol) or 4)
    parsed = [parser.parse(raw, RECEIVED_NS) for _ in range(400)]
    assert sorted(asked) == [f"S{i:03d}" for i in range(50)]
    assert all(len(p.data) == 50 for p in parsed)
    assert {bar.bar_type.instrument_id.symbol.value for _, bar in parsed[-1].data} == set(asked)


def test_sub_penny_prices_keep_polygons_four_decimals() -> None:
    """Polygon sends up to 4 decimals; without an instrument in the cache the parser uses the
    catalog's default precision (4), so nothing is rounded to cents."""
    am = {**AM, "o": 185.4321, "h": 185.4999, "l": 0.0041, "c": 185.4567}
    quote = {**Q, "bp": 0.5123, "ap": 0.5124}
    parsed = StreamParser().parse(frame(am, {**T, "p": 185.4321}, quote), RECEIVED_NS)
    (_, bar), (_, trade), (_, tick) = parsed.data
    assert [str(p) for p in (bar.open, bar.high, bar.low, bar.close)] == ["185.4321", "185.4999", "0.0041", "185.4567"]
    assert str(trade.price) == "185.4321"
    assert (str(tick.bid_price), str(tick.ask_price)) == ("0.5123", "0.5124")
