"""The life of a loopback sandbox server: an aiohttp app on its own event loop in a
background thread, started and stopped from the caller's thread, or served until Ctrl-C.

Both vendor sandboxes (Polygon, Alpaca) are one of these; each says what to build on
start-up (``_startup``) and how to wind down (``_shutdown``)."""

import asyncio
import os
import signal
import threading
from collections.abc import Coroutine
from typing import Any, Self, TypeVar

from aiohttp import web

T = TypeVar("T")
START_TIMEOUT_SECS = 30.0
CALL_TIMEOUT_SECS = 120.0


class SandboxAddressError(OSError):
    """The sandbox cannot listen where it was asked (port in use, address not local)."""


class LoopbackServer:
    name = "sandbox"

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def _startup(self) -> None:
        raise NotImplementedError

    async def _shutdown(self) -> None:
        raise NotImplementedError

    async def _listen(
        self, app: web.Application, host: str, port: int, runner_class: type[web.AppRunner] = web.AppRunner
    ) -> web.AppRunner:
        """Serve ``app`` on ``host:port`` (0 = a free port); a bind failure names the address."""
        runner = runner_class(
            app, handle_signals=False, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise SandboxAddressError(f"the {self.name} sandbox cannot listen on {host}:{port}: {reason}") from exc
        return runner

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError(f"the {self.name} sandbox is already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run_loop, args=(ready, failure), name=f"{self.name.lower()}-sandbox", daemon=True
        )
        self._thread.start()
        if not ready.wait(START_TIMEOUT_SECS):
            raise TimeoutError(f"the {self.name} sandbox did not start in time")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Wind down (``_shutdown``), stop the loop and join its thread. Safe to call twice."""
        if self._thread is None or self._loop is None:
            return
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(CALL_TIMEOUT_SECS)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._thread = None

    def serve_forever(self) -> None:
        """Serve until Ctrl-C or SIGTERM, then stop cleanly (for the CLI). Starts the sandbox
        unless the caller already did (e.g. to print its URLs first)."""
        stop = threading.Event()
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, lambda *_: stop.set())
        if self._thread is None:
            self.start()
        try:
            while not stop.wait(0.5) and self._thread is not None and self._thread.is_alive():
                pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.stop()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the sandbox's loop from another thread and wait for its result."""
        if self._loop is None or not self._loop.is_running():
            coro.close()
            raise RuntimeError(f"the {self.name} sandbox is not started")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("this would deadlock: call it from another thread than the sandbox's")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(CALL_TIMEOUT_SECS)

    def _run_loop(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # noqa: BLE001 - re-raised by the starting thread
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        loop.run_forever()
