"""Catalog coverage per symbol (live.operations.coverage): the NYSE sessions held, and the
missing ones listed, including those after the last held session up to ``through``."""

from datetime import date
from pathlib import Path

import pytest

from catalog.errors import MissingCatalogError
from catalog.store import MarketCatalog
from live.operations.coverage import catalog_coverage


def test_a_session_dropped_from_one_symbol_is_listed_missing_and_a_complete_symbol_has_none(market,
                                                                                            tmp_path: Path):
    source, _ = market
    dest = MarketCatalog(tmp_path / "catalog")
    full = MarketCatalog(source).read_bars("S000")
    dest.write_bars("S001", full, sector="TECH")
    dropped = full[full.index.tz_convert("America/New_York").date != date(2024, 12, 24)]  # the half day
    dest.write_bars("S000", dropped, sector="TECH")
    by_symbol = {c.symbol: c for c in catalog_coverage(dest.path)}
    s0, s1 = by_symbol["S000"], by_symbol["S001"]
    assert (s1.first_session, s1.last_session) == (date(2024, 12, 20), date(2024, 12, 31))
    assert (s1.sessions_expected, s1.sessions_held, s1.missing) == (7, 7, ())
    assert (s0.sessions_expected, s0.sessions_held, s0.missing) == (7, 6, (date(2024, 12, 24),))
    assert s0.bars == len(dropped) and s0.payload()["missing"] == ["2024-12-24"]


def test_the_sessions_after_the_last_held_one_up_to_through_are_missing(market):
    source, _ = market
    behind = {c.symbol: c for c in catalog_coverage(source, through=date(2025, 1, 3))}["S000"]
    # 2025-01-01 is a holiday: 01-02 and 01-03 are owed
    assert behind.missing == (date(2025, 1, 2), date(2025, 1, 3)) and behind.sessions_expected == 9


def test_a_missing_catalog_is_named(tmp_path: Path):
    with pytest.raises(MissingCatalogError, match="does not exist"):
        catalog_coverage(tmp_path / "nowhere")
