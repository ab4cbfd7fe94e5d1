"""The `sextant` command line: the composition root (it imports everything; nothing imports it)."""

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from dotenv import load_dotenv
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from backtests.config import ConfigError, load_config
from catalog.csv_import import CsvFormatError
from catalog.instruments import UNKNOWN_SECTOR
from catalog.jobs import generate_catalog, import_csv
from catalog.store import EmptyCatalogError, MarketCatalog

app = typer.Typer(help="Sextant: walk-forward ML backtests and live trading on NautilusTrader.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
catalog_app = typer.Typer(help="Market data at rest: generate, import, ingest, replay.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
sandbox_app = typer.Typer(help="Loopback servers that speak real vendor protocols, for offline work.",
                          no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
console = Console()

CatalogOpt = Annotated[Path, typer.Option("--catalog", help="catalog directory")]


@app.callback()
def _environment() -> None:
    """Secrets come from the environment; an untracked .env in the working directory fills in
    what the environment does not set (it never overrides it)."""
    load_dotenv(Path.cwd() / ".env", override=False)


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


@catalog_app.command("generate")
def catalog_generate(
    catalog: CatalogOpt = Path("data/catalog"),
    symbols: Annotated[int, typer.Option(min=1)] = 12,
    days: Annotated[int, typer.Option(min=1)] = 120,
    seed: int = 7,
    signal_strength: Annotated[float, typer.Option(min=0.0, max=0.99, help="0 = pure random walk")] = 0.0,
) -> None:
    """Write a synthetic multi-symbol minute-bar market into the catalog."""
    with Progress(console=console) as progress:
        task = progress.add_task("writing symbols", total=symbols)
        generate_catalog(catalog, symbols, days, seed, signal_strength,
                         on_symbol=lambda *_: progress.advance(task))
    console.print(f"wrote {symbols} symbols x {days} sessions to {catalog}")


@catalog_app.command("import-csv")
def catalog_import_csv(
    csv: Annotated[Path, typer.Argument(help="CSV with timestamp,open,high,low,close,volume (UTC minute starts)")],
    symbol: Annotated[str, typer.Option(help="ticker to store the bars under")],
    catalog: CatalogOpt = Path("data/catalog"),
    sector: Annotated[str | None, typer.Option(help=f"default: keep the stored sector, else {UNKNOWN_SECTOR}")] = None,
    all_hours: Annotated[bool, typer.Option(help="keep pre/post-market bars")] = False,
) -> None:
    """Import real one-minute bars from a CSV file."""
    try:
        rows = import_csv(csv, symbol, catalog, sector=sector, regular_session_only=not all_hours)
    except (CsvFormatError, FileNotFoundError) as e:
        _fail(str(e))
    console.print(f"imported {rows:,} bars for {symbol} into {catalog}")


@catalog_app.command("ingest")
def catalog_ingest(
    symbols: Annotated[str, typer.Option(help="comma-separated tickers, e.g. AAPL,MSFT")],
    start: Annotated[str, typer.Option(help="first session (YYYY-MM-DD)")],
    end: Annotated[str, typer.Option(help="last session (YYYY-MM-DD)")],
    timeframe: Annotated[str, typer.Option(help="1m, 5m, 15m, 1h or 1d")] = "1m",
    catalog: CatalogOpt = Path("data/catalog"),
    base_url: Annotated[str, typer.Option(help="any Polygon-compatible endpoint")] = "https://api.massive.com",
    requests_per_minute: Annotated[int | None, typer.Option(min=1, help="your plan's budget (free tier: 5)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="symbols fetched in parallel")] = 4,
    unadjusted: Annotated[bool, typer.Option(help="prices as traded, not split-adjusted")] = False,
    extended_hours: Annotated[bool, typer.Option(help="keep pre/post-market bars")] = False,
) -> None:
    """Polygon (Massive) aggregates into the catalog: resumable, idempotent per symbol-day.

    The key comes from POLYGON_API_KEY or MASSIVE_API_KEY (environment or .env)."""
    import asyncio

    from adapters.polygon.common import MissingApiKeyError, api_key_from_env
    from adapters.polygon.config import PolygonHistoricalConfig
    from adapters.polygon.errors import PolygonError
    from adapters.polygon.http import PolygonHttpClient
    from adapters.polygon.loader import PolygonBarSource
    from adapters.polygon.providers import PolygonInstrumentProvider
    from catalog.ingest import ingest_bars
    from catalog.instruments import instrument_id

    tickers = [s.strip().upper() for s in symbols.split(",") if s.strip()]
    try:
        config = PolygonHistoricalConfig(base_url=base_url.rstrip("/"), requests_per_minute=requests_per_minute,
                                         adjusted=not unadjusted, regular_session_only=not extended_hours,
                                         max_workers=workers)
        client = PolygonHttpClient(api_key_from_env(), config)
        known = MarketCatalog(catalog).sectors()
        provider = PolygonInstrumentProvider(client)
        if new := [t for t in tickers if t not in known]:
            asyncio.run(provider.load_ids_async([instrument_id(t) for t in new]))
        with Progress(console=console) as progress:
            tasks = {t: progress.add_task(t, total=None) for t in tickers}
            report = ingest_bars(
                catalog, tickers, start, end, timeframe, PolygonBarSource(client, config.regular_session_only),
                max_workers=workers, sectors=provider.sectors(),
                on_progress=lambda sym, done, total: progress.update(tasks[sym], completed=done, total=total),
                source_settings={"adjusted": config.adjusted, "regular_session_only": config.regular_session_only},
            )
    except (MissingApiKeyError, PolygonError, ValueError) as e:
        _fail(str(e))
    for ticker in tickers:
        console.print(f"{ticker}: {report.bars_written[ticker]:,} bars from {report.sessions_fetched[ticker]} "
                      f"sessions ({report.sessions_skipped[ticker]} already in the catalog)")
    if not report.ok:
        _fail("incomplete:\n" + "\n".join(f"  {f}" for f in report.failures))


@catalog_app.command("replay")
def catalog_replay(
    start: Annotated[str, typer.Option(help="first session (YYYY-MM-DD)")],
    end: Annotated[str, typer.Option(help="last session (YYYY-MM-DD)")],
    catalog: CatalogOpt = Path("data/catalog"),
    symbols: Annotated[str | None, typer.Option(help="comma-separated; default: all")] = None,
    timeframe: str = "1m",
    models: Annotated[Path | None, typer.Option(help="model registry dir (a run's models/): run the SignalActor")] = None,
    config: Annotated[Path | None, typer.Option(help="walk-forward YAML: also trade with its strategy")] = None,
    only: Annotated[str | None, typer.Option(help="print only these kinds: bar,signal,order,fill")] = None,
    quiet: Annotated[bool, typer.Option(help="print the summary only")] = False,
) -> None:
    """Replay a catalog range through the engine at full speed, printing what a strategy sees."""
    from backtests.replay import replay
    from models.registry import ModelRegistry

    kinds = set(only.split(",")) if only else {"bar", "signal", "order", "fill"}
    if unknown := kinds - {"bar", "signal", "order", "fill"}:
        _fail(f"--only: unknown kind(s) {', '.join(sorted(unknown))}")
    if config is not None and models is None:
        _fail("--config trades the models' signals: give --models too")
    styles = {"bar": "dim", "signal": "cyan", "order": "yellow", "fill": "bold green"}

    def show(event) -> None:
        if not quiet and event.kind in kinds:
            console.print(f"{_ny(event.ts_ns, '%Y-%m-%d %H:%M:%S')}  [{styles[event.kind]}]{event.kind:<6}[/] {event.symbol:<6} {event.detail}",
                          highlight=False)

    try:
        registry = ModelRegistry(models) if models else None
        model_dirs = {n: registry.path(n) for n in registry.names()} if registry else None
        if registry and not model_dirs:
            _fail(f"no saved models under {models}")
        cfg = load_config(config) if config else None
        summary = replay(catalog, start, end, show, symbols=symbols.split(",") if symbols else None,
                         timeframe=timeframe, model_dirs=model_dirs, config=cfg)
    except (ConfigError, EmptyCatalogError, ValueError) as e:
        _fail(str(e))
    table = Table(title=f"replay {start} .. {end}: {summary.sessions} sessions, {summary.bars:,} bars "
                        f"in {summary.elapsed_s:.2f} s")
    for col in ("symbol", "bars", "first", "last", "missing", "signals", "orders", "fills"):
        table.add_column(col, justify="left" if col in ("symbol", "first", "last") else "right", no_wrap=True)
    for symbol, row in summary.symbols.items():
        table.add_row(symbol, f"{row.bars:,}", _ny(row.first_ns), _ny(row.last_ns), f"{row.missing_minutes:,}",
                      f"{row.signals:,}", f"{row.orders:,}", f"{row.fills:,}")
    console.print(table)


@sandbox_app.command("polygon")
def sandbox_polygon(
    catalog: CatalogOpt = Path("data/catalog"),
    host: str = "127.0.0.1",
    port: int = 8765,
    speed: Annotated[float | None, typer.Option(help="stream AM bars at this many simulated seconds per second")] = None,
    start: Annotated[str | None, typer.Option(help="simulated start (UTC); default: open of the catalog's last session")] = None,
    api_key: Annotated[str, typer.Option(help="the key clients must present")] = "test-key",
    fault: Annotated[list[str] | None, typer.Option(help="scripted fault, e.g. rest:rate_limit:times=2 (repeatable)")] = None,
) -> None:
    """Serve a catalog as Polygon REST + WebSocket (loopback), optionally paced by a simulated clock."""
    from adapters.polygon.sandbox import PolygonSandbox, SimClock, parse_fault
    from catalog.sessions import session_bounds

    store = MarketCatalog(catalog)
    symbols = store.symbols()
    if not symbols:
        _fail(f"catalog {catalog} holds no bars")
    try:
        faults = [parse_fault(spec) for spec in fault or []]
    except ValueError as e:
        _fail(str(e))
    clock = None
    if speed is not None:
        if start is None:
            last = store.read_bars(symbols[0]).index[-1]
            begin = session_bounds(last - pd.Timedelta(minutes=1))[0]
        else:
            begin = pd.Timestamp(start, tz="UTC") if pd.Timestamp(start).tz is None else pd.Timestamp(start)
        clock = SimClock.paced(start=begin, speed=speed)
    sandbox = PolygonSandbox(catalog, api_key=api_key, host=host, port=port, clock=clock, faults=faults).start()
    shown_key = api_key if api_key == "test-key" else "(the one given)"
    console.print(f"Polygon sandbox over {catalog} ({len(symbols)} symbols): REST {sandbox.base_url}  "
                  f"WebSocket ws://{sandbox.ws_feed}/stocks  key {shown_key}")
    console.print(f"streaming from {_ny(clock.now_ns(), '%Y-%m-%d %H:%M ET')} at {speed:g}x" if clock
                  else "no clock: REST serves all bars; the WebSocket streams nothing (use --speed)")
    console.print("Ctrl-C stops")
    sandbox.serve_forever()


@sandbox_app.command("alpaca")
def sandbox_alpaca(
    catalog: CatalogOpt = Path("data/catalog"),
    host: str = "127.0.0.1",
    port: int = 8766,
    cash: Annotated[float, typer.Option(help="starting cash of the paper account")] = 100_000.0,
    participation: Annotated[float | None, typer.Option(help="cap each fill at this share of a bar's volume")] = None,
    speed: Annotated[float | None, typer.Option(help="run the simulated clock at this many seconds per second")] = None,
    start: Annotated[str | None, typer.Option(help="simulated start (UTC); default: the catalog's first session open")] = None,
    fault: Annotated[list[str] | None, typer.Option(help="scripted fault, e.g. rest:rate_limit:times=2 (repeatable)")] = None,
) -> None:
    """A loopback paper broker speaking Alpaca's REST + trade_updates API, filling at catalog prices.

    Without --speed its clock stands still (orders rest until a rehearsal moves it)."""
    from adapters.alpaca.sandbox import (
        AlpacaSandbox,
        CatalogMarket,
        first_session_open,
        parse_alpaca_fault,
    )
    from adapters.polygon.sandbox import SimClock

    if not MarketCatalog(catalog).symbols():
        _fail(f"catalog {catalog} holds no bars")
    try:
        faults = [parse_alpaca_fault(spec) for spec in fault or []]
    except ValueError as e:
        _fail(str(e))
    market = CatalogMarket(catalog)
    begin = pd.Timestamp(start, tz="UTC") if start else first_session_open(market)
    clock = SimClock.paced(start=begin, speed=speed) if speed else SimClock.manual(begin)
    sandbox = AlpacaSandbox(market, host=host, port=port, starting_cash=cash, clock=clock,
                            participation=participation, faults=faults).start()
    console.print(f"Alpaca sandbox over {catalog}: REST {sandbox.base_url}  stream {sandbox.stream_url}  "
                  "keys test-key / test-secret")
    console.print(f"simulated clock at {_ny(sandbox.now_ns(), '%Y-%m-%d %H:%M ET')}; Ctrl-C stops")
    sandbox.serve_forever()


def _ny(ns: int | None, fmt: str = "%m-%d %H:%M") -> str:
    """A UTC nanosecond stamp in New York time (how US-equity people read times)."""
    return pd.Timestamp(ns, tz="UTC").tz_convert("America/New_York").strftime(fmt) if ns else "-"


@app.command()
def backtest(
    config: Annotated[Path, typer.Argument(help="walk-forward YAML config")],
    catalog: Annotated[Path | None, typer.Option("--catalog", help="override the config's catalog path")] = None,
    out: Annotated[Path, typer.Option("--out", help="runs directory")] = Path("runs"),
) -> None:
    """Walk-forward ML backtest: train, purge/embargo, predict, trade, report."""
    from backtests.walkforward import run_walkforward
    from backtests.window import WindowCrashedError

    try:
        cfg = load_config(config, overrides={"catalog.path": str(catalog)} if catalog else None)
        result = run_walkforward(cfg, out, console)
    except (ConfigError, EmptyCatalogError, WindowCrashedError) as e:
        _fail(str(e))
    t = result.metrics["trading"]
    m = result.metrics["models"]
    console.print(
        f"[bold]return[/] {t['total_return']:.2%}  [bold]sharpe[/] {t['sharpe']:.2f}  "
        f"[bold]max dd[/] {t['max_drawdown']:.2%}  [bold]trades[/] {t['trades']}  "
        + "  ".join(f"[bold]AUC {k}[/] {v['auc']:.3f}" for k, v in m.items())
    )
    console.print(f"report: {result.run_dir / 'report.html'}")


@app.command()
def live(
    config: Annotated[Path, typer.Argument(help="live YAML (configs/paper.yaml)")],
    rehearse: Annotated[bool, typer.Option(help="trade one catalog day offline against both sandboxes")] = False,
    catalog: Annotated[Path, typer.Option("--catalog", help="with --rehearse: the catalog to replay")] = Path("data/catalog"),
    day: Annotated[str | None, typer.Option(help="with --rehearse: the session to trade (YYYY-MM-DD)")] = None,
    out: Annotated[Path, typer.Option("--out", help="where the journal (signals, orders, fills) goes")] = Path("runs"),
    live_money: Annotated[bool, typer.Option("--live", help="real money: also needs --i-understand-real-money")] = False,
    understood: Annotated[bool, typer.Option("--i-understand-real-money")] = False,
) -> None:
    """Run the TradingNode: Polygon data + Alpaca execution (paper unless told otherwise)."""
    from live.settings import LiveConfigError, check_mode, load_live_config

    try:
        cfg = load_live_config(config)
        if rehearse:
            if live_money:
                _fail("--rehearse trades the sandboxes only; drop --live")
            if day is None:
                _fail("--rehearse needs --day YYYY-MM-DD (a session in the catalog)")
            _rehearse(cfg, catalog, day, out)
            return
        check_mode(cfg, live_flag=live_money, understood=understood)
    except LiveConfigError as e:
        _fail(str(e))
    _run_node(cfg, out)


def _rehearse(cfg, catalog: Path, day: str, out: Path) -> None:
    from live.rehearsal import RehearsalStalledError, rehearse

    journal = out / f"rehearsal-{cfg.name}-{day}"
    try:
        with Progress(console=console) as progress:
            task = progress.add_task(f"rehearsing {day}", total=None)
            result = rehearse(cfg, catalog, day, out_dir=journal,
                              on_minute=lambda done, total: progress.update(task, completed=done, total=total))
    except (ValueError, EmptyCatalogError, RehearsalStalledError) as e:
        _fail(str(e))
    console.print(f"{result.day}: {result.minutes} minutes in {result.elapsed_s:.1f} s; {len(result.signals):,} "
                  f"signals, {len(result.intents)} orders, {len(result.fills)} fills; journal: {journal}")


def _run_node(cfg, out: Path) -> None:
    """Blocks until Ctrl-C; the strategy cancels its orders and flattens as the node stops."""
    from live.journal import LiveJournal, LiveJournalConfig
    from live.node import build_node, node_config

    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%SZ")
    journal = LiveJournal(LiveJournalConfig(out_dir=str(out / f"{cfg.name}-{stamp}")))
    node = build_node(cfg, node_config(cfg), extra_actors=[journal])
    console.print(f"[bold]{cfg.mode.upper()}[/] trading {', '.join(cfg.universe)}; Ctrl-C stops and flattens")
    try:
        node.run()
    except KeyboardInterrupt:
        console.print("stopping: cancelling orders and flattening")
    finally:
        node.dispose()


@app.command()
def bench(
    catalog: Annotated[Path | None, typer.Option("--catalog", help="existing catalog (default: build one)")] = None,
    symbols: int = 10,
    days: int = 260,
    part: Annotated[str, typer.Option(help="all, engine (backtest/ML), polygon (market data) or live (order path)")] = "all",
) -> None:
    """Measure engine, backtest, feature, inference, market-data and order-path performance."""
    if part not in ("all", "engine", "polygon", "live"):
        _fail(f"--part must be all, engine, polygon or live, not {part!r}")
    if part in ("all", "engine"):
        from backtests.bench import run_bench

        run_bench(console, catalog=catalog, n_symbols=symbols, n_days=days)
    if part in ("all", "polygon"):
        _bench_polygon()
    if part in ("all", "live"):
        _bench_order_path()


def _bench_order_path() -> None:
    """AM frame sent by the Polygon sandbox -> order received by the Alpaca sandbox."""
    from live.bench import order_latency

    console.print("Order path: 50 symbols closing a bar at once, 30 closes, sandboxes in their own process ...")
    r = order_latency()
    table = Table(title="sextant bench: live order path (TradingNode between the two sandboxes)")
    for col, justify in (("figure", "left"), ("value", "right"), ("target", "right")):
        table.add_column(col, justify=justify)
    table.add_row(f"AM frame sent -> order received, p50 ms ({r['orders']:,.0f} orders)", f"{r['p50_ms']:.1f}", "")
    table.add_row("AM frame sent -> order received, p99 ms", f"{r['p99_ms']:.1f}", "<= 20")
    table.add_row("AM frame sent -> strategy decided, p50 / p99 ms",
                  f"{r['decision_p50_ms']:.1f} / {r['decision_p99_ms']:.1f}", "")
    console.print(table)


def _bench_polygon() -> None:
    """Ingest from the sandbox, live-feed throughput and latency (adapters/polygon/benchmarks.py)."""
    from adapters.polygon.benchmarks import feed_latency, feed_throughput, measure_ingest_throughput

    console.print("Polygon: ingesting a 10 x 130-session catalog from a sandbox process ...")
    ingest = measure_ingest_throughput()
    if ingest["failures"]:
        _fail("bench ingest failed: " + "; ".join(ingest["failures"]))
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
