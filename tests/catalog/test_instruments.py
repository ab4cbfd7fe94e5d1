"""The one symbol rule: what US equities really use is accepted and normalised, the rest refused
by every entry point before anything is written."""

from pathlib import Path

import pandas as pd
import pytest

from catalog.errors import InvalidSymbolError
from catalog.ingest import ingest_bars
from catalog.instruments import parse_symbol, parse_symbols
from catalog.jobs import import_csv
from catalog.store import MarketCatalog

GOOD = {"AAPL": "AAPL", "brk.b": "BRK.B", " BF-B ": "BF-B", "inda": "INDA", "INDA ": "INDA", "S000": "S000",
        "X": "X", "pbr.a": "PBR.A"}
BAD = ["A,B", "*", "X$(id)", "BRK/B", "../../evil", "", "   ", "A" * 300, "BRK..B", ".B", "B.", "A B",
       "1ABC", "BRK.B.C", "ÄPPL", "AA\tPL"]


@pytest.mark.parametrize(("text", "symbol"), GOOD.items())
def test_real_us_equity_symbols_are_accepted_and_normalised(text, symbol):
    assert parse_symbol(text) == symbol


@pytest.mark.parametrize("text", BAD)
def test_anything_else_is_refused_with_a_message_naming_it(text):
    with pytest.raises(InvalidSymbolError) as err:
        parse_symbol(text)
    message = str(err.value)
    assert "ticker" in message
    assert len(message) < 300  # a 300-character symbol is not echoed whole
    if text.strip() and len(text) < 20:
        assert repr(text) in message


def test_symbol_lists_split_on_commas_and_drop_duplicates():
    assert parse_symbols("aapl, MSFT,brk.b,AAPL") == ["AAPL", "MSFT", "BRK.B"]
    with pytest.raises(InvalidSymbolError, match="empty symbol"):
        parse_symbols("AAPL,,MSFT")


def write_csv(path: Path) -> Path:
    path.write_text("timestamp,open,high,low,close,volume\n2024-01-02 14:30:00,10,10.1,9.9,10,100\n")
    return path


@pytest.mark.parametrize("symbol", ["A,B", "*", "X$(id)", "BRK/B", "../../evil", "", "A" * 300])
def test_import_csv_refuses_a_bad_symbol_before_writing(tmp_path, symbol):
    with pytest.raises(InvalidSymbolError):
        import_csv(write_csv(tmp_path / "bars.csv"), symbol, tmp_path / "cat")
    assert not (tmp_path / "cat").exists()
    assert not (tmp_path / "evil").exists()


def test_one_instrument_whatever_the_case_or_spaces(tmp_path):
    csv = write_csv(tmp_path / "bars.csv")
    for spelling in ("inda", "INDA ", "INDA"):
        import_csv(csv, spelling, tmp_path / "cat")
    catalog = MarketCatalog(tmp_path / "cat")
    assert catalog.symbols() == ["INDA"] and catalog.bar_count("INDA") == 1
    # The store's own writer applies the same rule (generate and ingest write through it).
    catalog.write_bars(" brk.b", catalog.read_bars("INDA"))
    assert catalog.symbols() == ["BRK.B", "INDA"]
    with pytest.raises(InvalidSymbolError):
        catalog.write_bars("X$(id)", catalog.read_bars("INDA"))


class NeverCalled:
    def fetch(self, symbol, first, last, timeframe) -> pd.DataFrame:
        raise AssertionError("nothing may be fetched for a list holding a bad symbol")


def test_ingest_refuses_a_bad_symbol_before_fetching_or_writing(tmp_path):
    with pytest.raises(InvalidSymbolError, match="'BRK/B'"):
        ingest_bars(tmp_path / "cat", ["AAPL", "BRK/B"], "2024-01-02", "2024-01-03", "1m", NeverCalled())
    assert not (tmp_path / "cat").exists()
