"""Alpaca REST through the official ``alpaca-py`` SDK, made safe for an event loop.

alpaca-py's ``TradingClient`` is synchronous (requests), has no timeout, and retries 429/504
itself with a fixed 3 s sleep that ignores Retry-After. Here:

- every call runs on a worker thread of this client's own pool, never on the event loop;
  the pool is private so stalled calls cannot starve the loop's default executor, which
  other components share;
- every call has a hard timeout (``asyncio.wait_for``). The SDK gives no way to abort a
  request, so a timed-out call's worker thread stays blocked until the server answers or
  closes the connection; the caller is released at once and sees ``AlpacaTimeoutError``;
- the SDK's own retry is switched off (``_SingleShotTradingClient``) and replaced by one
  policy: 429, 5xx, connection errors and timeouts are retried with exponential backoff and
  jitter, a 429's Retry-After honoured; when retries run out the caller gets
  ``AlpacaRequestError`` naming the request and the last failure;
- POST /orders is retried only with the same body, so the same ``client_order_id``: if an
  earlier attempt did reach Alpaca, the retry is answered 422 "duplicate", which means the
  order went through, and it is fetched by its client_order_id instead;
- Alpaca's error answers become typed exceptions (403 ``AlpacaForbiddenError``, e.g.
  insufficient buying power; 404 ``AlpacaNotFoundError``; 422 ``AlpacaUnprocessableError``;
  401 ``AlpacaAuthError``) carrying Alpaca's code and message.

POST /orders alone goes over keep-alive connections on the event loop (``order_http``), with
the same timeout, retry and error policy and the same REST shapes: it is the latency-critical
call (a bar that closes for 50 symbols at once makes 50 of them), and through the synchronous
SDK each costs about 1.5 ms of interpreter time in a worker thread contending for the GIL, so
the 50th order waited ~100 ms; on the loop, each written the moment its task runs, it is a
fraction of that (``sextant bench --part live``). Every other call keeps the SDK.

Responses are raw JSON (``raw_data=True``): dicts with money and quantities still strings.
The key pair is handed to the SDK (and the order session's headers) and never logged.
"""

import asyncio
import functools
import json
import random
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import msgspec
import pandas as pd
import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import AssetClass, AssetStatus, QueryOrderStatus
from alpaca.trading.requests import GetAssetsRequest, GetOrderByIdRequest, GetOrdersRequest
from nautilus_trader.common.component import Logger

from adapters.alpaca.common import AlpacaCredentials
from adapters.alpaca.config import AlpacaExecClientConfig
from adapters.alpaca.order_http import HttpConnectionError, KeepAliveClient
from adapters.alpaca.parsing.wire import retry_after_secs

DUPLICATE_CLIENT_ORDER_ID_CODE = 40010001
ORDERS_PAGE_LIMIT = 500  # Alpaca's maximum
ACTIVITIES_PAGE_SIZE = 100
_TRANSPORT_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class AlpacaError(Exception):
    """Base of everything this client raises about a request."""


class AlpacaApiError(AlpacaError):
    """Alpaca answered with an error status; ``code``/``message`` from its JSON body."""

    def __init__(self, request: str, status: int, code: int | None, message: str) -> None:
        super().__init__(f"{request}: HTTP {status} (code {code}): {message}")
        self.request = request
        self.status = status
        self.code = code
        self.message = message


class AlpacaAuthError(AlpacaApiError):
    """401: the key pair was rejected. Retrying cannot help."""


class AlpacaForbiddenError(AlpacaApiError):
    """403: e.g. insufficient buying power (code 40310000) or a restricted account."""


class AlpacaNotFoundError(AlpacaApiError):
    """404: no such order, position or asset."""


class AlpacaUnprocessableError(AlpacaApiError):
    """422: the request is invalid (bad field, order not cancelable, duplicate id...)."""

    @property
    def is_duplicate_client_order_id(self) -> bool:
        text = self.message.lower()
        return (
            self.code == DUPLICATE_CLIENT_ORDER_ID_CODE
            and "client_order_id" in text
            and ("unique" in text or "duplicate" in text or "already" in text)
        )


class AlpacaRequestError(AlpacaError):
    """No usable answer: 429/5xx/connection failures/timeouts outlasted the retries."""


class AlpacaTimeoutError(AlpacaRequestError):
    """The last attempt got no answer within ``request_timeout_secs``."""


class _Retryable(Exception):
    """A transient failure of one attempt; ``reason`` without the request label."""

    def __init__(
        self, reason: str, retry_after: float | None = None, timeout: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.timeout = timeout


class _SingleShotTradingClient(TradingClient):
    """alpaca-py's TradingClient with its built-in 429/504 retry switched off, and its
    requests session told not to read the process environment.

    The SDK's ``RESTClient`` retries the status codes in ``_retry_codes`` with a fixed sleep
    on the calling thread; ``TradingClient`` does not expose the list, so it is emptied here
    (tests/adapters/alpaca/test_http.py checks a 429 reaches this module immediately).
    A requests session that trusts the environment scans every variable for proxy settings
    (and reads ~/.netrc) on every request: about 2 ms of interpreter time an order here, the
    largest cost on the order path (`sextant bench`). Orders go to the configured endpoint
    directly; no proxy or netrc credentials are picked up from the environment."""

    def __init__(self, credentials: AlpacaCredentials, paper: bool, base_url: str) -> None:
        super().__init__(
            api_key=credentials.key_id,
            secret_key=credentials.secret_key,
            paper=paper,
            raw_data=True,
            url_override=base_url,
        )
        self._retry_codes = []
        self._session.trust_env = False


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Exponential backoff with equal jitter (half fixed, half random)."""
    step = min(maximum, initial * (2 ** min(attempt, 32)))
    return step / 2 + rng.uniform(0, step / 2)


class AlpacaHttpClient:
    """The Trading API calls the execution client and the instrument provider need."""

    def __init__(
        self,
        credentials: AlpacaCredentials,
        config: AlpacaExecClientConfig,
        logger: Logger | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = config.base_url.rstrip("/")
        self._sdk = _SingleShotTradingClient(credentials, config.paper, self.base_url)
        self._order_headers = {
            "APCA-API-KEY-ID": credentials.key_id,
            "APCA-API-SECRET-KEY": credentials.secret_key,
        }
        self._orders: KeepAliveClient | None = None
        self._orders_loop: asyncio.AbstractEventLoop | None = None
        self._executor = ThreadPoolExecutor(config.http_workers, thread_name_prefix="alpaca-http")
        self._order_connections = config.order_connections
        self._timeout = config.request_timeout_secs
        self._max_retries = config.max_retries
        self._delays = (config.retry_initial_delay_secs, config.retry_max_delay_secs)
        self._log = logger or Logger(type(self).__name__)
        self._sleep = sleep
        self._rng = rng or random.Random()

    def close(self) -> None:
        """Release the worker pool; a thread stuck on a stalled server is not waited for."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def close_order_session(self) -> None:
        """Close the order connections (a later order opens new ones)."""
        if self._orders is not None:
            await self._orders.close()
            self._orders = None

    # -- account, positions --------------------------------------------------------------

    async def get_account(self) -> dict:
        return await self._request("GET /account", self._sdk.get_account)

    async def get_positions(self) -> list[dict]:
        return await self._request("GET /positions", self._sdk.get_all_positions)

    async def get_clock(self) -> dict:
        return await self._request("GET /clock", self._sdk.get_clock)

    async def get_position(self, symbol: str) -> dict | None:
        """The open position in ``symbol``; None when flat (Alpaca answers 404)."""
        try:
            return await self._request(
                f"GET /positions/{symbol}", self._sdk.get_open_position, symbol
            )
        except AlpacaNotFoundError:
            return None

    # -- orders ----------------------------------------------------------------------------

    async def submit_order(self, body: dict) -> dict:
        """POST /orders, idempotent through ``body["client_order_id"]`` (required)."""
        client_order_id = body.get("client_order_id")
        if not client_order_id:
            raise ValueError("an order body needs a client_order_id (it makes retries safe)")
        label = f"POST /orders {client_order_id}"
        return await self._retrying(
            label,
            lambda: self._post_order(label, body),
            on_duplicate=lambda: self._existing_order(client_order_id),
        )

    async def _post_order(self, label: str, body: dict) -> dict:
        orders = self._orders_on_this_loop()
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for runs the request in a task of its
            # own, queued behind every order of the burst, and its bytes left after all of them
            async with asyncio.timeout(self._timeout):
                response = await orders.request("POST", "/v2/orders", msgspec.json.encode(body))
        except TimeoutError:
            raise _Retryable(f"no answer within {self._timeout:g}s", timeout=True) from None
        except HttpConnectionError as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        text = response.body.decode("utf-8", errors="replace")
        if response.status == 200:
            return json.loads(text)
        raise _classify_status(label, response.status, text, retry_after_secs(response.headers.get("retry-after")))

    async def open_order_connections(self, n: int) -> None:
        """Connect ``n`` order connections (at most ``order_connections``) ahead of the
        first burst; one that cannot connect now connects when an order needs it."""
        try:
            await asyncio.wait_for(self._orders_on_this_loop().open_connections(n), self._timeout)
        except (HttpConnectionError, TimeoutError) as exc:
            self._log.warning(f"Order connections not opened ahead ({exc}); orders will connect as they go")

    def _orders_on_this_loop(self) -> KeepAliveClient:
        """Order connections per event loop: a factory-cached client outlives a node's loop
        (tests build several nodes), and connections belong to the loop they were made on."""
        loop = asyncio.get_running_loop()
        if self._orders is None or self._orders_loop is not loop:
            self._orders = KeepAliveClient(self.base_url, self._order_headers, self._order_connections)
            self._orders_loop = loop
        return self._orders

    async def _existing_order(self, client_order_id: str) -> dict:
        order = await self.get_order_by_client_id(client_order_id)
        if order is None:
            raise AlpacaRequestError(
                f"POST /orders {client_order_id}: Alpaca called it a duplicate but has no such order"
            )
        self._log.info(f"Order {client_order_id} had already reached Alpaca on an earlier attempt")
        return order

    async def get_order(self, order_id: str) -> dict | None:
        """One order with its legs; None when Alpaca does not know the id."""
        try:
            return await self._request(
                f"GET /orders/{order_id}",
                self._sdk.get_order_by_id,
                order_id,
                GetOrderByIdRequest(nested=True),
            )
        except AlpacaNotFoundError:
            return None

    async def get_order_by_client_id(self, client_order_id: str) -> dict | None:
        try:
            return await self._request(
                f"GET /orders:by_client_order_id {client_order_id}",
                self._sdk.get_order_by_client_id,
                client_order_id,
            )
        except AlpacaNotFoundError:
            return None

    async def list_orders(
        self,
        status: str = "all",
        after: datetime | None = None,
        symbols: list[str] | None = None,
        nested: bool = True,
    ) -> list[dict]:
        """Every order submitted after ``after`` (all pages), legs nested in their parent
        (``nested=False``: legs listed as orders of their own, by their own status)."""
        orders: dict[str, dict] = {}
        until: datetime | None = None
        while True:
            request = GetOrdersRequest(
                status=QueryOrderStatus(status),
                limit=ORDERS_PAGE_LIMIT,
                after=after,
                until=until,
                direction=Sort.DESC,
                nested=nested,
                symbols=symbols,
            )
            page = await self._request(
                f"GET /orders status={status}", self._sdk.get_orders, request
            )
            new = [o for o in page if o["id"] not in orders]
            orders.update((o["id"], o) for o in new)
            if len(page) < ORDERS_PAGE_LIMIT or not new:
                return list(orders.values())
            until = pd.Timestamp(min(o["submitted_at"] for o in page)).to_pydatetime()

    async def replace_order(self, order_id: str, body: dict) -> dict:
        """PATCH /orders/{id}: Alpaca answers with the NEW order (new id, ``replaces``)."""
        return await self._request(
            f"PATCH /orders/{order_id}", self._sdk.patch, f"/orders/{order_id}", body
        )

    async def cancel_order(self, order_id: str) -> None:
        await self._request(f"DELETE /orders/{order_id}", self._sdk.cancel_order_by_id, order_id)

    async def fill_activities(self, after: datetime | None = None) -> list[dict]:
        """Executions (GET /account/activities/FILL, all pages, oldest first). alpaca-py
        has no method for it; its generic ``get`` sends the request the same way."""
        activities: list[dict] = []
        params: dict[str, Any] = {"direction": "asc", "page_size": ACTIVITIES_PAGE_SIZE}
        if after is not None:
            params["after"] = after.isoformat()
        while True:
            page = await self._request(
                "GET /account/activities/FILL",
                self._sdk.get,
                "/account/activities/FILL",
                dict(params),
            )
            activities.extend(page)
            if len(page) < ACTIVITIES_PAGE_SIZE:
                return activities
            params["page_token"] = page[-1]["id"]

    # -- assets ----------------------------------------------------------------------------

    async def list_assets(self) -> list[dict]:
        request = GetAssetsRequest(status=AssetStatus.ACTIVE, asset_class=AssetClass.US_EQUITY)
        return await self._request("GET /assets", self._sdk.get_all_assets, request)

    async def get_asset(self, symbol: str) -> dict | None:
        try:
            return await self._request(f"GET /assets/{symbol}", self._sdk.get_asset, symbol)
        except AlpacaNotFoundError:
            return None

    # -- transport -------------------------------------------------------------------------

    async def _request(
        self,
        label: str,
        fn: Callable[..., Any],
        *args: Any,
        on_duplicate: Callable[[], Awaitable[Any]] | None = None,
    ) -> Any:
        """``fn(*args)`` on the pool, retried on transient failures (see the module doc)."""
        return await self._retrying(label, lambda: self._attempt(label, fn, *args), on_duplicate)

    async def _retrying(
        self,
        label: str,
        attempt_once: Callable[[], Awaitable[Any]],
        on_duplicate: Callable[[], Awaitable[Any]] | None = None,
    ) -> Any:
        attempt = 0
        while True:
            try:
                return await attempt_once()
            except _Retryable as retry:
                if attempt >= self._max_retries:
                    error = AlpacaTimeoutError if retry.timeout else AlpacaRequestError
                    raise error(
                        f"{label}: gave up after {attempt + 1} attempts: {retry.reason}"
                    ) from None
                delay = retry.retry_after
                if delay is None:
                    delay = backoff_delay(attempt, *self._delays, self._rng)
                attempt += 1
                self._log.warning(
                    f"{label}: {retry.reason}; retry {attempt}/{self._max_retries} in {delay:.2f}s"
                )
                await self._sleep(delay)
            except AlpacaUnprocessableError as exc:
                if on_duplicate is not None and attempt > 0 and exc.is_duplicate_client_order_id:
                    return await on_duplicate()
                raise

    async def _attempt(self, label: str, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, functools.partial(fn, *args))
        try:
            return await asyncio.wait_for(future, self._timeout)
        except TimeoutError:
            raise _Retryable(f"no answer within {self._timeout:g}s", timeout=True) from None
        except APIError as exc:
            raise _classify(label, exc) from None
        except _TRANSPORT_ERRORS as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None


def _classify(label: str, exc: APIError) -> Exception:
    response = exc.response
    retry_after = retry_after_secs(response.headers.get("Retry-After")) if response is not None else None
    return _classify_status(label, exc.status_code or 0, str(exc), retry_after)


def _classify_status(label: str, status: int, text: str, retry_after: float | None) -> Exception:
    code, message = _error_body(text)
    if status == 429 or status >= 500:
        return _Retryable(f"HTTP {status}: {message}", retry_after if status == 429 else None)
    error_type = {
        401: AlpacaAuthError,
        403: AlpacaForbiddenError,
        404: AlpacaNotFoundError,
        422: AlpacaUnprocessableError,
    }.get(status, AlpacaApiError)
    return error_type(label, status, code, message)


def _error_body(text: str) -> tuple[int | None, str]:
    """Alpaca's ``{"code", "message"}``; a non-JSON body (a proxy's HTML page) as is."""
    try:
        body = json.loads(text)
    except ValueError:
        return None, text[:300]
    if not isinstance(body, dict):
        return None, text[:300]
    code = body.get("code")
    return (code if isinstance(code, int) else None), str(body.get("message", text[:300]))
