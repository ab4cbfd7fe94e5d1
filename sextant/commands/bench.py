"""`sextant bench`: the performance figures the issues name, measured in one run."""

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from catalog.errors import CatalogError
from sextant.commands.common import console, fail

# The configs the benches measure ship beside the packages, wherever the bench is run from.
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def bench(
    catalog: Annotated[Path | None, typer.Option("--catalog", help="existing catalog (default: build one)")] = None,
    symbols: Annotated[int, typer.Option(min=1, help="symbols of the catalog it builds")] = 10,
    days: Annotated[int, typer.Option(min=1, help="sessions of the catalog it builds")] = 260,
    part: Annotated[str, typer.Option(help="all, engine (backtest/ML), features, polygon (market data), live (order path), journal (PostgreSQL sink), tune, zoo (every model's fit and inference), inference (full ensemble, 50 symbols per bar close) or panel (control panel page loads and live updates in Chromium, 50-symbol rehearsal)")] = "all",
) -> None:
    """Measure engine, backtest, feature, inference, market-data, order-path and tuning performance."""
    if part not in ("all", "engine", "features", "polygon", "live", "journal", "tune", "zoo", "inference", "panel"):
        fail(f"--part must be all, engine, features, polygon, live, journal, tune, zoo, inference or panel, not {part!r}")
    if part in ("all", "engine"):
        from backtests.bench import run_bench

        try:
            run_bench(console, catalog=catalog, n_symbols=symbols, n_days=days)
        except CatalogError as e:
            fail(str(e))
    if part in ("all", "features"):
        from backtests.feature_bench import run_feature_bench

        try:
            run_feature_bench(console, catalog=catalog)
        except CatalogError as e:
            fail(str(e))
    if part in ("all", "polygon"):
        _bench_polygon()
    if part in ("all", "live"):
        _bench_order_path()
    if part in ("all", "journal"):
        _bench_journal()
    if part in ("all", "tune"):
        from backtests.config import ConfigError
        from backtests.tuning.bench import run_tune_bench

        try:
            run_tune_bench(console, CONFIGS / "tune.yaml", catalog=catalog)
        except (ConfigError, CatalogError) as e:
            fail(str(e))
    if part in ("all", "zoo"):
        from backtests.zoo_bench import run_zoo_bench

        run_zoo_bench(console)
    if part in ("all", "inference"):
        from backtests.inference_bench import run_inference_bench

        run_inference_bench(console)
    if part in ("all", "panel"):
        from backtests.bench_market import lightgbm_market
        from live.panel.bench import run_panel_bench

        run_panel_bench(console, lightgbm_market)


def _bench_order_path() -> None:
    """AM frame sent by the Polygon sandbox -> order at the venue, for NautilusTrader's floor
    (an execution client without I/O), our full path, and our full path with the journal
    writing to PostgreSQL, interleaved in one run (live/bench.py)."""
    from live.bench import BAR_GAP_SECS, JOURNAL_TARGET_PCT, order_latency

    console.print("Order path: 50 symbols closing a bar at once, 30 closes a run; rounds of the floor, the full "
                  f"path with the journal off and on, interleaved; bars {BAR_GAP_SECS:g} s apart ...")
    r = order_latency()
    table = Table(title=f"sextant bench: live order path (TradingNode between the two sandboxes, "
                        f"{r['rounds']:.0f} rounds, {r['closes']:.0f} bursts a variant)")
    for col, justify in (("figure", "left"), ("p50 ms", "right"), ("p99 ms", "right"),
                         ("rounds' p99 ms", "right"), ("target", "right")):
        table.add_column(col, justify=justify)

    def spread(variant: str) -> str:
        return f"{r[f'{variant}_round_p99_min_ms']:.1f}-{r[f'{variant}_round_p99_max_ms']:.1f}"

    table.add_row("feed: AM frame sent -> probe's on_bar (floor runs)",
                  f"{r['floor_decision_p50_ms']:.1f}", f"{r['floor_decision_p99_ms']:.1f}", "", "")
    table.add_row(f"floor: AM frame sent -> accepted by a no-I/O client ({r['floor_orders']:,.0f} orders)",
                  f"{r['floor_p50_ms']:.1f}", f"{r['floor_p99_ms']:.1f}", spread("floor"), "")
    table.add_row(f"full, journal off: AM frame sent -> order received by the Alpaca sandbox ({r['full_orders']:,.0f} orders)",
                  f"{r['full_p50_ms']:.1f}", f"{r['full_p99_ms']:.1f}", spread("full"), "<= 20")
    table.add_row(f"full, journal on: the same, the collector writing to PostgreSQL ({r['journal_orders']:,.0f} orders, "
                  f"{r['journal_rows']:,.0f} rows committed)",
                  f"{r['journal_p50_ms']:.1f}", f"{r['journal_p99_ms']:.1f}", spread("journal"), "")
    table.add_row("  then at the sandbox: received -> decided and answered (its queue, not our path)",
                  f"{r['full_broker_p50_ms']:.1f}", f"{r['full_broker_p99_ms']:.1f}", "", "")
    table.add_row("full / floor", f"{r['full_p50_ms'] / r['floor_p50_ms']:.2f}", f"{r['ratio_p99']:.2f}", "", "<= 1.5")
    table.add_row("journal on / off", f"{r['journal_p50_ms'] / r['full_p50_ms']:.2f}",
                  f"{r['journal_ratio_p99']:.2f}", f"median {r['journal_paired_ratio_median']:.2f}",
                  f"<= {1 + JOURNAL_TARGET_PCT / 100:.2f}")
    console.print(table)
    met = r["full_p99_ms"] <= 20.0 or r["ratio_p99"] <= 1.5
    console.print("order-path target " + ("met" if met else "NOT met") + ": full p99 <= 20 ms or within 1.5x of the floor's p99")
    change = r["journal_change_pct"]
    console.print(f"journal on vs off: p99 {change:+.1f}% "
                  + ("(target met" if change <= JOURNAL_TARGET_PCT else "(target NOT met")
                  + f": at most +{JOURNAL_TARGET_PCT:g}%)")


def _bench_journal() -> None:
    """Rows into the PostgreSQL journal (live/journal/bench.py)."""
    from live.journal.bench import TARGET_EVENTS_PER_SEC, journal_throughput

    console.print("Journal: 200,000 mixed rows into an embedded PostgreSQL through the writer thread ...")
    r = journal_throughput()
    table = Table(title="sextant bench: live journal (PostgreSQL sink)")
    for col, justify in (("figure", "left"), ("value", "right"), ("target", "right")):
        table.add_column(col, justify=justify)
    table.add_row("handed over on the event loop, events/s", f"{r['put_per_sec']:,.0f}", "")
    table.add_row("  per event, us", f"{r['put_us']:.2f}", "")
    table.add_row("MLSignal -> collector row -> sink, us per signal (event loop)",
                  f"{r['collector_signal_us']:.2f}", "")
    table.add_row(f"committed to PostgreSQL, events/s ({r['rows']:,} in {r['seconds']:.2f} s)",
                  f"{r['committed_per_sec']:,.0f}", f">= {TARGET_EVENTS_PER_SEC:,}")
    table.add_row(f"  flush every {r['flush_interval_ms']:.0f} ms or {r['max_batch']:,} rows", "", "")
    console.print(table)


def _bench_polygon() -> None:
    """Ingest from the sandbox, live-feed throughput and latency (adapters/polygon/benchmarks.py)."""
    from adapters.polygon.benchmarks import feed_latency, feed_throughput, measure_ingest_throughput

    console.print("Polygon: ingesting a 10 x 130-session catalog from a sandbox process ...")
    ingest = measure_ingest_throughput()
    if ingest["failures"]:
        fail("bench ingest failed: " + "; ".join(ingest["failures"]))
    console.print("Polygon: live feed throughput (200k AM messages) and latency (390 minutes x 3 symbols) ...")
    feed = feed_throughput()
    latency = feed_latency()
    table = Table(title="sextant bench: Polygon market data")
    for col, justify in (("figure", "left"), ("value", "right"), ("target", "right")):
        table.add_column(col, justify=justify)
    table.add_row("ingest from the sandbox into the catalog, bars/s", f"{ingest['bars_per_second']:,.0f}", ">= 200,000")
    table.add_row(f"  ({ingest['bars']:,} bars in {ingest['seconds']:.2f} s, 4 worker threads)", "", "")
    table.add_row("live feed: parse only, messages/s (baseline)", f"{feed['parse_only_messages_per_sec']:,.0f}", "")
    table.add_row("live feed: parsed and handed to on_bar, messages/s", f"{feed['messages_per_sec']:,.0f}", ">= 50,000")
    table.add_row("  handed to on_bar / parse only",
                  f"{feed['messages_per_sec'] / feed['parse_only_messages_per_sec']:.2f}", "")
    table.add_row("frame received -> on_bar, median ms", f"{latency['receive_to_on_bar_median_ms']:.3f}", "< 1")
    table.add_row("frame received -> on_bar, p99 ms", f"{latency['receive_to_on_bar_p99_ms']:.3f}", "")
    table.add_row("sandbox send -> on_bar (incl. socket), median / p99 ms",
                  f"{latency['send_to_on_bar_median_ms']:.3f} / {latency['send_to_on_bar_p99_ms']:.3f}", "")
    console.print(table)

