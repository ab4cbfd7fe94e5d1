"""Who may use the panel and what it sends: the real server on a loopback port, plain HTTP
(no browser needed for these). Without a session every page redirects to /login and every
API answers 401; the printed token works once; every POST needs the session's CSRF token;
a read-only panel refuses every command; no key reaches a page."""

from collections.abc import Iterator

import pytest
import requests

from live.control import TradingControl
from live.panel.app import make_app
from live.panel.context import PanelContext
from live.panel.events import EventHub
from live.panel.live_view import LiveView
from live.panel.server import PanelServer, PanelStartError
from live.settings import LiveConfig, ModelsSection

SECRETS = {"ALPACA_API_KEY_ID": "PKSECRETKEYID123", "ALPACA_API_SECRET_KEY": "very-secret-alpaca-value",
           "POLYGON_API_KEY": "polygon-secret-value", "SEXTANT_JOURNAL_DSN": "postgresql://u:dbpassword@h/db"}


def panel_context(control: bool) -> PanelContext:
    config = LiveConfig(universe=["S000"], models=ModelsSection(registry="unused"))
    return PanelContext(config=config, journal=None, control=TradingControl(config) if control else None,
                        hub=EventHub(), view=LiveView())


@pytest.fixture
def server(request, monkeypatch) -> Iterator[PanelServer]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    with PanelServer(panel_context(control=getattr(request, "param", True)), port=0) as served:
        yield served


def logged_in(server: PanelServer) -> requests.Session:
    session = requests.Session()
    assert session.get(server.url, timeout=5).status_code == 200
    return session


def get_routes() -> list[str]:
    """Every GET route of the app (pages and APIs), but the open ones and the event stream."""
    app = make_app(panel_context(control=True))
    paths = {r.resource.canonical for r in app.router.routes() if r.method == "GET"}
    return sorted(p for p in paths if p not in ("/login", "/api/events") and not p.startswith("/static"))


def csrf_of(session: requests.Session, server: PanelServer) -> str:
    page = session.get(server.base_url + "/", timeout=5).text
    return page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


@pytest.mark.parametrize("path", get_routes())
def test_without_a_session_pages_redirect_to_login_and_apis_answer_401(server, path: str):
    answer = requests.get(server.base_url + path, allow_redirects=False, timeout=5)
    if path.startswith("/api/"):
        assert answer.status_code == 401 and answer.json()["ok"] is False
    else:
        assert answer.status_code == 302 and answer.headers["Location"] == "/login"


def test_the_event_stream_needs_a_session_too(server):
    assert requests.get(server.base_url + "/api/events", timeout=5).status_code == 401


def test_the_token_works_once_and_gives_an_httponly_samesite_cookie(server):
    first = requests.get(server.url, allow_redirects=False, timeout=5)
    assert first.status_code == 302 and first.headers["Location"] == "/"
    cookie = first.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    again = requests.get(server.url, allow_redirects=False, timeout=5)
    assert again.status_code == 401 and "used already" in again.text
    assert requests.get(server.base_url + "/login?token=guessed", timeout=5).status_code == 401


def test_a_renewed_login_url_works_once_and_the_old_token_stops(server):
    old = server.url
    first = logged_in(server)  # the printed token, spent
    renewed = server.renew_login()  # what SIGUSR1 prints
    assert renewed != old and requests.get(old, allow_redirects=False, timeout=5).status_code == 401
    assert requests.get(renewed, allow_redirects=False, timeout=5).status_code == 302
    assert requests.get(renewed, allow_redirects=False, timeout=5).status_code == 401
    assert first.get(server.base_url + "/", allow_redirects=False, timeout=5).status_code == 200  # sessions stay


def test_every_post_needs_the_sessions_csrf_token(server):
    session = logged_in(server)
    url = server.base_url + "/api/control/entries"
    assert session.post(url, json={"enabled": False}, timeout=5).status_code == 403
    assert session.post(url, json={"enabled": False}, headers={"X-CSRF-Token": "forged"}, timeout=5).status_code == 403
    answer = session.post(url, json={"enabled": False}, headers={"X-CSRF-Token": csrf_of(session, server)}, timeout=5)
    assert answer.status_code == 200 and answer.json()["ok"] is True
    assert server.ctx.control.entries_enabled is False


def test_a_bad_value_is_refused_naming_the_field(server):
    session = logged_in(server)
    answer = session.post(server.base_url + "/api/control/entries", json={"enabled": "yes"},
                          headers={"X-CSRF-Token": csrf_of(session, server)}, timeout=5)
    assert answer.status_code == 400 and answer.json()["field"] == "enabled"


@pytest.mark.parametrize("server", [False], indirect=True)
def test_a_read_only_panel_refuses_every_command(server):
    session = logged_in(server)
    answer = session.post(server.base_url + "/api/control/emergency-stop", json={},
                          headers={"X-CSRF-Token": csrf_of(session, server)}, timeout=5)
    assert answer.status_code == 409 and "read-only" in answer.json()["error"]
    assert "Read-only panel" in session.get(server.base_url + "/trading", timeout=5).text


def test_security_headers_on_every_answer(server):
    session = logged_in(server)
    for path in [*get_routes(), "/login", "/static/panel.js"]:
        headers = session.get(server.base_url + path, timeout=5).headers
        assert headers["Content-Security-Policy"].startswith("default-src 'self'"), path
        assert headers["X-Frame-Options"] == "DENY" and headers["Cache-Control"] == "no-store", path
        assert headers["Referrer-Policy"] == "no-referrer", path


def test_no_secret_reaches_any_answer(server):
    session = logged_in(server)
    csrf = {"X-CSRF-Token": csrf_of(session, server)}
    bodies = [session.get(server.base_url + path, timeout=5).text for path in [*get_routes(), "/login"]]
    bodies.append(session.post(server.base_url + "/api/control/mode", json={"mode": "live", "live": True,
                                                                            "understood": True},
                               headers=csrf, timeout=5).text)
    for body in bodies:
        for value in SECRETS.values():
            assert value not in body
        assert "dbpassword" not in body


def test_a_host_beyond_loopback_needs_the_explicit_flag():
    with pytest.raises(PanelStartError, match="--panel-allow-remote"):
        PanelServer(panel_context(control=False), host="0.0.0.0", port=0)


def test_a_busy_port_is_one_message(server):
    with pytest.raises(PanelStartError, match=f"--panel-port {server.port}"), \
            PanelServer(panel_context(control=False), port=server.port):
        pass
