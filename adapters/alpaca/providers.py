"""Equities from Alpaca's asset list, on the project's single venue.

Alpaca assets carry no sector, while the risk caps group positions by sector: the sectors
come from a mapping the node passes in (the catalog's, built from Polygon's SIC codes), and
a symbol missing from it lands in the UNKNOWN bucket. Instruments are built by
``catalog.instruments.equity`` so live instruments are the backtest's, field for field.
"""

from collections.abc import Mapping

from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.config import InstrumentProviderConfig
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import Equity

from adapters.alpaca.http import AlpacaHttpClient
from adapters.alpaca.parsing.wire import AlpacaAsset, decode
from catalog.instruments import UNKNOWN_SECTOR, VENUE, equity


class AssetNotTradableError(ValueError):
    """A requested symbol Alpaca does not list, or lists as not tradable."""


class AlpacaInstrumentProvider(InstrumentProvider):
    """``load_all``: every active, tradable US equity (GET /v2/assets, one request), or only
    ``filters["symbols"]`` when given; ``load_ids``: those symbols (GET /v2/assets/{symbol}
    each)."""

    def __init__(
        self,
        client: AlpacaHttpClient,
        config: InstrumentProviderConfig | None = None,
        sectors: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(config or InstrumentProviderConfig())
        self._client = client
        self._sectors = dict(sectors or {})

    async def load_all_async(self, filters: dict | None = None) -> None:
        symbols = (filters or {}).get("symbols")
        if symbols:
            await self.load_ids_async([InstrumentId.from_str(f"{s}.{VENUE}") for s in symbols])
            return
        for raw in await self._client.list_assets():
            asset = decode(raw, AlpacaAsset)
            if _tradable_equity(asset):
                self.add(self._equity(asset.symbol))

    async def load_ids_async(
        self, instrument_ids: list[InstrumentId], filters: dict | None = None
    ) -> None:
        ids = [
            i if isinstance(i, InstrumentId) else InstrumentId.from_str(i) for i in instrument_ids
        ]
        foreign = [str(i) for i in ids if i.venue != VENUE]
        if foreign:
            raise ValueError(f"instruments must be on venue {VENUE}, got {', '.join(foreign)}")
        for iid in ids:
            await self.load_async(iid, filters)

    async def load_async(self, instrument_id: InstrumentId, filters: dict | None = None) -> None:
        symbol = instrument_id.symbol.value
        raw = await self._client.get_asset(symbol)
        if raw is None:
            raise AssetNotTradableError(f"Alpaca lists no asset {symbol}")
        asset = decode(raw, AlpacaAsset)
        if not _tradable_equity(asset):
            raise AssetNotTradableError(
                f"Alpaca asset {symbol} is not a tradable US equity "
                f"(class {asset.asset_class}, status {asset.status}, tradable {asset.tradable})"
            )
        self.add(self._equity(asset.symbol))

    def _equity(self, symbol: str) -> Equity:
        return equity(symbol, self._sectors.get(symbol, UNKNOWN_SECTOR))


def _tradable_equity(asset: AlpacaAsset) -> bool:
    return asset.tradable and asset.status == "active" and asset.asset_class == "us_equity"
