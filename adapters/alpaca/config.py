"""Typed settings of the Alpaca execution client. No field holds a key: the key pair comes
from the environment when the client is built (``common.credentials_from_env``), so printing
a config never prints a secret."""

from nautilus_trader.live.config import LiveExecClientConfig

from adapters.alpaca.common import PAPER_BASE_URL, check_endpoints, stream_url_for


class AlpacaExecClientConfig(LiveExecClientConfig, frozen=True):
    """The execution client: endpoints, the REST fault policy, stream supervision.

    ``base_url`` is the REST root without ``/v2`` (the SDK's ``url_override``);
    ``stream_url`` defaults to its ``/stream`` (see ``resolved_stream_url``). ``paper`` states
    which account the operator means: a ``paper=True`` config whose host is Alpaca's live
    one, however spelled, or a ``paper=False`` config whose host is not, is refused
    (``common.check_endpoints``), so real money is never traded by a paper config. A host
    that is neither Alpaca's paper host, its live host nor loopback needs
    ``allow_custom_host``; the factory then checks the key belongs to the same account.

    REST: every request gets ``request_timeout_secs`` (alpaca-py has no timeout of its own);
    429, 5xx and timeouts are retried up to ``max_retries`` times with exponential backoff
    from ``retry_initial_delay_secs`` to ``retry_max_delay_secs`` (a 429's Retry-After wins
    when present). ``http_workers`` is the number of threads the synchronous SDK may block
    at once; a stalled request holds one until the server answers or closes.
    ``order_connections``: the keep-alive connections POST /orders may use at once (orders
    go out on the event loop, not through the SDK's threads); an order beyond them waits
    for an earlier one's answer, so it should cover the largest burst (a bar close for every
    symbol traded).

    A submission that outlived its retries may still be processed by Alpaca: it is looked up
    by client_order_id (with the retry backoff) for up to ``order_lookup_secs`` before it is
    rejected as not placed; until a lookup settles it, the order stays SUBMITTED.

    Stream: a connection not authenticated and listening within ``stream_connect_timeout_secs``
    is abandoned; reconnects back off from ``reconnect_initial_delay_secs`` to
    ``reconnect_max_delay_secs``. ``reconcile_on_reconnect``: after every reconnect, fetch
    the venue state of every open order over REST and emit what the stream missed.

    ``status_topic``: a message-bus topic on which the client publishes False when its
    trade_updates stream is lost (order updates go unseen; ``is_connected`` turns False too)
    and True once it is back and reconciled, so a strategy can refuse new entries meanwhile.

    ``day_start_topic``: a message-bus topic (and cache key) on which the client publishes
    the account's ``last_equity`` with the session it starts, whenever it reads the account
    (``adapters.alpaca.day_start``), so a daily-loss rule counts from the previous close
    across a restart.

    ``instrument_sectors``: symbol -> sector for the instruments the provider builds (Alpaca
    assets carry no sector; the live node passes the catalog's). Unlisted symbols get the
    UNKNOWN sector.
    """

    base_url: str = PAPER_BASE_URL
    stream_url: str | None = None
    paper: bool = True
    allow_custom_host: bool = False
    request_timeout_secs: float = 10.0
    max_retries: int = 3
    retry_initial_delay_secs: float = 0.5
    retry_max_delay_secs: float = 10.0
    http_workers: int = 4
    order_connections: int = 100
    order_lookup_secs: float = 10.0
    stream_connect_timeout_secs: float = 10.0
    reconnect_initial_delay_secs: float = 0.5
    reconnect_max_delay_secs: float = 30.0
    reconcile_on_reconnect: bool = True
    status_topic: str | None = None
    day_start_topic: str | None = None
    instrument_sectors: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.request_timeout_secs <= 0 or self.stream_connect_timeout_secs <= 0:
            raise ValueError(
                "request_timeout_secs and stream_connect_timeout_secs must be positive"
            )
        if self.order_lookup_secs <= 0:
            raise ValueError("order_lookup_secs must be positive")
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if not 0 < self.retry_initial_delay_secs <= self.retry_max_delay_secs:
            raise ValueError("need 0 < retry_initial_delay_secs <= retry_max_delay_secs")
        if not 0 < self.reconnect_initial_delay_secs <= self.reconnect_max_delay_secs:
            raise ValueError("need 0 < reconnect_initial_delay_secs <= reconnect_max_delay_secs")
        if self.http_workers < 1:
            raise ValueError("http_workers must be at least 1")
        if self.order_connections < 1:
            raise ValueError("order_connections must be at least 1")
        check_endpoints(self.base_url, self.stream_url, paper=self.paper,
                        allow_custom_host=self.allow_custom_host)

    @property
    def resolved_stream_url(self) -> str:
        return self.stream_url or stream_url_for(self.base_url)
