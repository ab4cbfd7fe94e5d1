"""What both live clients do when they connect: keep the reason a connect failed.

NautilusTrader 1.221 only logs a failed ``_connect`` and then waits out its connect timeout,
so a rejected key would look like a slow start. A client built on this keeps the exception in
``connect_error``; ``live.node`` fails the start at once with it."""


class KeepsConnectError:
    """Mixin for a NautilusTrader live client whose connection work lives in ``_open``."""

    connect_error: Exception | None = None

    async def _open(self) -> None:
        raise NotImplementedError

    async def _connect(self) -> None:
        try:
            await self._open()
        except Exception as exc:
            self.connect_error = exc
            raise
