"""`sextant sandbox ...`: loopback servers that speak the vendors' real protocols."""

import math
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from adapters.sandbox_faults import FaultSpecError
from catalog.errors import CatalogError
from catalog.sessions import CALENDAR_END, CALENDAR_START
from catalog.store import MarketCatalog, open_catalog
from sextant.commands.common import CatalogOpt, console, fail, ny

sandbox_app = typer.Typer(help="Loopback servers that speak real vendor protocols, for offline work.",
                          no_args_is_help=True)

def _host(host: str) -> str:
    """An empty host would listen on every interface: a sandbox says where it listens."""
    if not host.strip():
        raise typer.BadParameter("give an address to listen on, e.g. 127.0.0.1 (0.0.0.0 for every interface)")
    return host.strip()


Host = Annotated[str, typer.Option(callback=_host, help="address to listen on (loopback by default)")]
Port = Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0 = any free port)")]


def _positive(speed: float | None) -> float | None:
    if speed is not None and not 0 < speed < math.inf:  # nan and inf fail too
        raise typer.BadParameter(f"must be a positive number of simulated seconds per second, got {speed:g}")
    return speed


def _fraction(share: float | None) -> float | None:
    if share is not None and not 0 < share <= 1:
        raise typer.BadParameter(f"must be a share of a bar's volume in (0, 1], got {share:g}")
    return share


def _cash(cash: float) -> float:
    if not 0 < cash < math.inf:
        raise typer.BadParameter(f"must be a positive amount, got {cash:g}")
    return cash


def _start(text: str | None) -> pd.Timestamp | None:
    """``--start`` as a UTC instant (a naive stamp is UTC); a typo is a message, not a traceback."""
    if text is None:
        return None
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        stamp = pd.NaT
    if stamp is pd.NaT:  # pd.Timestamp("") is NaT, not an error
        fail(f"--start {text!r} is not a time; give e.g. 2024-12-30T14:30 (UTC) or 2024-12-30T09:30-05:00")
    stamp = stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")
    if not CALENDAR_START.tz_localize("UTC") <= stamp <= CALENDAR_END.tz_localize("UTC"):
        fail(f"--start {text!r} is outside the supported calendar range {CALENDAR_START.date()}..{CALENDAR_END.date()}")
    return stamp


def _catalog_with_bars(path: Path) -> MarketCatalog:
    try:
        store = open_catalog(path)
    except CatalogError as e:
        fail(str(e))
    if not store.symbols():
        fail(f"catalog {path} holds no bars")
    return store


Speed = Annotated[
    float | None,
    typer.Option(callback=_positive, help="run the simulated clock at this many simulated seconds per second"),
]


@sandbox_app.command("polygon")
def sandbox_polygon(
    catalog: CatalogOpt = Path("data/catalog"),
    host: Host = "127.0.0.1",
    port: Port = 8765,
    speed: Speed = None,
    start: Annotated[str | None, typer.Option(help="simulated start (UTC); default: open of the catalog's last session")] = None,
    api_key: Annotated[str, typer.Option(help="the key clients must present")] = "test-key",
    fault: Annotated[list[str] | None, typer.Option(help="scripted fault, e.g. rest:rate_limit:times=2 (repeatable)")] = None,
) -> None:
    """Serve a catalog as Polygon REST + WebSocket (loopback), optionally paced by a simulated clock."""
    from adapters.loopback import SandboxAddressError
    from adapters.polygon.sandbox import PolygonSandbox, SimClock, parse_fault
    from catalog.sessions import session_bounds

    store = _catalog_with_bars(catalog)
    symbols = store.symbols()
    begin = _start(start)
    try:
        faults = [parse_fault(spec) for spec in fault or []]
    except FaultSpecError as e:
        fail(str(e))
    clock = None
    if speed is not None:
        if begin is None:
            last = store.read_bars(symbols[0]).index[-1]
            begin = session_bounds(last - pd.Timedelta(minutes=1))[0]
        clock = SimClock.paced(start=begin, speed=speed)
    try:
        sandbox = PolygonSandbox(catalog, api_key=api_key, host=host, port=port, clock=clock, faults=faults).start()
    except SandboxAddressError as e:
        fail(str(e))
    shown_key = api_key if api_key == "test-key" else "(the one given)"
    console.print(f"Polygon sandbox over {catalog} ({len(symbols)} symbols): REST {sandbox.base_url}  "
                  f"WebSocket ws://{sandbox.ws_feed}/stocks  key {shown_key}")
    console.print(f"streaming from {ny(clock.now_ns(), '%Y-%m-%d %H:%M ET')} at {speed:g}x" if clock
                  else "no clock: REST serves all bars; the WebSocket streams nothing (use --speed)")
    console.print("Ctrl-C stops")
    sandbox.serve_forever()


@sandbox_app.command("alpaca")
def sandbox_alpaca(
    catalog: CatalogOpt = Path("data/catalog"),
    host: Host = "127.0.0.1",
    port: Port = 8766,
    cash: Annotated[float, typer.Option(callback=_cash, help="starting cash of the paper account")] = 100_000.0,
    participation: Annotated[float | None, typer.Option(callback=_fraction,
                                                        help="cap each fill at this share of a bar's volume")] = None,
    speed: Speed = None,
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
    from adapters.loopback import SandboxAddressError
    from adapters.polygon.sandbox import SimClock

    _catalog_with_bars(catalog)
    begin = _start(start)
    try:
        faults = [parse_alpaca_fault(spec) for spec in fault or []]
    except FaultSpecError as e:
        fail(str(e))
    market = CatalogMarket(catalog)
    begin = begin if begin is not None else first_session_open(market)
    clock = SimClock.paced(start=begin, speed=speed) if speed else SimClock.manual(begin)
    try:
        sandbox = AlpacaSandbox(market, host=host, port=port, starting_cash=cash, clock=clock,
                                participation=participation, faults=faults).start()
    except SandboxAddressError as e:
        fail(str(e))
    console.print(f"Alpaca sandbox over {catalog}: REST {sandbox.base_url}  stream {sandbox.stream_url}  "
                  "keys test-key / test-secret")
    console.print(f"simulated clock at {ny(sandbox.now_ns(), '%Y-%m-%d %H:%M ET')}; Ctrl-C stops")
    sandbox.serve_forever()

