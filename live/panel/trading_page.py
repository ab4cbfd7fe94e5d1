"""The Trading page (/trading): positions (entry, stop, target, unrealised P&L, a close
button), today's orders and fills, the risk limits in force and the top signals."""

from aiohttp import web

from live.panel.context import PanelContext
from live.panel.pages import json_body, ok, perform, refused, render_page

TRADING_TOPICS = ("positions", "orders", "fills", "signals")


def routes(ctx: PanelContext) -> list[web.RouteDef]:
    async def page(request: web.Request) -> web.Response:
        return render_page(request, "trading.html", read_only=ctx.control is None,
                           **{topic: ctx.view.snapshot(topic) for topic in TRADING_TOPICS})

    async def api_trading(request: web.Request) -> web.Response:
        return ok(**{topic: ctx.view.snapshot(topic) for topic in TRADING_TOPICS})

    async def close(request: web.Request) -> web.Response:
        symbol = (await json_body(request)).get("symbol")
        if not isinstance(symbol, str) or not symbol:
            return refused(400, "'symbol' must name a stock", "symbol")
        return await perform(request, f"close {symbol}", lambda: ctx.control.close_position(symbol), symbol=symbol)

    return [web.get("/trading", page), web.get("/api/trading", api_trading),
            web.post("/api/trading/close", close)]
