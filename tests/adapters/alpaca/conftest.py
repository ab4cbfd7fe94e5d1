"""Shared Alpaca fixtures: a small synthetic catalog and a running sandbox broker over it.

Other test modules (the execution client's included) rely on these names and semantics; keep
them stable."""

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.stream import TradingStream

from adapters.alpaca.sandbox import AlpacaSandbox, CatalogMarket
from catalog.jobs import generate_catalog

SMALL_CATALOG_SYMBOLS = 3
SMALL_CATALOG_DAYS = 3
SMALL_CATALOG_SEED = 7
KEY_ID, SECRET_KEY = "test-key", "test-secret"
# sessions of the small catalog: 2024-12-27, 2024-12-30, 2024-12-31 (S000..S002)
FIRST_OPEN = pd.Timestamp("2024-12-27 14:30", tz="UTC")


@pytest.fixture(scope="session")
def alpaca_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 symbols x 3 sessions of synthetic minute bars ending 2024-12-31 (S000..S002), the
    same market as the Polygon tests' ``small_catalog``."""
    path = tmp_path_factory.mktemp("alpaca-small-catalog")
    generate_catalog(
        path, n_symbols=SMALL_CATALOG_SYMBOLS, n_days=SMALL_CATALOG_DAYS, seed=SMALL_CATALOG_SEED
    )
    return path


@pytest.fixture(scope="session")
def alpaca_market(alpaca_catalog: Path) -> CatalogMarket:
    return CatalogMarket(alpaca_catalog)


@pytest.fixture
def alpaca_sandbox(alpaca_market: CatalogMarket) -> Iterator[AlpacaSandbox]:
    """A running broker over the small catalog: keys test-key/test-secret, $100,000 cash, full
    fills, no faults, and its own manual clock at the first session open (2024-12-27 14:30 UTC,
    before that session's first bar). Move time with ``alpaca_sandbox.advance_to(ts)``."""
    with AlpacaSandbox(alpaca_market, key_id=KEY_ID, secret_key=SECRET_KEY) as running:
        yield running


@pytest.fixture
def trading_client(alpaca_sandbox: AlpacaSandbox) -> TradingClient:
    """alpaca-py's TradingClient pointed at ``alpaca_sandbox``."""
    return TradingClient(KEY_ID, SECRET_KEY, paper=True, url_override=alpaca_sandbox.base_url)


class StreamCollector:
    """A TradingStream run in its own thread, collecting raw trade_updates ``data`` dicts."""

    def __init__(self, url: str) -> None:
        self.stream = TradingStream(KEY_ID, SECRET_KEY, paper=True, raw_data=True, url_override=url)
        self.updates: list[dict] = []
        self._changed = threading.Condition()
        self.stream.subscribe_trade_updates(self._on_update)
        self._thread = threading.Thread(target=self.stream.run, name="trading-stream", daemon=True)

    async def _on_update(self, message: dict) -> None:
        with self._changed:
            self.updates.append(message["data"])
            self._changed.notify_all()

    def events(self, order_id: str | None = None) -> list[str]:
        with self._changed:
            return [
                u["event"] for u in self.updates if order_id is None or u["order"]["id"] == order_id
            ]

    def wait_for(self, predicate: Callable[[list[dict]], bool], timeout: float = 5.0) -> list[dict]:
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.updates), timeout):
                raise TimeoutError(f"stream updates after {timeout}s: {self.events()}")
            return list(self.updates)

    def wait_for_event(self, event: str, order_id: str, timeout: float = 5.0) -> dict:
        def seen(updates: list[dict]) -> bool:
            return any(u["event"] == event and u["order"]["id"] == order_id for u in updates)

        updates = self.wait_for(seen, timeout)
        return next(u for u in updates if u["event"] == event and u["order"]["id"] == order_id)

    def start(self, sandbox: AlpacaSandbox, timeout: float = 5.0) -> None:
        """Run the stream and wait until the sandbox counts it as a listener."""
        self._thread.start()
        sandbox.wait_for_listeners(1, timeout)

    def stop(self, sandbox: AlpacaSandbox) -> None:
        """Stop the stream; closing its connection spares the SDK's 5 s receive timeout."""
        self.stream.stop()
        sandbox.drop_stream(clean=True)
        self._thread.join(10)
        assert not self._thread.is_alive(), "the TradingStream thread did not stop"


@pytest.fixture
def trade_stream(alpaca_sandbox: AlpacaSandbox) -> Iterator[StreamCollector]:
    """alpaca-py's TradingStream (raw_data) listening to ``alpaca_sandbox``, collecting updates."""
    collector = StreamCollector(alpaca_sandbox.stream_url)
    collector.start(alpaca_sandbox)
    yield collector
    collector.stop(alpaca_sandbox)
