"""Equities from Polygon ticker details: SIC division as sector, named symbols only."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from nautilus_trader.config import InstrumentProviderConfig
from nautilus_trader.model.identifiers import InstrumentId

from adapters.polygon.config import PolygonHistoricalConfig
from adapters.polygon.errors import PolygonRequestError
from adapters.polygon.http import PolygonHttpClient
from adapters.polygon.parsing.reference import TickerReferenceError, equity_from_details
from adapters.polygon.providers import PolygonInstrumentProvider
from adapters.polygon.sandbox import PolygonSandbox
from catalog.instruments import VENUE, instrument_id, sector_of
from catalog.store import MarketCatalog

SECTORS = {"BANK": "Finance", "MAKE": "Manufacturing", "ODD": "Widgets"}  # Widgets: no SIC division


@pytest.fixture(scope="module")
def sector_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sectors")
    bar = pd.DataFrame({"open": [10.0], "high": [10.5], "low": [9.5], "close": [10.2], "volume": [100.0]},
                       index=pd.DatetimeIndex([pd.Timestamp("2024-12-31 15:00", tz="UTC")], name="ts"))
    catalog = MarketCatalog(path)
    for symbol, sector in SECTORS.items():
        catalog.write_bars(symbol, bar, sector=sector)
    return path


@pytest.fixture
def client(sector_catalog: Path) -> Iterator[PolygonHttpClient]:
    with PolygonSandbox(sector_catalog, api_key="test-key") as sandbox:
        yield PolygonHttpClient("test-key", PolygonHistoricalConfig(base_url=sandbox.base_url))


# -- parsing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("details", "sector"),
    [
        ({"ticker": "AAPL", "name": "Apple Inc.", "sic_code": "3571", "market": "stocks"}, "Manufacturing"),
        ({"ticker": "JPM", "sic_code": "6021"}, "Finance"),
        ({"ticker": "SPY", "type": "ETF"}, "UNKNOWN"),  # funds carry no SIC code
        ({"ticker": "XYZ", "sic_code": "n/a"}, "UNKNOWN"),
        ({"ticker": "XYZ", "sic_code": "9999"}, "UNKNOWN"),  # division K: not a sector
    ],
)
def test_sector_is_the_sic_division(details: dict, sector: str) -> None:
    instrument = equity_from_details(details)
    assert instrument.id == instrument_id(details["ticker"]) and instrument.id.venue == VENUE
    assert sector_of(instrument) == sector


@pytest.mark.parametrize("details", [{"name": "no ticker"}, {"ticker": 42}, {"ticker": "A", "sic_code": 3571}])
def test_malformed_ticker_details_are_rejected(details: dict) -> None:
    with pytest.raises(TickerReferenceError):
        equity_from_details(details)


# -- provider over the sandbox ----------------------------------------------------------------------


def test_load_ids_builds_equities_with_sectors(client: PolygonHttpClient) -> None:
    provider = PolygonInstrumentProvider(client)
    asyncio.run(provider.load_ids_async([instrument_id(s) for s in SECTORS]))
    assert provider.count == 3
    assert provider.sectors() == {"BANK": "Finance", "MAKE": "Manufacturing", "ODD": "UNKNOWN"}
    assert provider.find(instrument_id("BANK")).price_increment.as_double() == 0.0001  # Polygon's 4 decimals


def test_initialize_loads_the_configured_ids(client: PolygonHttpClient) -> None:
    config = InstrumentProviderConfig(load_ids=frozenset({InstrumentId.from_str(f"MAKE.{VENUE}")}))
    provider = PolygonInstrumentProvider(client, config)
    asyncio.run(provider.initialize())
    assert [i.id.symbol.value for i in provider.list_all()] == ["MAKE"]


def test_load_all_means_the_named_symbols(client: PolygonHttpClient) -> None:
    provider = PolygonInstrumentProvider(client, InstrumentProviderConfig(load_all=True, filters={"symbols": ["BANK"]}))
    asyncio.run(provider.initialize())
    assert list(provider.sectors()) == ["BANK"]
    with pytest.raises(ValueError, match="named symbols only"):
        asyncio.run(PolygonInstrumentProvider(client).load_all_async())


def test_load_async_single_and_bad_requests(client: PolygonHttpClient) -> None:
    provider = PolygonInstrumentProvider(client)
    asyncio.run(provider.load_async(instrument_id("ODD")))
    assert provider.count == 1
    with pytest.raises(ValueError, match="must be on venue ALPACA"):
        asyncio.run(provider.load_async(InstrumentId.from_str("BANK.XNAS")))
    with pytest.raises(PolygonRequestError, match="NOPE ticker details: rejected"):
        asyncio.run(provider.load_async(instrument_id("NOPE")))
