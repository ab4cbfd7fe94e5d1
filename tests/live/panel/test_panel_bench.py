"""`sextant bench --part panel` at a tiny size: it runs end to end and reports every figure
(the figures themselves are for the bench, not asserted)."""

import math

import pytest

from backtests.bench_market import lightgbm_market
from live.panel.bench import panel_bench


@pytest.mark.browser
@pytest.mark.slow
def test_the_panel_bench_reports_page_loads_and_live_updates():
    r = panel_bench(lightgbm_market, n_symbols=3, loads=2, watch_secs=2.0, until="09:50")
    assert set(r["pages"]) >= {"/", "/trading"}
    assert r["minutes"] == 20 and r["signals"] > 0
    assert r["updates"] > 0 and all(math.isfinite(r[k]) for k in ("load_p99_ms", "update_p99_ms", "update_max_ms"))
