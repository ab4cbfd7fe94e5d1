"""make_app: the panel's aiohttp application (pages, APIs, SSE, static files, security).

Security headers on every answer: a Content-Security-Policy of "default-src 'self'" (no
inline script, nothing from the network), no framing, no caching (pages hold positions), no
referrer (the login URL carries the token). A read-only panel (no ``ctx.control``) answers
every POST 409.
"""

from aiohttp import web

from live.panel import control_page, data_page, models_page, trading_page
from live.panel.auth import AUTH, PanelAuth, auth_middleware, start_session
from live.panel.context import PanelContext
from live.panel.events import HUB, sse_handler
from live.panel.operations import mount_operations
from live.panel.pages import CONTEXT, PANEL_TEMPLATES, STATIC_DIR, render_page, template_env

PAGE_MODULES = (control_page, trading_page, models_page, data_page)
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@web.middleware
async def security_headers(request: web.Request, handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as e:  # redirects and refusals carry the headers too
        e.headers.update(_HEADERS)
        raise
    if not response.prepared:
        response.headers.update(_HEADERS)
    return response


@web.middleware
async def read_only(request: web.Request, handler) -> web.StreamResponse:
    if request.method == "POST" and request.app[CONTEXT].control is None:
        return web.json_response({"ok": False, "error": "read-only panel: it watches a journal, no node to command"},
                                 status=409)
    return await handler(request)


async def login(request: web.Request) -> web.StreamResponse:
    """GET /login?token=...: a session for the printed token (spent), then to /; without a
    token the form (it GETs the same URL)."""
    token = request.query.get("token")
    if token is None:
        return render_page(request, "login.html", error=None)
    session = request.app[AUTH].login(token)
    if session is None:
        return render_page(request, "login.html", status=401,
                           error="This token is wrong or was used already. Restart the panel for a new one.")
    response = web.HTTPFound("/")
    start_session(response, session)
    raise response


def make_app(ctx: PanelContext, auth: PanelAuth | None = None) -> web.Application:
    app = web.Application(middlewares=[security_headers, auth_middleware, read_only])
    app[CONTEXT] = ctx
    app[HUB] = ctx.hub
    app[AUTH] = auth or PanelAuth()
    app[PANEL_TEMPLATES] = template_env()
    app.router.add_get("/login", login)
    app.router.add_get("/api/events", sse_handler)
    app.router.add_static("/static/", STATIC_DIR)
    for module in PAGE_MODULES:
        app.router.add_routes(module.routes(ctx))
    mount_operations(app, ctx)  # the Models and Data pages' jobs, listeners and topics
    return app
