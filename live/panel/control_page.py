"""The Control page (/): trading on/off, the node, paper/live, the emergency stop, and the
day's status (feed, broker stream, engine state, models, equity, day P&L, positions)."""

import asyncio

from aiohttp import web

from live.panel.context import PanelContext
from live.panel.pages import json_body, ok, perform, refused, render_page


def routes(ctx: PanelContext) -> list[web.RouteDef]:
    async def page(request: web.Request) -> web.Response:
        control = await asyncio.to_thread(ctx.control_payload)
        return render_page(request, "control.html", view=ctx.view.snapshot("status"), read_only=ctx.control is None,
                           **control)

    async def api_status(request: web.Request) -> web.Response:
        return ok(status=ctx.view.snapshot("status"), **await asyncio.to_thread(ctx.control_payload))

    async def entries(request: web.Request) -> web.Response:
        enabled = (await json_body(request)).get("enabled")
        if not isinstance(enabled, bool):
            return refused(400, "'enabled' must be true or false", "enabled")
        return await _then_status(ctx, await perform(
            request, "entries on" if enabled else "entries off", lambda: ctx.control.entries(enabled)))

    async def emergency(request: web.Request) -> web.Response:
        return await _then_status(ctx, await perform(request, "emergency stop", ctx.control.emergency_stop))

    async def node(request: web.Request) -> web.Response:
        action = (await json_body(request)).get("action")
        if action not in ("stop", "start"):
            return refused(400, "'action' must be stop or start", "action")
        command = ctx.control.stop_node if action == "stop" else ctx.control.start_node
        return await _then_status(ctx, await perform(request, f"node {action}", command))

    async def mode(request: web.Request) -> web.Response:
        body = await json_body(request)
        wanted, live_flag, understood = body.get("mode"), body.get("live", False), body.get("understood", False)
        if not isinstance(live_flag, bool) or not isinstance(understood, bool):
            return refused(400, "'live' and 'understood' must be true or false", "live")
        return await _then_status(ctx, await perform(
            request, f"mode {wanted}", lambda: ctx.control.request_mode(str(wanted), live_flag=live_flag,
                                                                         understood=understood),
            live=live_flag, understood=understood))

    return [web.get("/", page), web.get("/api/status", api_status),
            web.post("/api/control/entries", entries), web.post("/api/control/emergency-stop", emergency),
            web.post("/api/control/node", node), web.post("/api/control/mode", mode)]


async def _then_status(ctx: PanelContext, response: web.Response) -> web.Response:
    """Pages see the command's effect at once, not at the next status tick."""
    ctx.hub.publish("control", await asyncio.to_thread(ctx.control_payload))
    return response
