"""A loopback Polygon server over a Sextant catalog, with scripted faults (see server.py)."""

from adapters.polygon.sandbox.clock import SimClock
from adapters.polygon.sandbox.faults import Fault, FaultSchedule, parse_fault
from adapters.polygon.sandbox.rest import RequestRecord
from adapters.polygon.sandbox.server import PolygonSandbox
from adapters.polygon.sandbox.stream import ConnectionRecord, FrameRecord

__all__ = [
    "ConnectionRecord",
    "Fault",
    "FaultSchedule",
    "FrameRecord",
    "PolygonSandbox",
    "RequestRecord",
    "SimClock",
    "parse_fault",
]
