"""The Data page (/data): the feed monitor (messages/s, gaps, reconnects, backfills, the last
bar's age; topic "feed" about once a second), the historical catalog's coverage per symbol,
and an incremental ingest started by hand with its progress (topic "jobs").

Reading the coverage opens every symbol's bar files (a quarter of a second for 50 symbols), so
the page is served with the coverage read last and the script reads it afresh at once
(/api/data/coverage), as it does when an ingest ends; a read is reused for
``COVERAGE_FRESH_SECS`` unless an ingest ended since (pages opened in a row read it once)."""

import asyncio
import time
from datetime import date, timedelta
from pathlib import Path

from aiohttp import web

from catalog.errors import CatalogError
from catalog.sessions import sessions_ending
from live.operations.coverage import catalog_coverage
from live.operations.day_jobs import INGEST, ingest_job
from live.operations.feed import TOPIC as FEED_TOPIC
from live.operations.feed import FeedMonitor
from live.operations.jobs import JobRunningError
from live.operations.listeners import listener_of
from live.panel.context import PanelContext
from live.panel.operations import trading_day
from live.panel.pages import ok, refused, render_page

COVERAGE_FRESH_SECS = 10.0


def coverage_state(catalog: Path | None, day: date) -> dict:
    """The catalog's coverage up to the session before ``day`` (what pre-open ingests to)."""
    if catalog is None:
        return {"catalog": None, "through": None, "symbols": [], "error": "no catalog ('schedule.catalog' unset)"}
    through = sessions_ending(day - timedelta(days=1), 1).index[-1].date()
    try:
        symbols = [c.payload() for c in catalog_coverage(catalog, through=through)]
    except CatalogError as e:
        return {"catalog": str(catalog), "through": through.isoformat(), "symbols": [], "error": str(e)}
    return {"catalog": str(catalog), "through": through.isoformat(), "symbols": symbols, "error": None}


def feed_state(ctx: PanelContext) -> dict | None:
    """The publisher's newest sample (a page load does not wait on a busy node's loop, nor
    moves the messages/s baseline); before its first, a sample of the monitor's own (blocking:
    reads the node). None without a monitor."""
    latest = ctx.hub.latest(FEED_TOPIC)
    if latest is not None:
        return latest
    feed = listener_of(ctx.row_listeners, FeedMonitor)
    return None if feed is None else feed.sample()


def routes(ctx: PanelContext) -> list[web.RouteDef]:
    # (catalog, trading day) -> (when read, the last ingest's end then, the coverage)
    last_read: dict[tuple[Path | None, date], tuple[float, str | None, dict]] = {}

    def last_ingest_end() -> str | None:
        job = None if ctx.jobs is None else ctx.jobs.status(INGEST)
        return None if job is None else job.finished

    async def page(request: web.Request) -> web.Response:
        feed = await asyncio.to_thread(feed_state, ctx)
        read = last_read.get((ctx.catalog, trading_day(ctx)))
        coverage = read[2] if read else {"catalog": None if ctx.catalog is None else str(ctx.catalog),
                                         "through": None, "symbols": [], "error": None}
        job = None if ctx.jobs is None else ctx.jobs.status(INGEST)
        return render_page(request, "data.html", read_only=ctx.control is None, feed=feed, coverage=coverage,
                           job=None if job is None else job.payload(),
                           can_ingest=ctx.config is not None and ctx.catalog is not None)

    async def api_feed(request: web.Request) -> web.Response:
        return ok(feed=await asyncio.to_thread(feed_state, ctx))

    async def api_coverage(request: web.Request) -> web.Response:
        key, ingested = (ctx.catalog, trading_day(ctx)), last_ingest_end()
        read = last_read.get(key)
        if read is None or read[1] != ingested or time.monotonic() - read[0] > COVERAGE_FRESH_SECS:
            read = last_read[key] = (time.monotonic(), ingested, await asyncio.to_thread(coverage_state, *key))
        return ok(**read[2])

    async def ingest(request: web.Request) -> web.Response:
        if ctx.config is None or ctx.catalog is None:
            return refused(409, "no catalog to ingest into ('schedule.catalog' in the live config)")
        day = trading_day(ctx)
        try:
            status = ctx.jobs.start(ingest_job(ctx.config, ctx.catalog, day))
        except JobRunningError as e:
            await asyncio.to_thread(ctx.record_action, "ingest", f"refused: {e}", {})
            return refused(409, str(e))
        await asyncio.to_thread(ctx.record_action, "ingest", "started", {"before": day.isoformat(), "catalog": str(ctx.catalog)})
        return ok(job=status.payload())

    return [web.get("/data", page), web.get("/api/feed", api_feed), web.get("/api/data/coverage", api_coverage),
            web.post("/api/data/ingest", ingest)]
