"""The TradingNode factory for the Alpaca execution client.

The key pair is read from the environment here (``common.credentials_from_env``), never from
the config, so the config a node prints holds no secret. The REST client and the instrument
provider are cached like NautilusTrader's own adapters cache theirs: building the client
twice for the same account and endpoint shares one worker pool and one set of instruments.
"""

import asyncio
from functools import lru_cache

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.config import InstrumentProviderConfig
from nautilus_trader.live.factories import LiveExecClientFactory

from adapters.alpaca.common import (
    AlpacaCredentials,
    check_endpoints,
    check_key,
    credentials_from_env,
)
from adapters.alpaca.config import AlpacaExecClientConfig
from adapters.alpaca.execution import AlpacaExecutionClient
from adapters.alpaca.http import AlpacaHttpClient
from adapters.alpaca.providers import AlpacaInstrumentProvider


@lru_cache(4)
def get_cached_alpaca_http_client(
    credentials: AlpacaCredentials,
    base_url: str,
    paper: bool,
    allow_custom_host: bool,
    request_timeout_secs: float,
    max_retries: int,
    retry_initial_delay_secs: float,
    retry_max_delay_secs: float,
    http_workers: int,
    order_connections: int,
) -> AlpacaHttpClient:
    """One REST client per account, endpoint and fault policy."""
    settings = AlpacaExecClientConfig(
        base_url=base_url,
        paper=paper,
        allow_custom_host=allow_custom_host,
        request_timeout_secs=request_timeout_secs,
        max_retries=max_retries,
        retry_initial_delay_secs=retry_initial_delay_secs,
        retry_max_delay_secs=retry_max_delay_secs,
        http_workers=http_workers,
        order_connections=order_connections,
    )
    return AlpacaHttpClient(credentials, settings)


@lru_cache(4)
def get_cached_alpaca_instrument_provider(
    client: AlpacaHttpClient,
    config: InstrumentProviderConfig,
    sectors: frozenset[tuple[str, str]],
) -> AlpacaInstrumentProvider:
    return AlpacaInstrumentProvider(client, config, dict(sectors))


class AlpacaLiveExecClientFactory(LiveExecClientFactory):
    """Builds ``AlpacaExecutionClient`` for ``node.add_exec_client_factory("ALPACA", ...)``."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: AlpacaExecClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> AlpacaExecutionClient:
        credentials = credentials_from_env()
        # The last gate before a request: the key must belong to the account the config means.
        kind = check_endpoints(config.base_url, config.stream_url, paper=config.paper,
                               allow_custom_host=config.allow_custom_host)
        check_key(credentials.key_id, paper=config.paper, kind=kind)
        http_client = get_cached_alpaca_http_client(
            credentials,
            config.base_url,
            config.paper,
            config.allow_custom_host,
            config.request_timeout_secs,
            config.max_retries,
            config.retry_initial_delay_secs,
            config.retry_max_delay_secs,
            config.http_workers,
            config.order_connections,
        )
        provider = get_cached_alpaca_instrument_provider(
            http_client,
            config.instrument_provider,
            frozenset((config.instrument_sectors or {}).items()),
        )
        return AlpacaExecutionClient(
            loop=loop,
            http_client=http_client,
            credentials=credentials,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=provider,
            config=config,
            name=name,
        )
