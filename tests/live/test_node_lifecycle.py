"""The live node's start and stop, with the real EnsembleStrategy, journal collector and Alpaca
execution client in a real TradingNode against the Alpaca sandbox (driven through alpaca-py
for what "another tool" does at the broker).

The node here has no market data client: starting and stopping, reconciliation, cancels and
flattening need none, and the strategy never enters without signals.
"""

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
import yaml
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass
from alpaca.trading.enums import OrderSide as AlpacaSide
from alpaca.trading.enums import TimeInForce as AlpacaTif
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    StopLossRequest,
    TakeProfitRequest,
)
from nautilus_trader.config import LiveExecEngineConfig, LoggingConfig, TradingNodeConfig

from adapters.alpaca.common import ALPACA
from adapters.alpaca.config import AlpacaExecClientConfig
from adapters.alpaca.factories import AlpacaLiveExecClientFactory
from adapters.alpaca.sandbox import AlpacaSandbox, CatalogMarket
from adapters.polygon.sandbox import PolygonSandbox
from live.journal import JournalSettings, RunInfo, open_journal
from live.journal.collector import JournalCollector
from live.node import NodeStartError, NodeThread, SextantNode
from strategies.ensemble import EnsembleStrategy, EnsembleStrategyConfig
from tests.adapters.alpaca.conftest import (  # noqa: F401 - fixtures
    KEY_ID,
    SECRET_KEY,
    alpaca_catalog,
    alpaca_market,
    alpaca_sandbox,
    trading_client,
)
from tests.adapters.alpaca.test_execution import NOW, client_config, last_close
from tests.live.conftest import SYMBOLS

IDS = [f"S00{k}.ALPACA" for k in range(3)]
RUN = RunInfo(trading_day=NOW.date(), name="lifecycle", mode="paper")
PARQUET = JournalSettings(sinks=("parquet",))


def memory_collector() -> JournalCollector:
    return open_journal(JournalSettings(sinks=())).collector(RUN)
OPEN_STATUSES = {"new", "accepted", "held", "partially_filled", "pending_new"}


@pytest.fixture(autouse=True)
def alpaca_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPACA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("ALPACA_API_SECRET_KEY", SECRET_KEY)


@pytest.fixture
def sandbox(alpaca_sandbox: AlpacaSandbox) -> AlpacaSandbox:  # noqa: F811
    alpaca_sandbox.advance_to(NOW)
    return alpaca_sandbox


def build(
    alpaca: AlpacaExecClientConfig,
    journal: JournalCollector,
    *,
    loop: asyncio.AbstractEventLoop,
    timeout_connection: float = 20.0,
) -> SextantNode:
    """The live node's strategy and journal, as ``live.node.build_node`` adds them, with only
    the Alpaca execution client."""
    node = SextantNode(
        config=TradingNodeConfig(
            logging=LoggingConfig(log_level="ERROR"),
            exec_clients={ALPACA: alpaca},
            exec_engine=LiveExecEngineConfig(reconciliation=True),
            timeout_connection=timeout_connection,
            timeout_reconciliation=10.0,
            timeout_disconnection=5.0,
            timeout_post_stop=0.0,
        ),
        loop=loop,
    )
    node.trader.add_actor(journal)
    node.trader.add_strategy(EnsembleStrategy(EnsembleStrategyConfig(
        instrument_ids=IDS, external_order_claims=IDS, weights={"m": 1.0},
    )))
    node.add_exec_client_factory(ALPACA, AlpacaLiveExecClientFactory)
    node.build()
    return node


def open_orders(sandbox: AlpacaSandbox) -> list[dict]:
    return [o for o in sandbox.orders() if o["status"] in OPEN_STATUSES]


def place_elsewhere(client: TradingClient, market: CatalogMarket) -> None:
    """What Alpaca's dashboard or another tool leaves at the broker: a resting limit order
    and a filled bracket entry whose two legs now work, all with ids Alpaca made up."""
    far = float(last_close(market, "S001", NOW) - 50)
    client.submit_order(LimitOrderRequest(symbol="S001", qty=3, side=AlpacaSide.BUY,
                                          time_in_force=AlpacaTif.GTC, limit_price=far))
    close = float(last_close(market, "S002", NOW))
    client.submit_order(MarketOrderRequest(
        symbol="S002", qty=4, side=AlpacaSide.BUY, time_in_force=AlpacaTif.GTC,
        order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=round(close + 20, 2)),
        stop_loss=StopLossRequest(stop_price=round(close - 20, 2)),
    ))


def test_stop_cancels_and_flattens_orders_placed_outside_sextant(
    sandbox: AlpacaSandbox, trading_client: TradingClient,  # noqa: F811
    alpaca_market: CatalogMarket, tmp_path: Path,  # noqa: F811
):
    journal_dir = tmp_path / "journal"
    place_elsewhere(trading_client, alpaca_market)
    external = sandbox.orders()
    assert len(open_orders(sandbox)) == 3 and sandbox.positions()["S002"][0] == 4
    for order in external:  # the sandbox names them as Alpaca does: UUIDs, legs included
        uuid.UUID(order["client_order_id"])
    with (open_journal(PARQUET, out_dir=journal_dir) as journal,
          NodeThread(build, client_config(sandbox), journal.collector(RUN)) as node):
        claimed = node.call(lambda: [o.client_order_id.value for o in node.node.cache.orders_open()])
        assert sorted(claimed) == sorted(o["client_order_id"] for o in open_orders(sandbox))
    # the stop got through: nothing works at the broker, nothing is held
    assert open_orders(sandbox) == []
    assert all(qty == 0 for qty, _ in sandbox.positions().values())
    orders = pd.read_parquet(journal_dir / "orders.parquet")
    recorded = set(orders["client_order_id"])
    assert {o["client_order_id"] for o in external} <= recorded  # the claimed orders
    assert len(recorded) > len(external)  # and the closing order the stop sent


def test_a_journal_that_cannot_be_written_fails_only_after_the_flatten(
    sandbox: AlpacaSandbox, trading_client: TradingClient,  # noqa: F811
    alpaca_market: CatalogMarket, tmp_path: Path,  # noqa: F811
):
    place_elsewhere(trading_client, alpaca_market)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    journal = open_journal(PARQUET, out_dir=blocked / "journal")
    with NodeThread(build, client_config(sandbox), journal.collector(RUN)):
        pass
    assert open_orders(sandbox) == []
    assert all(qty == 0 for qty, _ in sandbox.positions().values())
    with pytest.raises(NotADirectoryError):  # the files are written once the node has stopped
        journal.close()


def test_a_rejected_key_fails_the_start_at_once(
    sandbox: AlpacaSandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """Not after NautilusTrader's connect timeout (an hour here), and without trading."""
    monkeypatch.setenv("ALPACA_API_SECRET_KEY", "wrong-secret")
    journal = memory_collector()
    thread = NodeThread(build, client_config(sandbox), journal, timeout_connection=3600.0)
    with pytest.raises(NodeStartError, match=r"could not connect: ALPACA: .*401"), thread:
        pass
    assert sandbox.order_requests == []


def test_an_unreachable_broker_fails_the_start(sandbox: AlpacaSandbox, tmp_path: Path):
    journal = memory_collector()
    port = sandbox.port
    sandbox.stop()
    config = client_config(sandbox, base_url=f"http://127.0.0.1:{port}", max_retries=1)
    thread = NodeThread(build, config, journal, timeout_connection=3600.0)
    with pytest.raises(NodeStartError, match="could not connect: ALPACA"), thread:
        pass



# -- `sextant live`: a node that cannot connect exits at once with the reason ------------------


SEXTANT = Path(sys.executable).with_name("sextant")


SANDBOX_KEYS = {"POLYGON_API_KEY": "pg-key", "ALPACA_API_KEY_ID": "PKTEST", "ALPACA_API_SECRET_KEY": "secret"}


@contextmanager
def both_sandboxes(catalog: Path) -> Iterator[tuple[PolygonSandbox, AlpacaSandbox]]:
    """The Polygon feed and the Alpaca broker over one catalog, keyed with SANDBOX_KEYS."""
    with (
        PolygonSandbox(catalog, api_key=SANDBOX_KEYS["POLYGON_API_KEY"]) as polygon,
        AlpacaSandbox(CatalogMarket(catalog), key_id=SANDBOX_KEYS["ALPACA_API_KEY_ID"],
                      secret_key=SANDBOX_KEYS["ALPACA_API_SECRET_KEY"]) as broker,
    ):
        yield polygon, broker


def paper_yaml(tmp_path: Path, name: str, models: Path, polygon: PolygonSandbox, broker: AlpacaSandbox) -> Path:
    """A paper config for `sextant live` aimed at the two loopback sandboxes."""
    config = tmp_path / "paper.yaml"
    config.write_text(yaml.safe_dump({
        "name": name,
        "universe": SYMBOLS,
        "models": {"registry": str(models)},
        "strategy": {"weights": {"lightgbm": 1.0}},
        "polygon": {"base_url": polygon.base_url, "ws_feed": polygon.ws_feed, "secure": False},
        "alpaca": {"base_url": broker.base_url},
        "journal": {"data_dir": str(tmp_path / "pg"), "spool_dir": str(tmp_path / "spool")},
    }))
    return config


@pytest.mark.slow
@pytest.mark.parametrize(("rejected", "client"), [("ALPACA_API_SECRET_KEY", "ALPACA"),
                                                  ("POLYGON_API_KEY", "POLYGON")])
def test_sextant_live_with_a_rejected_key_exits_2_naming_the_client(
    market, tmp_path: Path, rejected: str, client: str
):
    catalog, models = market
    keys = SANDBOX_KEYS
    with both_sandboxes(catalog) as (polygon, broker):
        config = paper_yaml(tmp_path, "start-check", models, polygon, broker)
        env = {**os.environ, **keys, rejected: "wrong", "COLUMNS": "200",
               "PYTHONPATH": os.pathsep.join(sys.path)}
        done = subprocess.run([str(SEXTANT), "live", str(config), "--out", str(tmp_path / "runs")],
                              env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"the node did not start: could not connect: {client}" in done.stdout
    assert "Traceback" not in done.stderr
    assert broker.order_requests == []


@pytest.mark.slow
def test_sextant_live_ctrl_c_cancels_and_flattens_what_another_tool_left_and_exits(
    market, tmp_path: Path
):
    """The whole `sextant live` node (Polygon data, SignalActor, strategy, journal, Alpaca)
    restores orders placed from the dashboard, and one Ctrl-C cancels and flattens them and
    ends the process."""
    catalog, models = market
    keys = SANDBOX_KEYS
    with both_sandboxes(catalog) as (polygon, broker):
        broker.advance_to(pd.Timestamp("2024-12-30 15:00", tz="UTC"))
        dashboard = TradingClient(keys["ALPACA_API_KEY_ID"], keys["ALPACA_API_SECRET_KEY"],
                                  paper=True, url_override=broker.base_url)
        dashboard.submit_order(LimitOrderRequest(symbol="S001", qty=3, side=AlpacaSide.BUY,
                                                 time_in_force=AlpacaTif.GTC, limit_price=1.0))
        dashboard.submit_order(MarketOrderRequest(
            symbol="S000", qty=4, side=AlpacaSide.BUY, time_in_force=AlpacaTif.GTC,
            order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=10_000.0),
            stop_loss=StopLossRequest(stop_price=1.0),
        ))
        restored = {o["client_order_id"] for o in open_orders(broker)}
        assert len(restored) == 3 and broker.positions()["S000"][0] == 4
        config = paper_yaml(tmp_path, "stop-check", models, polygon, broker)
        env = {**os.environ, **keys, "COLUMNS": "200", "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join(sys.path)}
        node = subprocess.Popen([str(SEXTANT), "live", str(config), "--out", str(tmp_path / "runs")],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in node.stdout], daemon=True).start()
        try:
            while "PAPER trading S000, S001" not in lines.get(timeout=90):  # once the node trades
                pass
            node.send_signal(signal.SIGINT)
            node.wait(timeout=90)
        finally:
            node.kill()
        assert node.returncode == 0
        assert open_orders(broker) == []
        assert all(qty == 0 for qty, _ in broker.positions().values())
    [journal] = (tmp_path / "runs").iterdir()
    orders = pd.read_parquet(journal / "orders.parquet")
    assert restored <= set(orders["client_order_id"])  # claimed, cancelled, and in the record
    closing = orders[(orders["type"] == "MARKET") & (orders["side"] == "SELL")]
    assert list(closing["instrument_id"]) == ["S000.ALPACA"]  # the order the stop closed with
