"""A loopback Alpaca paper broker over a Sextant catalog, with scripted faults (see server.py;
fill rules in book.py)."""

from adapters.alpaca.sandbox.book import TradeUpdate
from adapters.alpaca.sandbox.faults import AlpacaFault, FaultSchedule, parse_alpaca_fault
from adapters.alpaca.sandbox.market import CatalogMarket
from adapters.alpaca.sandbox.rest import OrderRequestRecord
from adapters.alpaca.sandbox.server import AlpacaSandbox, first_session_open
from adapters.alpaca.sandbox.stream import EventRecord

__all__ = [
    "AlpacaFault",
    "AlpacaSandbox",
    "CatalogMarket",
    "EventRecord",
    "FaultSchedule",
    "OrderRequestRecord",
    "TradeUpdate",
    "first_session_open",
    "parse_alpaca_fault",
]
