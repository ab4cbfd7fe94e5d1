"""One writer of a catalog at a time: an ingest the operator starts from the panel and the
scheduler's pre-open ingest run in two threads of one process, `sextant catalog ingest` in
another; each merges into the stored files and rewrites the manifest, so two at once could
drop what the other wrote."""

import threading
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from catalog.errors import CatalogBusyError, MissingCatalogError
from catalog.ingest import ingest_bars
from catalog.jobs import generate_catalog, import_csv
from catalog.store import WRITER_LOCK, MarketCatalog, open_catalog, writer_lock
from tests.catalog.test_csv_import import write_csv
from tests.catalog.test_ingest import (  # noqa: F401
    N_DAYS,
    CatalogSource,
    _assert_same_bars,
    sessions,
    source_catalog,
)


class HeldSource(CatalogSource):
    """A source whose fetches wait until ``release`` is set: an ingest caught mid-way."""

    def __init__(self, catalog: MarketCatalog) -> None:
        super().__init__(catalog)
        self.fetching = threading.Event()
        self.release = threading.Event()

    def fetch(self, symbol: str, first_session: date, last_session: date, timeframe: str) -> pd.DataFrame:
        self.fetching.set()
        assert self.release.wait(30), "the test never released the first ingest"
        return super().fetch(symbol, first_session, last_session, timeframe)


def test_a_second_ingest_is_refused_naming_the_first_or_waits_for_it_and_fetches_nothing_twice(
    tmp_path: Path, source_catalog: MarketCatalog, sessions: list[date]  # noqa: F811
) -> None:
    symbols = source_catalog.symbols()
    first_source = HeldSource(source_catalog)
    first = threading.Thread(target=ingest_bars, args=(tmp_path, symbols, sessions[0], sessions[-1], "1m",
                                                       first_source), kwargs={"max_workers": 1})
    first.start()
    try:
        assert first_source.fetching.wait(30)
        refused = CatalogSource(source_catalog)
        with pytest.raises(CatalogBusyError, match=r"an ingest of 3 symbols' 1m bars into catalog .*\(pid \d+, since"):
            ingest_bars(tmp_path, symbols, sessions[0], sessions[-1], "1m", refused)
        assert refused.calls == []

        waiting = CatalogSource(source_catalog)
        outcome: list = []
        second = threading.Thread(target=lambda: outcome.append(
            ingest_bars(tmp_path, symbols, sessions[0], sessions[-1], "1m", waiting, wait_secs=30)))
        second.start()
        first_source.release.set()
        first.join(30)
        second.join(30)
    finally:
        first_source.release.set()
        first.join(30)
    report = outcome[0]
    assert waiting.calls == [] and set(report.sessions_skipped.values()) == {N_DAYS}  # the first one's, all kept
    _assert_same_bars(source_catalog, tmp_path)


def test_a_csv_import_is_refused_naming_the_ingest_in_its_way(tmp_path: Path) -> None:
    csv = write_csv(tmp_path, ["2023-07-10 13:30:00,17.90,17.91,17.90,17.91,3057"])
    catalog = tmp_path / "catalog"
    with writer_lock(catalog, "an ingest of 2 symbols' 1m bars"):
        with pytest.raises(CatalogBusyError, match="an ingest of 2 symbols' 1m bars into catalog"):
            import_csv(csv, "DBB", catalog)
        assert MarketCatalog(catalog).symbols() == []
    assert import_csv(csv, "DBB", catalog) == 1  # released: the import goes through


def test_the_lock_a_failed_first_ingest_leaves_is_still_an_empty_catalog(tmp_path: Path) -> None:
    with writer_lock(tmp_path, "an ingest"):
        pass
    assert [p.name for p in tmp_path.iterdir()] == [WRITER_LOCK]
    with pytest.raises(MissingCatalogError, match="empty directory"):
        open_catalog(tmp_path)
    assert generate_catalog(tmp_path, n_symbols=1, n_days=2, seed=1).symbols() == ["S000"]
