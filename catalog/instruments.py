"""US-equity instruments on the project's single venue.

One venue constant is used for instruments, the backtest venue and the live execution client,
so accounts, routing and the catalog line up in every mode.
"""

from decimal import Decimal

from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
from nautilus_trader.model.instruments import Equity
from nautilus_trader.model.objects import Price, Quantity

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


def instrument_id(symbol: str) -> InstrumentId:
    return InstrumentId(Symbol(symbol), VENUE)


def bar_type(symbol: str, timeframe: str = "1m") -> BarType:
    try:
        spec = BAR_SPECS[timeframe]
    except KeyError:
        raise ValueError(f"unknown timeframe {timeframe!r}; expected one of {', '.join(BAR_SPECS)}") from None
    return BarType.from_str(f"{symbol}.{VENUE}-{spec}")


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
