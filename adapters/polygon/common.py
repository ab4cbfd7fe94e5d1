"""Polygon facts shared by the loader, the live client and the sandbox."""

import os
from collections.abc import Mapping
from dataclasses import dataclass

from nautilus_trader.model.identifiers import ClientId

POLYGON = "POLYGON"
POLYGON_CLIENT_ID = ClientId(POLYGON)
DEFAULT_REST_URL = "https://api.massive.com"
DEFAULT_WS_FEED = "socket.massive.com"
API_KEY_ENV_VARS = ("POLYGON_API_KEY", "MASSIVE_API_KEY")
NANOS_PER_MILLI = 1_000_000


class MissingApiKeyError(RuntimeError):
    """No Polygon key in the environment (or the untracked .env)."""


def api_key_from_env(environ: Mapping[str, str] = os.environ) -> str:
    """The key from POLYGON_API_KEY or MASSIVE_API_KEY. Keys never go in configs or logs:
    a config is printed at start-up, the environment is not."""
    for name in API_KEY_ENV_VARS:
        if environ.get(name):
            return environ[name]
    raise MissingApiKeyError(f"set {' or '.join(API_KEY_ENV_VARS)} (in the environment or an untracked .env)")


@dataclass(frozen=True)
class Timeframe:
    """One aggregate size as Polygon names it (multiplier + timespan) and as the catalog does."""

    name: str
    multiplier: int
    timespan: str
    interval_ns: int  # window length; a daily bar closes at its session's close instead

    @property
    def is_daily(self) -> bool:
        return self.timespan == "day"


_MINUTE_NS = 60_000_000_000
TIMEFRAMES: dict[str, Timeframe] = {
    "1m": Timeframe("1m", 1, "minute", _MINUTE_NS),
    "5m": Timeframe("5m", 5, "minute", 5 * _MINUTE_NS),
    "15m": Timeframe("15m", 15, "minute", 15 * _MINUTE_NS),
    "1h": Timeframe("1h", 1, "hour", 60 * _MINUTE_NS),
    "1d": Timeframe("1d", 1, "day", 1440 * _MINUTE_NS),
}


def timeframe(name: str) -> Timeframe:
    try:
        return TIMEFRAMES[name]
    except KeyError:
        raise ValueError(f"unknown timeframe {name!r}; expected one of {', '.join(TIMEFRAMES)}") from None
