"""Shared Polygon fixtures: a small synthetic catalog and a running sandbox over it.

Other test modules rely on these names and semantics; keep them stable."""

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from adapters.polygon.sandbox import PolygonSandbox, SimClock
from catalog.jobs import generate_catalog

SMALL_CATALOG_SYMBOLS = 3
SMALL_CATALOG_DAYS = 3
SMALL_CATALOG_SEED = 7


@pytest.fixture(scope="session")
def small_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 symbols x 3 sessions of synthetic minute bars ending 2024-12-31 (S000..S002)."""
    path = tmp_path_factory.mktemp("polygon-small-catalog")
    generate_catalog(
        path, n_symbols=SMALL_CATALOG_SYMBOLS, n_days=SMALL_CATALOG_DAYS, seed=SMALL_CATALOG_SEED
    )
    return path


@pytest.fixture
def sandbox(small_catalog: Path) -> Iterator[PolygonSandbox]:
    """A running sandbox over ``small_catalog``: key "test-key", no clock (all history
    served, no live publishing), no faults."""
    with PolygonSandbox(small_catalog, api_key="test-key") as running:
        yield running


LIVE_START = pd.Timestamp("2024-12-30 14:30", tz="UTC")  # 09:30 ET, the small catalog's 2nd session


@pytest.fixture
def live_sandbox(small_catalog: Path) -> Iterator[PolygonSandbox]:
    """A running sandbox over ``small_catalog`` with a manual clock at 2024-12-30 14:30 UTC
    (the open of its second session): REST serves 2024-12-27 and nothing later, and
    ``advance_to`` publishes the 2024-12-30 bars to WebSocket subscribers."""
    with PolygonSandbox(
        small_catalog, api_key="test-key", clock=SimClock.manual(LIVE_START)
    ) as running:
        yield running
