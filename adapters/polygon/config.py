"""Typed settings of the Polygon adapter. No field holds the API key: it comes from the
environment when a client is built (see ``common.api_key_from_env``), so printing a config
never prints a secret."""

from urllib.parse import urlsplit

import msgspec
from nautilus_trader.live.config import LiveDataClientConfig

from adapters.polygon.common import DEFAULT_REST_URL, DEFAULT_WS_FEED


class PolygonConfigError(ValueError):
    """A setting of the Polygon adapter out of its bounds (the message names it)."""


class PolygonHistoricalConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the historical loader talks to a Polygon-compatible REST endpoint.

    ``requests_per_minute`` is the account's budget (the free tier allows 5); None means
    unthrottled (a paid plan, or the loopback sandbox). ``page_limit`` is Polygon's ``limit``
    (base aggregates per page, at most 50,000)."""

    base_url: str = DEFAULT_REST_URL
    requests_per_minute: int | None = None
    page_limit: int = 50_000
    adjusted: bool = True
    regular_session_only: bool = True
    connect_timeout_secs: float = 10.0
    read_timeout_secs: float = 30.0
    retries: int = 3
    max_workers: int = 4

    def __post_init__(self) -> None:
        check_rest_url(self.base_url)
        if self.requests_per_minute is not None and self.requests_per_minute <= 0:
            raise PolygonConfigError("requests_per_minute must be positive (or None for no budget)")
        if not 1 <= self.page_limit <= 50_000:
            raise PolygonConfigError("page_limit must be within 1..50000")
        if self.max_workers < 1:
            raise PolygonConfigError("max_workers must be at least 1")


def check_rest_url(url: str) -> None:
    """An endpoint the HTTP client can reach: http(s), a host, a port in range. Refused here, by
    name, rather than as a transport error after the first request (or a urllib3 warning)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:  # a port out of range or not a number
        raise PolygonConfigError(f"Polygon base URL {url!r}: {e}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
        raise PolygonConfigError(
            f"Polygon base URL {url!r} is not an http(s) URL with a host, e.g. https://api.massive.com"
        )
    if port == 0:
        raise PolygonConfigError(f"Polygon base URL {url!r}: port 0 is not a server's port")


class PolygonDataClientConfig(LiveDataClientConfig, frozen=True):
    """The live data client: WebSocket feed, REST endpoint for backfill, supervision knobs.

    ``ws_feed`` is host[:port] as the massive SDK takes it (``secure=False`` for ws://).
    ``stale_after_secs``: during the regular session, no message for this long raises a
    stale-feed status and forces a reconnect (a healthy minute feed sends at least one AM per
    subscribed symbol per minute). ``stale_check_outside_session`` applies that watchdog at
    any hour: for offline rehearsals whose simulated day is not today's session.
    ``connect_timeout_secs``: a connection that is not authenticated within this long
    (refused, hanging) is abandoned and retried with backoff.
    ``backfill_on_reconnect``: after a reconnect, fetch the minute bars missed while
    disconnected over REST (``backfill_attempts`` tries per symbol) before releasing live
    bars, so strategies see every bar exactly once.
    ``max_consecutive_crashes``: sessions in a row that end in an unexpected exception (a bug
    in frame handling that repeats on every message) before the stream gives up (FAILED)
    instead of reconnecting forever."""

    base_url: str = DEFAULT_REST_URL
    ws_feed: str = DEFAULT_WS_FEED
    secure: bool = True
    stale_after_secs: float = 90.0
    stale_check_outside_session: bool = False
    reconnect_initial_delay_secs: float = 0.25
    reconnect_max_delay_secs: float = 30.0
    connect_timeout_secs: float = 10.0
    backfill_on_reconnect: bool = True
    backfill_attempts: int = 3
    max_consecutive_crashes: int = 5

    def __post_init__(self) -> None:
        if self.max_consecutive_crashes < 1:
            raise ValueError("max_consecutive_crashes must be at least 1")
        if self.stale_after_secs <= 0 or self.connect_timeout_secs <= 0:
            raise ValueError("stale_after_secs and connect_timeout_secs must be positive")
        if not 0 < self.reconnect_initial_delay_secs <= self.reconnect_max_delay_secs:
            raise ValueError(
                "need 0 < reconnect_initial_delay_secs <= reconnect_max_delay_secs"
            )
        if self.backfill_attempts < 1:
            raise ValueError("backfill_attempts must be at least 1")
