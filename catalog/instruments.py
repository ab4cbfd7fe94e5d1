"""US-equity instruments on the project's single venue.

One venue constant is used for instruments, the backtest venue and the live execution client,
so accounts, routing and the catalog line up in every mode.
"""

import re
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
from nautilus_trader.model.instruments import Equity
from nautilus_trader.model.objects import Price, Quantity

from catalog.errors import InvalidSectorError, InvalidSymbolError, UnknownTimeframeError

VENUE = Venue("ALPACA")
UNKNOWN_SECTOR = "UNKNOWN"
BAR_SPEC = "1-MINUTE-LAST-EXTERNAL"

# The bar sizes the catalog stores, by the short name users type (``--timeframe 5m``).
BAR_SPECS: dict[str, str] = {
    "1m": BAR_SPEC,
    "5m": "5-MINUTE-LAST-EXTERNAL",
    "15m": "15-MINUTE-LAST-EXTERNAL",
    "1h": "1-HOUR-LAST-EXTERNAL",
    "1d": "1-DAY-LAST-EXTERNAL",
}


# US-equity tickers: a root of letters and digits starting with a letter, optionally one share
# class or series suffix after "." or "-" (BRK.B as Polygon and Alpaca spell it, BF-B, PBR.A).
# The symbol becomes a directory name, a DataFusion table name and part of a BarType string, so
# nothing else (commas, "/", "$", "*", spaces, "..") may reach the catalog.
SYMBOL_PATTERN = re.compile(r"[A-Z][A-Z0-9]{0,9}(?:[.-][A-Z0-9]{1,5})?")
MAX_SYMBOL_LENGTH = 16


def parse_symbol(text: str) -> str:
    """The catalog's spelling of a user-typed ticker: trimmed, upper case, validated.

    The one symbol rule of the project: every entry point (CSV import, ingest, generate,
    replay, configs' universes) passes its symbols through here, so ``inda``, ``"INDA "`` and
    ``INDA`` are one instrument and a malformed name is refused before anything is written."""
    symbol = text.strip().upper()
    if not symbol:
        raise InvalidSymbolError("empty symbol: give a ticker such as AAPL or BRK.B")
    if len(symbol) > MAX_SYMBOL_LENGTH:
        raise InvalidSymbolError(
            f"symbol {text[:20]!r}... is {len(symbol)} characters long; a ticker has at most {MAX_SYMBOL_LENGTH}"
        )
    if not SYMBOL_PATTERN.fullmatch(symbol):
        raise InvalidSymbolError(
            f"invalid symbol {text!r}: a US-equity ticker is letters and digits, starting with a letter, "
            "with an optional '.' or '-' class suffix (AAPL, BRK.B, BF-B)"
        )
    return symbol


def parse_symbols(text: str) -> list[str]:
    """A comma-separated list of tickers (``--symbols AAPL,msft``), each by ``parse_symbol``,
    duplicates dropped, order kept."""
    return list(dict.fromkeys(parse_symbol(part) for part in text.split(",")))


# Polygon sends prices with up to 4 decimals, and 0.0001 is the finest tick a US equity
# trades at (below $1), so new instruments are priced at 4 decimals. A catalog created earlier
# keeps the precision its instruments were stored with (``catalog.store`` reads it back).
PRICE_PRECISION = 4
PENNY = Decimal("0.01")
SUB_PENNY = Decimal("0.0001")
ONE_DOLLAR = Decimal(1)


def tick_size(price: Decimal) -> Decimal:
    """The minimum price increment of Reg NMS Rule 612 at ``price``: orders at or above $1.00
    are priced in whole cents, below $1.00 in hundredths of a cent. The one place this rule
    lives: the strategy rounds to it and the Alpaca sandbox rejects what breaks it."""
    return PENNY if price >= ONE_DOLLAR else SUB_PENNY


def is_on_tick(price: Decimal) -> bool:
    return price % tick_size(price) == 0


def round_to_tick(price: Decimal, up: bool, increment: Decimal = SUB_PENNY) -> Decimal:
    """``price`` rounded up (towards +inf) or down to a valid order price.

    The tick is Rule 612's at the price, or the instrument's own ``increment`` when that is
    coarser (a catalog stored at cents). The tick is chosen from the unrounded price; that is
    consistent at the $1 boundary: rounding down from >= $1 stays >= $1, rounding up from
    below $1 ends at most at $1.0000, a whole cent."""
    tick = max(tick_size(price), increment)
    units = (price / tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return units * tick


def instrument_id(symbol: str) -> InstrumentId:
    return InstrumentId(Symbol(symbol), VENUE)


def bar_spec(timeframe: str) -> str:
    """NautilusTrader's bar spec of a timeframe name; the one check of what the catalog stores."""
    try:
        return BAR_SPECS[timeframe]
    except KeyError:
        raise UnknownTimeframeError(f"unknown timeframe {timeframe!r}; expected one of {', '.join(BAR_SPECS)}") from None


def bar_type(symbol: str, timeframe: str = "1m") -> BarType:
    return BarType.from_str(f"{symbol}.{VENUE}-{bar_spec(timeframe)}")


def equity(symbol: str, sector: str = UNKNOWN_SECTOR, price_precision: int = PRICE_PRECISION) -> Equity:
    """A lot-size-1 equity; Reg-T style margins so a MARGIN account can short.

    Its price increment is the finest its precision holds (0.0001 by default), so bars keep
    the decimals the data carries; order prices follow ``tick_size`` on top of that."""
    return Equity(
        instrument_id=instrument_id(symbol),
        raw_symbol=Symbol(symbol),
        currency=USD,
        price_precision=price_precision,
        price_increment=Price(Decimal(1).scaleb(-price_precision), price_precision),
        lot_size=Quantity.from_int(1),
        ts_event=0,
        ts_init=0,
        margin_init=Decimal("0.5"),
        margin_maint=Decimal("0.25"),
        info={"sector": sector},
    )


MAX_SECTOR_LENGTH = 64


def parse_sector(text: str) -> str:
    """A sector as the user typed it, trimmed. The sector cap groups positions by this exact
    string, so an empty name or one with a newline or tab (a paste slip) would be a sector of
    its own; both are refused with the value shown."""
    sector = text.strip()
    if not sector:
        raise InvalidSectorError("empty sector: give a name such as Technology, or leave --sector out")
    if not sector.isprintable():
        raise InvalidSectorError(f"sector {sector!r} holds a control character (newline, tab, ...)")
    if len(sector) > MAX_SECTOR_LENGTH:
        raise InvalidSectorError(f"sector {sector[:20]!r}... is {len(sector)} characters long; "
                                 f"a sector name has at most {MAX_SECTOR_LENGTH}")
    return sector


def sector_of(instrument: Equity) -> str:
    return (instrument.info or {}).get("sector", UNKNOWN_SECTOR)
