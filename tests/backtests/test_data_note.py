"""The report says whether the traded universe is synthetic, imported, or a mix of both."""

from backtests.walkforward import _data_note
from catalog.jobs import generate_catalog
from catalog.synthetic import generate_market


def test_note_follows_the_universe_not_the_catalog(tmp_path):
    catalog = generate_catalog(tmp_path / "cat", n_symbols=2, n_days=5, seed=3, signal_strength=0.2)
    real_like = next(iter(generate_market(1, 5, seed=4).bars.values()))
    catalog.write_bars("REAL", real_like)

    assert _data_note(catalog, ["S000", "S001"]).split(": ", 1)[1].startswith("SYNTHETIC market")
    assert "MIXED (1 of 2 symbols synthetic)" in _data_note(catalog, ["S000", "REAL"])
    assert "imported or ingested" in _data_note(catalog, ["REAL"])
    assert "strength 0.2" in _data_note(catalog, ["S000"])
