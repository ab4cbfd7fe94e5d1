"""The floor of the order-path bench: a node whose execution client does no I/O still runs
the real feed, engines and probe, and every order the probe sends is accepted by it."""

import time
from pathlib import Path

from nautilus_trader.model.enums import OrderStatus

from adapters.polygon.sandbox import PolygonSandbox, SimClock
from catalog.instruments import instrument_id
from catalog.jobs import generate_catalog
from catalog.sessions import session_minutes, sessions_ending
from live.bench import OrderProbe, ProbeConfig, floor_client, probe_node
from live.node import NodeThread
from live.rehearsal import SANDBOX_KEYS, sandbox_environment


def _until_accepted(accepted: list[int], n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(accepted) < n:
        assert time.monotonic() < deadline, f"{len(accepted)}/{n} orders accepted"
        time.sleep(0.01)


def test_every_probe_order_reaches_the_floor_client_and_is_accepted(tmp_path: Path):
    catalog = tmp_path / "catalog"
    symbols = generate_catalog(catalog, n_symbols=2, n_days=2, seed=3).symbols()
    ids = [str(instrument_id(s)) for s in symbols]
    day = sessions_ending("2024-12-31", 1)
    closes = session_minutes(day)[:3]
    probe = OrderProbe(ProbeConfig(instrument_ids=ids))
    clock = SimClock.manual(day["open"].iloc[0])
    with (PolygonSandbox(catalog, api_key=SANDBOX_KEYS["POLYGON_API_KEY"], clock=clock) as polygon,
          sandbox_environment(),
          NodeThread(probe_node, ids, polygon.base_url, polygon.ws_feed, None, 1, probe) as node):
        polygon.wait_for_subscribers(1, timeout=30.0)
        client = floor_client(node)
        for k, close in enumerate(closes, start=1):
            polygon.advance_to(close)
            _until_accepted(client.accepted_ns, k * len(ids))
        orders = node.call(lambda: [(o.status, o.venue_order_id) for o in node.node.cache.orders()])
        assert len(client.accepted_ns) == len(closes) * len(ids)
    assert len(orders) == len(closes) * len(ids)
    assert all(status == OrderStatus.ACCEPTED for status, _ in orders)
    assert len({venue_id for _, venue_id in orders}) == len(orders)  # one venue id each
