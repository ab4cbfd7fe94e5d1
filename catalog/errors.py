"""The catalog's own error types: a user's data or path problem, reported without a traceback.

Commands catch ``CatalogError`` for a clean one-line message; anything else that escapes the
catalog is a bug and keeps its traceback."""

from catalog.file_lock import LockHeldError


class CatalogError(Exception):
    """A catalog cannot serve or accept what was asked; the message names the path or symbol."""


class EmptyCatalogError(CatalogError, LookupError):
    """The catalog holds no instruments or no bars for what was asked."""


class MissingCatalogError(CatalogError, LookupError):
    """A catalog path given explicitly does not exist or is an empty directory."""


class CatalogExistsError(CatalogError):
    """A job that creates a whole catalog found one already there (it never splices two)."""


class DamagedCatalogError(CatalogError):
    """A catalog file cannot be read (truncated, bit-flipped, not Parquet); the message names it."""


class InvalidSymbolError(CatalogError, ValueError):
    """A ticker that is not a US-equity symbol (refused before anything is written)."""


class CalendarRangeError(CatalogError, ValueError):
    """A date or range the NYSE calendar cannot serve: unparsable, outside the pinned calendar
    range, start after end, no session in it, or more sessions than the calendar holds."""


class UnknownTimeframeError(CatalogError, ValueError):
    """A timeframe name the catalog does not store (the message lists the ones it does)."""


class InvalidBarsError(CatalogError, ValueError):
    """A bars frame the writer refuses (times not increasing, NaN/infinite or negative values);
    nothing of it is written."""


class IngestManifestError(CatalogError):
    """The ingest manifest is unreadable, or it binds the timeframe to other source settings."""


class MarketTooLargeError(CatalogError, ValueError):
    """A synthetic market larger than the generator builds in memory (refused before any work)."""


class InvalidSectorError(CatalogError, ValueError):
    """A sector name given by the user that the risk rules could not group by (empty, control
    characters, too long); refused before anything is written."""


class CatalogBusyError(CatalogError, LockHeldError):
    """Another ingest or import is writing the catalog (``writer_lock``); the message names it."""
