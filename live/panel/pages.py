"""What every page module uses: the template environment, rendering with the session's CSRF
token, and the JSON answers of the panel's APIs (``{"ok": true, ...}`` or a 4xx
``{"ok": false, "error": ..., "field": ...}``)."""

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from live.control import ControlRefused
from live.panel.auth import csrf_token
from live.panel.context import PanelContext

_NEW_YORK = ZoneInfo("America/New_York")
CONTEXT = web.AppKey("panel_context", PanelContext)
PANEL_TEMPLATES = web.AppKey("panel_templates", jinja2.Environment)
TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


def template_env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["clock"] = clock
    return env


def clock(ts_ns: int) -> str:
    """Exchange time of a UTC nanosecond stamp (HH:MM:SS, New York), as panel.js shows it."""
    return datetime.fromtimestamp(ts_ns / 1e9, _NEW_YORK).strftime("%H:%M:%S")


def render_page(request: web.Request, template: str, *, status: int = 200, **context) -> web.Response:
    """``template`` with ``context``, the CSRF token of the session (empty on /login) and the
    path (the nav marks the current page)."""
    html = request.app[PANEL_TEMPLATES].get_template(template).render(
        csrf_token=csrf_token(request), path=request.path, **context)
    return web.Response(text=html, content_type="text/html", status=status)


def ok(**fields) -> web.Response:
    return web.json_response({"ok": True, **fields})


def refused(status: int, error: str, field: str | None = None) -> web.Response:
    return web.json_response({"ok": False, "error": error, "field": field}, status=status)


async def json_body(request: web.Request) -> dict:
    """The POST's JSON object (400 names what is wrong with it)."""
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text='{"ok": false, "error": "the body is not JSON"}',
                                 content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"ok": false, "error": "the body must be a JSON object"}',
                                 content_type="application/json")
    return body


async def perform(request: web.Request, action: str, command: Callable[[], Any], **details) -> web.Response:
    """Run ``command`` (a TradingControl call: it blocks on the node's loop) off the panel's
    loop, journal it as ``action`` with its outcome, answer ok or 409 with the reason."""
    ctx = request.app[CONTEXT]

    def run() -> tuple[Any, ControlRefused | None]:
        try:
            result = command()
        except ControlRefused as e:
            ctx.record_action(action, f"refused: {e}", details)
            return None, e
        outcome = result.get("message", "done") if isinstance(result, dict) else (result or "done")
        ctx.record_action(action, outcome, details)
        return result, None

    result, refusal = await asyncio.to_thread(run)
    if refusal is not None:
        return refused(409, str(refusal), refusal.field)
    return ok(result=result)
