"""AlpacaInstrumentProvider over the sandbox's /v2/assets: the catalog's own instruments,
with the sectors the node passes in."""

import asyncio
from collections.abc import Iterator

import pytest
from nautilus_trader.config import InstrumentProviderConfig
from nautilus_trader.model.identifiers import InstrumentId

from adapters.alpaca.common import AlpacaCredentials
from adapters.alpaca.config import AlpacaExecClientConfig
from adapters.alpaca.http import AlpacaHttpClient
from adapters.alpaca.providers import AlpacaInstrumentProvider, AssetNotTradableError
from adapters.alpaca.sandbox import AlpacaSandbox
from catalog.instruments import UNKNOWN_SECTOR, equity, instrument_id, sector_of

SECTORS = {"S000": "Manufacturing", "S001": "Finance"}


@pytest.fixture
def provider(alpaca_sandbox: AlpacaSandbox) -> Iterator[AlpacaInstrumentProvider]:
    client = AlpacaHttpClient(
        AlpacaCredentials("test-key", "test-secret"),
        AlpacaExecClientConfig(base_url=alpaca_sandbox.base_url),
    )
    yield AlpacaInstrumentProvider(client, InstrumentProviderConfig(), SECTORS)
    client.close()


def test_load_all_builds_the_catalogs_equities_with_sectors(provider: AlpacaInstrumentProvider):
    asyncio.run(provider.load_all_async())
    instruments = {i.id.symbol.value: i for i in provider.list_all()}
    assert sorted(instruments) == ["S000", "S001", "S002"]
    assert instruments["S000"] == equity("S000", "Manufacturing")
    assert instruments["S000"].price_precision == 4 and instruments["S000"].lot_size == 1
    assert {s: sector_of(i) for s, i in instruments.items()} == {
        "S000": "Manufacturing",
        "S001": "Finance",
        "S002": UNKNOWN_SECTOR,
    }


def test_load_named_symbols_only(provider: AlpacaInstrumentProvider):
    asyncio.run(provider.load_all_async({"symbols": ["S001"]}))
    assert [i.id for i in provider.list_all()] == [instrument_id("S001")]
    asyncio.run(provider.load_ids_async([instrument_id("S002")]))
    assert {i.id.symbol.value for i in provider.list_all()} == {"S001", "S002"}


def test_initialize_loads_the_configured_ids(alpaca_sandbox: AlpacaSandbox):
    client = AlpacaHttpClient(
        AlpacaCredentials("test-key", "test-secret"),
        AlpacaExecClientConfig(base_url=alpaca_sandbox.base_url),
    )
    config = InstrumentProviderConfig(load_ids=frozenset({"S002.ALPACA"}))
    provider = AlpacaInstrumentProvider(client, config, SECTORS)
    asyncio.run(provider.initialize())
    client.close()
    assert [i.id for i in provider.list_all()] == [instrument_id("S002")]


def test_unknown_symbols_and_other_venues_are_refused(provider: AlpacaInstrumentProvider):
    with pytest.raises(AssetNotTradableError, match="NOPE"):
        asyncio.run(provider.load_async(instrument_id("NOPE")))
    with pytest.raises(ValueError, match="venue ALPACA"):
        asyncio.run(provider.load_ids_async([InstrumentId.from_str("S000.XNAS")]))
