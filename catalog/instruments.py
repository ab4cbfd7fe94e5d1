"""US-equity instruments on the project's single venue.

One venue constant is used for instruments, the backtest venue and the live execution client,
so accounts, routing and the catalog line up in every mode.
"""

import re
from decimal import Decimal

from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
from nautilus_trader.model.instruments import Equity
from nautilus_trader.model.objects import Price, Quantity

from catalog.errors import InvalidSymbolError, UnknownTimeframeError

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


def equity(symbol: str, sector: str = UNKNOWN_SECTOR) -> Equity:
    """A cent-tick, lot-size-1 equity; Reg-T style margins so a MARGIN account can short."""
    return Equity(
        instrument_id=instrument_id(symbol),
        raw_symbol=Symbol(symbol),
        currency=USD,
        price_precision=2,
        price_increment=Price.from_str("0.01"),
        lot_size=Quantity.from_int(1),
        ts_event=0,
        ts_init=0,
        margin_init=Decimal("0.5"),
        margin_maint=Decimal("0.25"),
        info={"sector": sector},
    )


def sector_of(instrument: Equity) -> str:
    return (instrument.info or {}).get("sector", UNKNOWN_SECTOR)
