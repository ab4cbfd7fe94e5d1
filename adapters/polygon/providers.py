"""Equities from Polygon reference data, on the project's single venue.

Polygon lists 10k+ tickers; a strategy trades a named universe, so "load all" means the
symbols the config names (``load_ids``, or ``filters={"symbols": [...]}``), never the whole
listing. Ticker details are fetched through the synchronous SDK on worker threads, never on
the event loop, and share the HTTP client's rate budget.
"""

import asyncio

from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.config import InstrumentProviderConfig
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import Equity

from adapters.polygon.http import PolygonHttpClient
from adapters.polygon.parsing.reference import equity_from_details
from catalog.instruments import VENUE, instrument_id, sector_of


class PolygonInstrumentProvider(InstrumentProvider):
    def __init__(self, client: PolygonHttpClient, config: InstrumentProviderConfig | None = None) -> None:
        super().__init__(config or InstrumentProviderConfig())
        self._client = client

    async def load_all_async(self, filters: dict | None = None) -> None:
        """Load the symbols in ``filters["symbols"]``, else the config's ``load_ids``."""
        symbols = (filters or {}).get("symbols")
        if symbols:
            ids = [instrument_id(s) for s in symbols]
        else:
            ids = [_as_id(i) for i in (self._load_ids_on_start or ())]
        if not ids:
            raise ValueError(
                "PolygonInstrumentProvider loads named symbols only: set load_ids or "
                "filters={'symbols': [...]} (Polygon's full ticker list is 10k+ names)"
            )
        await self.load_ids_async(ids, filters)

    async def load_ids_async(self, instrument_ids: list[InstrumentId], filters: dict | None = None) -> None:
        ids = [_as_id(i) for i in instrument_ids]
        foreign = [str(i) for i in ids if i.venue != VENUE]
        if foreign:
            raise ValueError(f"instruments must be on venue {VENUE}, got {', '.join(foreign)}")
        instruments = await asyncio.gather(*(asyncio.to_thread(self._fetch, i) for i in ids))
        for instrument in instruments:
            self.add(instrument)

    async def load_async(self, instrument_id: InstrumentId, filters: dict | None = None) -> None:
        await self.load_ids_async([instrument_id], filters)

    def sectors(self) -> dict[str, str]:
        """Sector (SIC division) by symbol of the loaded instruments, for catalog ingestion."""
        return {i.id.symbol.value: sector_of(i) for i in self.list_all() if isinstance(i, Equity)}

    def _fetch(self, iid: InstrumentId) -> Equity:
        symbol = iid.symbol.value
        instrument = equity_from_details(self._client.ticker_details(symbol))
        if instrument.id != iid:
            raise ValueError(f"asked Polygon for {symbol}, got details of {instrument.id.symbol}")
        return instrument


def _as_id(value: InstrumentId | str) -> InstrumentId:
    return value if isinstance(value, InstrumentId) else InstrumentId.from_str(value)
