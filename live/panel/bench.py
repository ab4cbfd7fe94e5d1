"""`sextant bench --part panel`: the control panel beside a 50-symbol rehearsal, measured in
headless Chromium (Playwright on /usr/bin/chromium).

A 7-session catalog of 50 symbols is generated and a small LightGBM fitted on it (the test
rehearsals' recipe at the bench's size); the last session is rehearsed through both
sandboxes with the panel's sink and control, a minute every ~0.2 s while the browser
measures (~250 bars/s into the panel), then at full speed. The browser, logged in with the
printed token:
- loads every page ``loads`` times: navigation timing (request start to the load event), as
  the browser itself records it;
- keeps the Trading page open while the day trades: the server stamps each SSE payload with
  the time of the oldest event it carries (``_ts``), the page the time it received it; both
  are this machine's clock, so the difference is the update's whole way (coalescing wait,
  server, socket, the page's parse) but not the rendering that follows.
Page load is measured with the CSP bypassed (Playwright's evaluate needs it); the pages are
the same.
"""

import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from live.journal import JournalSettings
from live.panel.browser import chromium
from live.panel.launch import PanelOptions, RunPanel, run_panel
from live.rehearsal import rehearse
from live.settings import LiveConfig, ModelsSection
from strategies.settings import StrategySettings

PAGE_LOAD_TARGET_MS = 300.0
UPDATE_TARGET_MS = 1000.0
PAGES = ("/", "/trading", "/models", "/data")
# (root, n_symbols) -> (catalog, registry, symbols, the session to trade): what `sextant` hands
# the bench (backtests.bench_market.lightgbm_market; live does not fit models itself)
MarketBuilder = Callable[[Path, int], tuple[Path, Path, list[str], str]]


def _measure(panel: RunPanel, loads: int, watch_secs: float) -> dict:
    """The browser's side (its own thread): page loads, then live updates on /trading."""
    base = panel.server.base_url
    deadline = time.monotonic() + 120
    while not panel.ctx.view.snapshot("status")["bars"]:  # the day is trading
        if time.monotonic() > deadline:
            raise TimeoutError("the rehearsal did not start trading within 2 minutes")
        time.sleep(0.1)
    routes = {r.resource.canonical for r in panel.server.app.router.routes() if r.method == "GET"}
    pages = [p for p in PAGES if p in routes]
    with chromium() as browser:
        context = browser.new_context(bypass_csp=True, viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(panel.server.url)
        load_ms: dict[str, list[float]] = {}
        for path in pages:
            for _ in range(loads):
                page.goto(base + path, wait_until="load")
                load_ms.setdefault(path, []).append(
                    page.evaluate("() => performance.getEntriesByType('navigation')[0].duration"))
        page.goto(base + "/trading", wait_until="load")
        time.sleep(watch_secs)
        latencies = page.evaluate("() => window.sextant.latencies.slice()")
    return {"load_ms": load_ms, "update_ms": latencies}


def panel_bench(market: MarketBuilder, n_symbols: int = 50, loads: int = 20, watch_secs: float = 15.0,
                until: str = "12:30", console: Console | None = None) -> dict:
    say = console.print if console else (lambda *_: None)
    with tempfile.TemporaryDirectory(prefix="sextant-panel-bench-") as tmp:
        say(f"panel bench: a {n_symbols}-symbol catalog and a LightGBM fitted on it ...")
        catalog, models, symbols, day = market(Path(tmp), n_symbols)
        config = LiveConfig(universe=symbols, models=ModelsSection(registry=str(models)),
                            strategy=StrategySettings(entry_threshold=0.51, weights={"lightgbm": 1.0}),
                            journal=JournalSettings(sinks=()))
        say(f"panel bench: rehearsing {day} to {until} with the panel; Chromium loads each page {loads} times, "
            f"then watches /trading for {watch_secs:g} s ...")
        with ThreadPoolExecutor(1, thread_name_prefix="panel-bench-browser") as pool, \
                run_panel(config, PanelOptions(port=0), rehearsal=True, catalog=catalog, retrain=None) as panel:
            measured = pool.submit(_measure, panel, loads, watch_secs)

            def pace(_done: int, _total: int) -> None:
                if not measured.done():
                    time.sleep(0.2)

            result = rehearse(config, catalog, day, until=until, control=panel.control, also=[panel.sink],
                              on_minute=pace)
            figures = measured.result(300)
    loads_all = [ms for values in figures["load_ms"].values() for ms in values]
    updates = figures["update_ms"]
    return {
        "symbols": n_symbols, "minutes": result.minutes, "signals": len(result.signals),
        "orders": len(result.intents), "fills": len(result.fills),
        "pages": {path: (float(np.percentile(v, 50)), float(np.percentile(v, 99))) for path, v in figures["load_ms"].items()},
        "load_p50_ms": float(np.percentile(loads_all, 50)), "load_p99_ms": float(np.percentile(loads_all, 99)),
        "updates": len(updates),
        "update_p50_ms": float(np.percentile(updates, 50)) if updates else float("nan"),
        "update_p99_ms": float(np.percentile(updates, 99)) if updates else float("nan"),
        "update_max_ms": float(max(updates)) if updates else float("nan"),
    }


def run_panel_bench(console: Console, market: MarketBuilder) -> dict:
    r = panel_bench(market, console=console)
    table = Table(title=f"sextant bench: control panel beside a {r['symbols']}-symbol rehearsal "
                        f"({r['minutes']} minutes, {r['signals']:,} signals, {r['orders']} orders, {r['fills']} fills)")
    for col, justify in (("figure", "left"), ("p50 ms", "right"), ("p99 ms", "right"), ("max ms", "right"),
                         ("target", "right")):
        table.add_column(col, justify=justify)
    for path, (p50, p99) in r["pages"].items():
        table.add_row(f"page load {path} (navigation timing)", f"{p50:.1f}", f"{p99:.1f}", "",
                      f"< {PAGE_LOAD_TARGET_MS:.0f}")
    table.add_row("page load, all pages", f"{r['load_p50_ms']:.1f}", f"{r['load_p99_ms']:.1f}", "",
                  f"< {PAGE_LOAD_TARGET_MS:.0f}")
    table.add_row(f"live update: event -> page ({r['updates']:,} SSE messages)", f"{r['update_p50_ms']:.1f}",
                  f"{r['update_p99_ms']:.1f}", f"{r['update_max_ms']:.1f}", f"< {UPDATE_TARGET_MS:.0f}")
    console.print(table)
    return r
