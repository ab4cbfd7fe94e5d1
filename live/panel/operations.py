"""What the Models and Data pages need beside their routes, mounted with the app
(``mount_operations``): the context's job runner and row listeners (the models' live scores,
the feed monitor), the run's trading day, and the background publisher of their topics
("feed" about once a second, "models" when a signal's score changed), run on the panel's loop
for as long as the app (an aiohttp cleanup context: started with it, cancelled with it)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import date

import pandas as pd
from aiohttp import web

from live.operations.feed import FeedMonitor
from live.operations.jobs import JobRunner
from live.operations.listeners import listener_of, operation_listeners
from live.operations.model_scores import ModelScores
from live.panel.context import PanelContext

OPERATIONS_SECS = 1.0


def trading_day(ctx: PanelContext) -> date:
    """The run's trading day (a rehearsal's replayed one), else today in New York."""
    return ctx.view.trading_day() or pd.Timestamp.now(tz="America/New_York").date()


def mount_operations(app: web.Application, ctx: PanelContext) -> None:
    """Give ``ctx`` a job runner and the operations' row listeners unless whoever built it did
    (the listener list is the one the panel's sink and poller fan out to), and run the
    publisher with ``app``."""
    if ctx.jobs is None:
        ctx.jobs = JobRunner(ctx.hub.publish)
    if listener_of(ctx.row_listeners, ModelScores) is None:
        ctx.row_listeners.extend(operation_listeners(ctx.config, ctx.control))
    app.cleanup_ctx.append(operations_publisher(ctx))


def operations_publisher(ctx: PanelContext) -> Callable[[web.Application], AsyncIterator[None]]:
    async def publishing(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_publish(ctx))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return publishing


async def _publish(ctx: PanelContext) -> None:
    feed = listener_of(ctx.row_listeners, FeedMonitor)
    scores = listener_of(ctx.row_listeners, ModelScores)
    while True:
        if feed is not None:  # the sample blocks on the node's loop: off the panel's
            await asyncio.to_thread(feed.publish_sample, ctx.hub.publish)
        if scores is not None:
            await asyncio.to_thread(scores.publish_if_changed, ctx.hub.publish)
        await asyncio.sleep(OPERATIONS_SECS)
