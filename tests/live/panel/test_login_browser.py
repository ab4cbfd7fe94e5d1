"""Logging in, in Chromium: a page opened without the token lands on /login; the printed
token opens the panel once; the page's own POSTs carry the CSRF token and a forged one is
refused; a refusal shows its reason naming the field."""

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from live.control import TradingControl
from live.journal.rows import BarRow
from live.panel.browser import chromium
from live.panel.context import PanelContext
from live.panel.events import EventHub
from live.panel.live_view import LiveView
from live.panel.server import PanelServer
from live.settings import LiveConfig, ModelsSection

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[PanelServer, object]]:
    config = LiveConfig(universe=["S000"], models=ModelsSection(registry="unused"))
    ctx = PanelContext(config=config, journal=None, control=TradingControl(config), hub=EventHub(), view=LiveView())
    with PanelServer(ctx, port=0) as server, chromium() as browser:
        yield server, browser


def test_without_the_token_every_page_lands_on_login(served):
    server, browser = served
    page = browser.new_page()
    for path in ("/", "/trading", "/models", "/data"):
        page.goto(server.base_url + path)
        assert page.url == server.base_url + "/login", path
    expect(page.locator("h1")).to_have_text("Log in")
    page.close()


def test_the_token_logs_in_once_and_the_pages_posts_carry_the_csrf_token(served):
    server, browser = served
    server.token = server.auth.new_login_token()
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url)
    assert page.url == server.base_url + "/"
    page.click("#entries-off")  # panel.js sends the session's CSRF token
    expect(page.locator("#entries")).to_have_text("off")
    assert server.ctx.control.entries_enabled is False
    forged = page.request.post(server.base_url + "/api/control/entries", data={"enabled": True},
                               headers={"X-CSRF-Token": "forged"})
    assert forged.status == 403 and server.ctx.control.entries_enabled is False

    page.check("input[name=mode][value=live]")
    page.click("#mode-form button")  # live without the two confirmations
    expect(page.locator("#errors")).to_contain_text("real money needs --live and --i-understand-real-money")
    expect(page.locator("input[name=live]")).to_have_class("invalid")

    again = browser.new_context().new_page()
    again.goto(server.url)  # the same token, a second time
    assert again.url.startswith(server.base_url + "/login")
    expect(again.locator(".error")).to_contain_text("used already")
    context.close()


def test_a_silent_feed_shows_an_ever_older_last_bar(served):
    """The page ages the last bar itself: no update arrives while the feed is silent."""
    server, browser = served
    server.token = server.auth.new_login_token()
    page = browser.new_context().new_page()
    page.goto(server.url)
    arrived = time.time_ns() - 30 * 1_000_000_000
    server.ctx.view.put(BarRow(run_id="r", seq=1, ts_event=arrived, ts_init=arrived, instrument_id="S000.ALPACA",
                               open="1", high="1", low="1", close="1", volume="1"))
    expect(page.locator("#bars")).to_have_text("1")
    expect(page.locator("#last-bar-age")).to_have_text(re.compile(r"^3\d\.\d s ago$"))
