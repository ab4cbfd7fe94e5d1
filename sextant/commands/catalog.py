"""`sextant catalog ...`: market data at rest (info, generate, import, ingest, replay)."""

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.progress import Progress
from rich.table import Table

from backtests.config import ConfigError, load_config
from catalog.errors import CatalogError
from catalog.instruments import UNKNOWN_SECTOR, parse_symbol, parse_symbols
from catalog.inventory import describe_catalog
from catalog.jobs import generate_catalog, import_csv
from catalog.store import MarketCatalog, open_catalog
from catalog.synthetic import LAST_SESSION, SIGNAL_STRENGTH_MAX, SIGNAL_STRENGTH_MIN
from sextant.commands.common import CatalogOpt, console, fail, ny, writable_dir

catalog_app = typer.Typer(help="Market data at rest: info, generate, import, ingest, replay.", no_args_is_help=True)


@catalog_app.command("info")
def catalog_info(catalog: CatalogOpt = Path("data/catalog")) -> None:
    """What a catalog holds: symbols, sectors, timeframes, sessions, gaps and where the bars came from."""
    try:
        info = describe_catalog(catalog)
    except CatalogError as e:
        fail(str(e))
    if not info.series:
        fail(f"catalog {catalog} holds no bars")
    sources = {s.provenance for s in info.series}
    columns = ["symbol", "sector", "tf", "first", "last", "sessions", "bars", "incomplete"]
    rows = [[s.symbol, s.sector, s.timeframe, str(s.first_session), str(s.last_session), f"{s.sessions:,}",
             f"{s.bars:,}", f"{s.incomplete_sessions:,}"] for s in info.series]
    if len(sources) > 1:  # one source for the whole catalog goes in the title instead
        columns.append("source")
        for row, series in zip(rows, info.series, strict=True):
            row.append(series.provenance)
    title = f"catalog {catalog}: {len(info.symbols)} symbols" + (f", {next(iter(sources))}" if len(sources) == 1 else "")
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    shrinking = ("sector", "source")  # words are cut with an ellipsis on a narrow terminal; figures never
    for i, col in enumerate(columns):
        table.add_column(col, justify="right" if col in ("sessions", "bars", "incomplete") else "left",
                         no_wrap=True, overflow="ellipsis" if col in shrinking else "fold",
                         min_width=8 if col in shrinking else max(len(col), *(len(r[i]) for r in rows)))
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print("first/last: sessions; incomplete: 1m sessions with fewer regular-session minutes than the "
                  "session has (other timeframes: sessions without a bar)")
    if info.synthetic:
        g = info.synthetic
        console.print(f"synthetic market: {g.get('symbols')} symbols x {g.get('days')} sessions, seed {g.get('seed')}, "
                      f"planted signal strength {g.get('signal_strength')}")


@catalog_app.command("generate")
def catalog_generate(
    catalog: CatalogOpt = Path("data/catalog"),
    symbols: Annotated[int, typer.Option(min=1, help="symbols S000, S001, ...")] = 12,
    days: Annotated[int, typer.Option(min=1, help=f"NYSE sessions, the last one {LAST_SESSION}")] = 120,
    seed: Annotated[int, typer.Option(min=0, help="the same seed gives the same market")] = 7,
    signal_strength: Annotated[float, typer.Option(min=SIGNAL_STRENGTH_MIN, max=SIGNAL_STRENGTH_MAX,
                                                   help="0 = pure random walk")] = 0.0,
    replace: Annotated[bool, typer.Option(help="replace an existing catalog (everything in it is lost)")] = False,
) -> None:
    """Write a synthetic multi-symbol minute-bar market as a new catalog (or replace one with --replace)."""
    writable_dir(catalog, "--catalog")
    try:
        with Progress(console=console, transient=True) as progress:  # a refusal leaves no empty bar behind
            task = progress.add_task("writing symbols", total=symbols)
            generate_catalog(catalog, symbols, days, seed, signal_strength,
                             on_symbol=lambda *_: progress.advance(task), replace=replace)
    except CatalogError as e:
        fail(str(e))
    console.print(f"wrote {symbols} symbols x {days} sessions to {catalog}")


@catalog_app.command("import-csv")
def catalog_import_csv(
    csv: Annotated[Path, typer.Argument(help="CSV with timestamp,open,high,low,close,volume (UTC minute starts)")],
    symbol: Annotated[str, typer.Option(help="ticker to store the bars under")],
    catalog: CatalogOpt = Path("data/catalog"),
    sector: Annotated[str | None, typer.Option(help=f"default: keep the stored sector, else {UNKNOWN_SECTOR}")] = None,
    all_hours: Annotated[bool, typer.Option(help="keep pre/post-market bars")] = False,
) -> None:
    """Import real one-minute bars from a CSV file.

    A bar replaces the stored bar at the same minute; every other stored bar is kept."""
    writable_dir(catalog, "--catalog")
    try:
        symbol = parse_symbol(symbol)
        rows = import_csv(csv, symbol, catalog, sector=sector, regular_session_only=not all_hours)
    except CatalogError as e:
        fail(str(e))
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
    from adapters.polygon.config import PolygonConfigError, PolygonHistoricalConfig
    from adapters.polygon.errors import PolygonError
    from adapters.polygon.http import PolygonHttpClient
    from adapters.polygon.loader import PolygonBarSource
    from adapters.polygon.providers import PolygonInstrumentProvider
    from catalog.ingest import check_request, ingest_bars
    from catalog.instruments import instrument_id

    writable_dir(catalog, "--catalog")
    try:
        tickers = parse_symbols(symbols)
        check_request(start, end, timeframe)
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
    except (MissingApiKeyError, PolygonConfigError, PolygonError, CatalogError) as e:
        fail(str(e))
    for ticker in tickers:
        console.print(f"{ticker}: {report.bars_written[ticker]:,} bars from {report.sessions_fetched[ticker]} "
                      f"sessions ({report.sessions_skipped[ticker]} already in the catalog)")
    if not report.ok:
        fail("incomplete:\n" + "\n".join(f"  {f}" for f in report.failures))


@catalog_app.command("replay")
def catalog_replay(
    start: Annotated[str, typer.Option(help="first session (YYYY-MM-DD)")],
    end: Annotated[str, typer.Option(help="last session (YYYY-MM-DD)")],
    catalog: CatalogOpt = Path("data/catalog"),
    symbols: Annotated[str | None, typer.Option(help="comma-separated; default: all")] = None,
    timeframe: Annotated[str, typer.Option(help="1m, 5m, 15m, 1h or 1d")] = "1m",
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
        fail(f"--only: unknown kind(s) {', '.join(sorted(unknown))}")
    if config is not None and models is None:
        fail("--config trades the models' signals: give --models too")
    styles = {"bar": "dim", "signal": "cyan", "order": "yellow", "fill": "bold green"}

    def show(event) -> None:
        if not quiet and event.kind in kinds:
            console.print(f"{ny(event.ts_ns, '%Y-%m-%d %H:%M:%S')}  [{styles[event.kind]}]{event.kind:<6}[/] {event.symbol:<6} {event.detail}",
                          highlight=False)

    try:
        registry = ModelRegistry(models) if models else None
        model_dirs = {n: registry.path(n) for n in registry.names()} if registry else None
        if registry and not model_dirs:
            fail(f"no saved models under {models}")
        cfg = load_config(config) if config else None
        open_catalog(catalog)  # a mistyped path is an error, not an empty replay
        summary = replay(catalog, start, end, show,
                         symbols=parse_symbols(symbols) if symbols else None,
                         timeframe=timeframe, model_dirs=model_dirs, config=cfg)
    except (ConfigError, CatalogError) as e:
        fail(str(e))
    table = Table(title=f"replay {start} .. {end}: {summary.sessions} sessions, {summary.bars:,} bars "
                        f"in {summary.elapsed_s:.2f} s")
    for col in ("symbol", "bars", "first", "last", "missing", "signals", "orders", "fills"):
        table.add_column(col, justify="left" if col in ("symbol", "first", "last") else "right", no_wrap=True)
    for symbol, row in summary.symbols.items():
        table.add_row(symbol, f"{row.bars:,}", ny(row.first_ns), ny(row.last_ns), f"{row.missing_minutes:,}",
                      f"{row.signals:,}", f"{row.orders:,}", f"{row.fills:,}")
    console.print(table)
    if model_dirs and not any(row.signals for row in summary.symbols.values()):
        console.print("no signal: the SignalActor publishes once a symbol holds its warm-up (the features' "
                      "and the models' look-back, several hundred bars); start the replay a session or two "
                      "earlier than the day you want to see")

