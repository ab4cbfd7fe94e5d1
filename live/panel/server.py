"""PanelServer: the panel's aiohttp app on its own event loop in a background thread, so it
keeps answering while the main thread runs the schedule and the node trades on its own loop.

127.0.0.1 by default; another host needs ``allow_remote=True`` (``--panel-host`` with
``--panel-allow-remote``) (the command line warns): the token is the only thing between the page
and the account. The loop also runs the publisher: every ~0.1 s it sends the view's changed
topics and the control's status to the hub.
"""

import asyncio
import ipaddress
import logging
import threading
from typing import Self

from aiohttp import web

from live.panel.app import make_app
from live.panel.auth import PanelAuth
from live.panel.context import PanelContext

PUBLISH_SECS = 0.1
STATUS_SECS = 1.0


_log = logging.getLogger(__name__)


def _report_crash(task: asyncio.Task) -> None:
    """A publisher that died (a programming error) must not leave the pages silently stale."""
    if not task.cancelled() and task.exception() is not None:
        _log.error("the panel's %s stopped: pages no longer update", task.get_coro().__name__,
                   exc_info=task.exception())


class PanelStartError(Exception):
    """The panel cannot serve as asked (a host beyond loopback without the flag, a port in
    use); the message names the option."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class PanelServer:
    def __init__(self, ctx: PanelContext, host: str = "127.0.0.1", port: int = 8000,
                 allow_remote: bool = False) -> None:
        if not is_loopback(host) and not allow_remote:
            raise PanelStartError(f"--panel-host {host} is not loopback: anyone who can reach it and holds the "
                                  "token commands the account; add --panel-allow-remote to mean it")
        self.ctx = ctx
        self.host = host
        self.port = port
        self.auth = PanelAuth()
        self.token = self.auth.new_login_token()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sextant-panel", daemon=True)
        self.app: web.Application | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task] = []

    @property
    def url(self) -> str:
        """The login URL with the one-time token, as the terminal prints it."""
        return f"http://{self.host}:{self.port}/login?token={self.token}"

    def renew_login(self) -> str:
        """A fresh login URL (the previous token stops working, used or not): the token is
        spent at the first login, and a person whose session is gone (another browser,
        cookies cleared) must not have to restart a trading day to get back in."""
        self.token = self.auth.new_login_token()
        return self.url

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        except OSError as e:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            raise PanelStartError(f"--panel-port {self.port}: cannot listen on {self.host}:{self.port} "
                                  f"({e.strerror or e}); choose another port") from None
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        self.ctx.hub.bind(asyncio.get_running_loop())
        self.app = make_app(self.ctx, self.auth)
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            raise
        if self.port == 0:  # an ephemeral port (tests): the one the OS gave
            self.port = self._runner.addresses[0][1]
        self._tasks = [asyncio.create_task(self._publish_view()), asyncio.create_task(self._publish_status())]
        for task in self._tasks:
            task.add_done_callback(_report_crash)

    async def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.ctx.hub.close_streams()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _publish_view(self) -> None:
        while True:
            self.ctx.view.publish_due(self.ctx.hub.publish)
            await asyncio.sleep(PUBLISH_SECS)

    async def _publish_status(self) -> None:
        """The node's side of the status, read on the node's loop from a worker thread (a
        NodeThread.call blocks)."""
        while True:
            self.ctx.hub.publish("control", await asyncio.to_thread(self.ctx.control_payload))
            await asyncio.sleep(STATUS_SECS)
