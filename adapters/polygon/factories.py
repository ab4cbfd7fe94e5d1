"""The TradingNode factory for the Polygon live data client.

The API key is read from the environment here (``common.api_key_from_env``), never from the
config, so the config a node prints holds no secret. The REST client and the instrument
provider are cached like NautilusTrader's own adapters cache theirs: a node asking for the
same endpoint twice shares one connection pool and one set of loaded instruments.
"""

import asyncio
from functools import lru_cache

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.config import InstrumentProviderConfig
from nautilus_trader.live.factories import LiveDataClientFactory

from adapters.polygon.common import api_key_from_env
from adapters.polygon.config import PolygonDataClientConfig, PolygonHistoricalConfig
from adapters.polygon.data import PolygonDataClient
from adapters.polygon.http import PolygonHttpClient
from adapters.polygon.providers import PolygonInstrumentProvider


@lru_cache(1)
def get_cached_polygon_http_client(api_key: str, base_url: str) -> PolygonHttpClient:
    """One REST client per (key, endpoint); unthrottled (paid plans and the sandbox)."""
    return PolygonHttpClient(api_key, PolygonHistoricalConfig(base_url=base_url))


@lru_cache(1)
def get_cached_polygon_instrument_provider(
    client: PolygonHttpClient, config: InstrumentProviderConfig
) -> PolygonInstrumentProvider:
    return PolygonInstrumentProvider(client, config)


class PolygonLiveDataClientFactory(LiveDataClientFactory):
    """Builds ``PolygonDataClient`` for ``node.add_data_client_factory("POLYGON", ...)``."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: PolygonDataClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> PolygonDataClient:
        api_key = api_key_from_env()
        http_client = get_cached_polygon_http_client(api_key, config.base_url)
        provider = get_cached_polygon_instrument_provider(http_client, config.instrument_provider)
        return PolygonDataClient(
            loop=loop,
            http_client=http_client,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=provider,
            config=config,
            api_key=api_key,
            name=name,
        )
