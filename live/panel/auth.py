"""Who may use the panel: a one-time login token, then a session cookie and a CSRF token.

The terminal prints ``/login?token=...`` once; the first request with it gets a session
(cookie HttpOnly, SameSite=Strict, the token is spent) and is redirected to ``/`` so the token
leaves the address bar. Every other request needs the session: pages redirect to /login,
``/api/*`` answers 401 JSON. Every POST must carry the session's CSRF token (header
``X-CSRF-Token`` or form field ``csrf_token``), else 403: SameSite already stops other sites
sending the cookie; the token also stops a same-site page or a forged form.
"""

import hmac
import secrets
import threading

from aiohttp import web

COOKIE = "sextant_panel_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_OPEN_PATHS = ("/login", "/static/")
_SESSION = web.RequestKey("panel_session", tuple)


class PanelAuth:
    """The login token (one at a time, spent on first use) and the sessions it opened."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: str | None = None
        self._sessions: dict[str, str] = {}  # session id -> its CSRF token

    def new_login_token(self) -> str:
        """A fresh one-time token (the previous one, if unused, stops working)."""
        with self._lock:
            self._token = secrets.token_urlsafe(24)
            return self._token

    def login(self, token: str) -> str | None:
        """A new session id for the current token, which is spent; None if it is not it."""
        with self._lock:
            if self._token is None or not hmac.compare_digest(token.encode(), self._token.encode()):
                return None
            self._token = None
            session = secrets.token_urlsafe(32)
            self._sessions[session] = secrets.token_urlsafe(32)
            return session

    def csrf_of(self, session: str | None) -> str | None:
        with self._lock:
            return None if session is None else self._sessions.get(session)


AUTH = web.AppKey("panel_auth", PanelAuth)


def csrf_token(request: web.Request) -> str:
    """The CSRF token of the request's session (pages put it in a meta tag for panel.js);
    empty on the pages open without a session (/login)."""
    session = request.get(_SESSION)
    return "" if session is None else session[1]


def start_session(response: web.StreamResponse, session: str) -> None:
    response.set_cookie(COOKIE, session, httponly=True, samesite="Strict", path="/")


def _refuse(request: web.Request, status: int, error: str) -> web.StreamResponse:
    if request.path.startswith("/api/") or request.method != "GET":
        return web.json_response({"ok": False, "error": error}, status=status)
    raise web.HTTPFound("/login")


@web.middleware
async def auth_middleware(request: web.Request, handler) -> web.StreamResponse:
    if request.path.startswith(_OPEN_PATHS):
        return await handler(request)
    auth = request.app[AUTH]
    session = request.cookies.get(COOKIE)
    csrf = auth.csrf_of(session)
    if csrf is None:
        return _refuse(request, 401, "not logged in: open the URL with the token the terminal printed")
    if request.method not in ("GET", "HEAD"):
        given = request.headers.get(CSRF_HEADER)
        if given is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            given = (await request.post()).get(CSRF_FIELD)
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), csrf.encode()):
            return web.json_response({"ok": False, "error": "missing or wrong CSRF token"}, status=403)
    request[_SESSION] = (session, csrf)
    return await handler(request)
