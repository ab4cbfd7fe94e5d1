"""Failures of the Polygon adapter, each naming the symbol and range it concerns.

They subclass the catalog's ``BarSourceError`` so an ingest job records them against the
symbol and goes on with the others, while any other exception still stops it as a bug."""

from catalog.ingest import BarSourceError


class PolygonError(BarSourceError):
    """Base: ``symbol`` and ``span`` (human-readable timeframe and range) are kept for callers
    that report failures in their own words."""

    def __init__(self, symbol: str, span: str, reason: str) -> None:
        self.symbol = symbol
        self.span = span
        self.reason = reason
        super().__init__(f"Polygon {symbol} {span}: {reason}")


class PolygonDataError(PolygonError):
    """A response that arrived but cannot be trusted: malformed, truncated, inconsistent."""


class PolygonRequestError(PolygonError):
    """A request that did not get an answer: retries exhausted (429/5xx), timeouts, refused
    connections, or a non-retryable status such as 401/404."""
