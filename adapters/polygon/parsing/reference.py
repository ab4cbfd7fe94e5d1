"""Polygon reference ticker JSON -> the project's ``Equity`` instrument.

Polygon has no sector field; its ticker details carry a four-digit SIC code, whose division
(Manufacturing, Finance, ...) is the sector the risk caps group by. Tickers without a usable
code (funds, recent listings) land in the UNKNOWN bucket rather than failing the load.
"""

import msgspec
from nautilus_trader.model.instruments import Equity

from catalog.instruments import UNKNOWN_SECTOR, equity
from catalog.sectors import sic_division


class TickerReference(msgspec.Struct):
    """The fields of a /v3/reference/tickers(/{T}) result this project uses."""

    ticker: str
    name: str | None = None
    market: str | None = None
    type: str | None = None
    active: bool | None = None
    sic_code: str | None = None


class TickerReferenceError(ValueError):
    """A ticker result without the shape of Polygon's (no ``ticker``, wrong types)."""


def parse_ticker(details: dict) -> TickerReference:
    try:
        return msgspec.convert(details, TickerReference)
    except msgspec.ValidationError as exc:
        raise TickerReferenceError(f"not a Polygon ticker result ({exc}): {str(details)[:160]}") from None


def sector_of_ticker(ticker: TickerReference) -> str:
    """The SIC division of ``sic_code``, or UNKNOWN when it is absent or in no division."""
    if not ticker.sic_code:
        return UNKNOWN_SECTOR
    return sic_division(ticker.sic_code) or UNKNOWN_SECTOR


def equity_from_details(details: dict) -> Equity:
    """An ``Equity`` on the project's venue from a ticker-details result."""
    ticker = parse_ticker(details)
    return equity(ticker.ticker, sector_of_ticker(ticker))
