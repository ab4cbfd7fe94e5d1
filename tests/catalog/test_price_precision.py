"""Prices keep the decimals the data carries (Polygon sends up to 4); order prices follow the
Reg NMS Rule 612 tick; a catalog created at cents keeps its stored precision."""

import re
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from adapters.polygon.config import PolygonHistoricalConfig
from adapters.polygon.http import PolygonHttpClient
from adapters.polygon.loader import PolygonBarSource
from adapters.polygon.sandbox import PolygonSandbox
from catalog.csv_import import read_minute_csv
from catalog.errors import InvalidBarsError
from catalog.ingest import ingest_bars
from catalog.instruments import bar_type, equity, is_on_tick, round_to_tick, tick_size
from catalog.jobs import generate_catalog
from catalog.store import MarketCatalog

SESSION = "2024-12-30"


def minute_bars(rows: list[tuple[float, float, float, float]], start: str = f"{SESSION} 14:31") -> pd.DataFrame:
    index = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=len(rows), freq="1min", name="ts")
    frame = pd.DataFrame(rows, index=index, columns=["open", "high", "low", "close"])
    frame["volume"] = 100.0
    return frame


# -- the tick rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "tick"),
    [("1.00", "0.01"), ("185.4321", "0.01"), ("0.9999", "0.0001"), ("0.004", "0.0001")],
)
def test_tick_size_is_rule_612(price: str, tick: str):
    assert tick_size(Decimal(price)) == Decimal(tick)


def test_on_tick_and_rounding_to_a_tick():
    assert is_on_tick(Decimal("185.43")) and is_on_tick(Decimal("0.5123"))
    assert not is_on_tick(Decimal("185.4321")) and not is_on_tick(Decimal("0.51235"))
    assert round_to_tick(Decimal("181.723458"), up=False) == Decimal("181.72")
    assert round_to_tick(Decimal("192.849384"), up=True) == Decimal("192.85")
    assert round_to_tick(Decimal("0.502054"), up=False) == Decimal("0.5020")
    assert round_to_tick(Decimal("0.99995"), up=True) == Decimal("1.0000")  # a whole cent too
    # An instrument stored at cents never gets a price finer than its increment.
    assert round_to_tick(Decimal("0.502054"), up=True, increment=Decimal("0.01")) == Decimal("0.51")


# -- storing what the data carries ------------------------------------------------------------------


def test_sub_penny_bars_round_trip_at_four_decimals(tmp_path: Path):
    frame = minute_bars([(0.004, 0.0047, 0.0031, 0.0042), (185.4321, 185.4999, 185.4001, 185.4567)])
    catalog = MarketCatalog(tmp_path / "cat")
    catalog.write_bars("PENY", frame)

    pd.testing.assert_frame_equal(catalog.read_bars("PENY"), frame, check_freq=False, check_exact=True)
    (instrument,) = catalog.instruments()
    assert (instrument.price_precision, str(instrument.price_increment)) == (4, "0.0001")
    bars = catalog.nautilus.bars([str(bar_type("PENY"))])  # what the engine replays
    assert [str(b.low) for b in bars] == ["0.0031", "185.4001"]
    assert [str(b.close) for b in bars] == ["0.0042", "185.4567"]


def test_a_catalog_stored_at_cents_keeps_its_precision(tmp_path: Path):
    catalog = MarketCatalog(tmp_path / "old")
    catalog.nautilus.write_data([equity("OLD", "Tech", price_precision=2)])  # as catalogs were written
    catalog.write_bars("OLD", minute_bars([(10.0, 10.02, 9.99, 10.01)]))
    catalog.write_bars("OLD", minute_bars([(10.01, 10.0349, 10.0, 10.03)], start=f"{SESSION} 14:32"))

    (instrument,) = catalog.instruments()
    assert instrument.price_precision == 2 and catalog.sectors() == {"OLD": "Tech"}
    assert {pq.read_schema(f).metadata[b"price_precision"] for f in catalog._bar_files("OLD")} == {b"2"}
    assert catalog.read_bars("OLD")["high"].tolist() == [10.02, 10.03]
    assert [str(b.high) for b in catalog.nautilus.bars([str(bar_type("OLD"))])] == ["10.02", "10.03"]


def test_a_price_that_would_be_stored_as_zero_is_refused(tmp_path: Path):
    with pytest.raises(InvalidBarsError, match=r"bars for TINY: price 4e-05 at 2024-12-30 14:31:00\+00:00 is not positive"):
        MarketCatalog(tmp_path / "cat").write_bars("TINY", minute_bars([(0.00004, 0.00004, 0.00004, 0.00004)]))


def test_csv_import_keeps_sub_penny_prices(tmp_path: Path):
    path = tmp_path / "bars.csv"
    path.write_text("timestamp,open,high,low,close,volume\n2024-12-30 14:30:00,17.921,17.93,17.9,17.9212,602\n")
    MarketCatalog(tmp_path / "cat").write_bars("ETF", read_minute_csv(path))
    assert MarketCatalog(tmp_path / "cat").read_bars("ETF").iloc[0].tolist() == [17.921, 17.93, 17.9, 17.9212, 602.0]


def test_polygon_ingest_through_the_sdk_keeps_four_decimals(tmp_path: Path):
    """A source with sub-penny aggregates (as Polygon sends them) served by the Polygon sandbox
    and ingested through the massive SDK arrives unrounded."""
    generated = generate_catalog(tmp_path / "gen", n_symbols=1, n_days=1, seed=5)
    frame = generated.read_bars("S000")
    frame[["open", "high", "low", "close"]] += 0.0021  # every price now has 4 decimals
    MarketCatalog(tmp_path / "source").write_bars("S000", frame)
    session = frame.index[0].tz_convert("America/New_York").date()

    with PolygonSandbox(tmp_path / "source", api_key="test-key") as sandbox:
        client = PolygonHttpClient("test-key", PolygonHistoricalConfig(base_url=sandbox.base_url))
        report = ingest_bars(tmp_path / "dest", ["S000"], session, session, "1m", PolygonBarSource(client))
    assert report.ok, report
    ingested = MarketCatalog(tmp_path / "dest").read_bars("S000")
    assert len(ingested) == len(frame) == 390
    pd.testing.assert_frame_equal(ingested, frame.round(4), check_freq=False, check_exact=True)


@pytest.mark.parametrize(("column", "value"), [("open", 1e300), ("volume", 1e30)])
def test_a_value_beyond_the_fixed_point_range_is_refused_by_its_bar(tmp_path: Path, column: str, value: float):
    frame = minute_bars([(10.0, 10.0, 10.0, 10.0)])
    frame[column] = value
    if column == "open":
        frame["high"] = value
    with pytest.raises(InvalidBarsError, match=rf"bars for BIG: {column} {re.escape(f'{value:g}')} at 2024-12-30 14:31:00\+00:00 "
                                               r"is beyond what the catalog stores"):
        MarketCatalog(tmp_path / "cat").write_bars("BIG", frame)
    assert not (tmp_path / "cat").exists() or not MarketCatalog(tmp_path / "cat").symbols()
