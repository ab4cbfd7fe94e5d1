"""Alpaca's trading REST API under /v2 over the book: routes, auth, faults, request records.

Every handler runs on the sandbox's event loop, one at a time in arrival order (``_turn``),
so book commands never race; the trade updates a command causes are published before its
answer is returned, in order. An order request's record is stamped when its bytes were read
(``arrival.py``) and when it was answered (see the server's docstring on bursts).
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
from email.utils import formatdate
from typing import Any, NamedTuple

import pandas as pd
from aiohttp import web

from adapters.alpaca.sandbox.arrival import ARRIVED_NS
from adapters.alpaca.sandbox.book import Book, TradeUpdate
from adapters.alpaca.sandbox.faults import AlpacaFault, FaultSchedule
from adapters.alpaca.sandbox.hours import calendar_json, clock_json
from adapters.alpaca.sandbox.intake import parse_order, parse_replace, whole_shares
from adapters.alpaca.sandbox.market import CatalogMarket
from adapters.alpaca.sandbox.orders import BrokerError, Order, asset_id, invalid
from adapters.alpaca.sandbox.wire import (
    asset_json,
    error_json,
    money,
    order_json,
    position_json,
    rfc3339,
)

UNAUTHORIZED = error_json(40110000, "request is not authorized")
DEFAULT_ORDER_LIMIT, MAX_ORDER_LIMIT = 50, 500
MAX_ACTIVITY_PAGE = 100
TRUE = frozenset({"true", "1", "yes"})
_BODY = web.RequestKey("sandbox.body", object)  # the parsed JSON body, kept on the request


class OrderRequestRecord(NamedTuple):
    """One order-changing request (POST/PATCH/DELETE of orders and positions), as answered."""

    received_ns: int  # time.time_ns() of the socket read that brought it (arrival.py)
    method: str
    path: str
    client_order_id: str | None
    symbol: str | None
    status_code: int
    answered_ns: int  # time.time_ns() once decided: received_ns to here is the broker's queue and work


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(body, separators=(",", ":")), content_type="application/json"
    )


def _error(status: int, code: int, message: str, headers: dict | None = None) -> web.Response:
    response = _json(error_json(code, message), status)
    response.headers.update(headers or {})
    return response


class RestApi:
    def __init__(
        self,
        book: Book,
        market: CatalogMarket,
        faults: FaultSchedule,
        key_id: str,
        secret_key: str,
        publish: Callable[[list[TradeUpdate]], Awaitable[None]],
        sync: Callable[[], Awaitable[None]],
        records: list[OrderRequestRecord],
        account_id: str,
        passthrough_paths: frozenset[str],
    ) -> None:
        self.book = book
        self.market = market
        self.faults = faults
        self.key_id = key_id
        self.secret_key = secret_key
        self.publish = publish
        self.sync = sync
        self.records = records
        self.account_id = account_id
        self.created_ns = book.market_ns
        self.passthrough_paths = passthrough_paths
        self.stopping = asyncio.Event()
        self._turn = asyncio.Lock()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v2/account", self.get_account),
            web.get("/v2/account/activities", self.get_activities),
            web.get("/v2/account/activities/{activity_type}", self.get_activities),
            web.get("/v2/positions", self.get_positions),
            web.delete("/v2/positions", self.close_all_positions),
            web.get("/v2/positions/{symbol}", self.get_position),
            web.delete("/v2/positions/{symbol}", self.close_position),
            web.post("/v2/orders", self.submit_order),
            web.get("/v2/orders", self.list_orders),
            web.delete("/v2/orders", self.cancel_all),
            web.get("/v2/orders:by_client_order_id", self.get_by_client_order_id),
            web.get("/v2/orders/{order_id}", self.get_order),
            web.patch("/v2/orders/{order_id}", self.replace_order),
            web.delete("/v2/orders/{order_id}", self.cancel_order),
            web.get("/v2/clock", self.get_clock),
            web.get("/v2/calendar", self.get_calendar),
            web.get("/v2/assets", self.list_assets),
            web.get("/v2/assets/{symbol}", self.get_asset),
        ]

    # -- middleware: auth, faults, records ------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler) -> web.StreamResponse:
        if request.path in self.passthrough_paths:
            return await handler(request)
        received_ns = request[ARRIVED_NS]
        describe = await self._describe(request)

        def record(response: web.StreamResponse) -> web.StreamResponse:
            if describe is not None:
                self.records.append(
                    OrderRequestRecord(
                        received_ns, request.method, request.path, *describe, response.status, time.time_ns()
                    )
                )
            return response

        return await self._answer(request, handler, record)

    async def _answer(
        self, request: web.Request, handler, record: Callable[[web.StreamResponse], web.StreamResponse]
    ) -> web.StreamResponse:
        key = request.headers.get("APCA-API-KEY-ID")
        secret = request.headers.get("APCA-API-SECRET-KEY")
        if key is None or secret is None:
            return record(_json(UNAUTHORIZED, 401))
        if key != self.key_id or secret != self.secret_key:
            return record(_json(UNAUTHORIZED, 403))
        fault = self.faults.take_rest(request.path)
        if fault is not None and fault.kind == "rate_limit":
            return record(_error(429, 42910000, "rate limit exceeded", _retry_after(fault)))
        if fault is not None and fault.kind == "server_error":
            return record(_error(fault.status, 50010000, "internal server error (sandbox fault)"))
        if fault is not None:  # stall
            # Shielded: a slow server still does the work after the client gave up waiting
            # (that is the case an execution client must survive: an order it abandoned
            # appearing at the broker later).
            return await asyncio.shield(self._stalled(request, handler, fault.stall_secs, record))
        return record(await self._process(request, handler))

    async def _stalled(self, request: web.Request, handler, stall_secs: float, record) -> web.StreamResponse:
        try:
            await asyncio.wait_for(self.stopping.wait(), stall_secs)
        except TimeoutError:
            pass  # stalled for the whole time: now answer normally
        return record(await self._process(request, handler))

    async def _process(self, request: web.Request, handler) -> web.StreamResponse:
        """The book's work for one request, one request at a time in arrival order. Each takes
        its turn in a loop step of its own, so the loop reads (and stamps) the sockets between
        two requests of a burst instead of after all the requests woken with them."""
        async with self._turn:
            answer = await self._decide(request, handler)
            await asyncio.sleep(0)  # the next turn comes after the loop has read its sockets
        return answer

    async def _decide(self, request: web.Request, handler) -> web.StreamResponse:
        await self.sync()
        try:
            return await handler(request)
        except BrokerError as exc:
            return _error(exc.status, exc.code, exc.message)
        except web.HTTPNotFound:
            return _error(404, 40410000, "endpoint not found")
        except web.HTTPMethodNotAllowed:
            return _error(405, 40510000, "method not allowed")

    async def _describe(self, request: web.Request) -> tuple[str | None, str | None] | None:
        """(client_order_id, symbol) of an order-changing request, None for other requests."""
        path, method = request.path, request.method
        if method == "GET" or not path.startswith(("/v2/orders", "/v2/positions")):
            return None
        body = await self._body(request) if method in ("POST", "PATCH") else None
        body = body if isinstance(body, dict) else {}
        tail = path.rsplit("/", 1)[-1]
        if path.startswith("/v2/positions"):
            return None, (tail if tail != "positions" else None)
        known = self.book.orders.get(tail)
        client_order_id = body.get("client_order_id") or (known.client_order_id if known else None)
        symbol = body.get("symbol") or (known.symbol if known else None)
        return (
            client_order_id if isinstance(client_order_id, str) else None,
            symbol if isinstance(symbol, str) else None,
        )

    @staticmethod
    async def _body(request: web.Request) -> Any:
        """The JSON body with exact decimals; None when absent or not JSON. Parsed once per
        request (the records and the handler both read it)."""
        if _BODY not in request:
            text = await request.text()
            try:
                request[_BODY] = json.loads(text, parse_float=Decimal) if text else None
            except ValueError:
                request[_BODY] = None
        return request[_BODY]

    async def _required_body(self, request: web.Request) -> Any:
        body = await self._body(request)
        if body is None:
            raise BrokerError(400, 40010000, "request body format is invalid")
        return body

    # -- account --------------------------------------------------------------------------------

    async def get_account(self, request: web.Request) -> web.Response:
        state = self.book.account()
        gross = state.long_market_value - state.short_market_value
        return _json(
            {
                "id": self.account_id,
                "account_number": "PA" + self.account_id.replace("-", "")[:10].upper(),
                "status": "ACTIVE",
                "crypto_status": "INACTIVE",
                "currency": "USD",
                "buying_power": money(state.buying_power),
                "regt_buying_power": money(state.buying_power),
                "daytrading_buying_power": money(state.buying_power),
                "non_marginable_buying_power": money(max(Decimal(0), state.cash)),
                "options_buying_power": "0.00",
                "cash": money(state.cash),
                "accrued_fees": "0",
                "pending_transfer_in": "0",
                "pending_transfer_out": "0",
                "portfolio_value": money(state.equity),
                "pattern_day_trader": False,
                "trading_blocked": False,
                "transfers_blocked": False,
                "account_blocked": False,
                "created_at": rfc3339(self.created_ns),
                "trade_suspended_by_user": False,
                "multiplier": "2",
                "shorting_enabled": True,
                "equity": money(state.equity),
                "last_equity": money(self.book.last_equity),
                "long_market_value": money(state.long_market_value),
                "short_market_value": money(state.short_market_value),
                "position_market_value": money(gross),
                "initial_margin": money(gross / 2),
                "maintenance_margin": money(gross * Decimal("0.3")),
                "last_maintenance_margin": "0.00",
                "sma": money(state.equity),
                "daytrade_count": 0,
                "options_approved_level": 0,
                "options_trading_level": 0,
            }
        )

    async def get_activities(self, request: web.Request) -> web.Response:
        q = request.query
        kinds = request.match_info.get("activity_type") or q.get("activity_types", "FILL")
        if "FILL" not in {k.strip().upper() for k in kinds.split(",")}:
            return _json([])
        rows = self.book.activities
        if "date" in q:
            day = _date(q["date"], "date")
            rows = [r for r in rows if _new_york_date(r[0]) == day]
        if "after" in q:
            after = _time_ns(q["after"], "after")
            rows = [r for r in rows if r[0] > after]
        if "until" in q:
            until = _time_ns(q["until"], "until")
            rows = [r for r in rows if r[0] < until]
        activities = [a for _, a in rows]
        if q.get("direction", "desc") == "desc":
            activities.reverse()
        token = q.get("page_token")
        if token:
            ids = [a["id"] for a in activities]
            if token not in ids:
                raise invalid(f"invalid page_token {token!r}")
            activities = activities[ids.index(token) + 1 :]
        size = _int(q.get("page_size"), "page_size", MAX_ACTIVITY_PAGE, MAX_ACTIVITY_PAGE)
        return _json(activities[:size])

    # -- positions ------------------------------------------------------------------------------

    def _position(self, symbol: str) -> dict[str, Any] | None:
        position = self.book.positions.get(symbol)
        if position is None or position.qty == 0:
            return None
        price = self.book.reference_price(symbol)
        lastday = self.book.previous_session_close(symbol) or price
        return position_json(symbol, position.qty, position.avg_entry_price, price, lastday)

    async def get_positions(self, request: web.Request) -> web.Response:
        rows = (self._position(s) for s in sorted(self.book.positions))
        return _json([r for r in rows if r is not None])

    async def get_position(self, request: web.Request) -> web.Response:
        found = self._position(self._symbol(request.match_info["symbol"]))
        if found is None:
            raise BrokerError(404, 40410000, "position does not exist")
        return _json(found)

    async def close_position(self, request: web.Request) -> web.Response:
        q = request.query
        qty = whole_shares(q["qty"], None) if "qty" in q else None
        percentage = _decimal(q["percentage"], "percentage") if "percentage" in q else None
        symbol = self._symbol(request.match_info["symbol"])
        _, accepted, updates = self.book.close_position(symbol, qty, percentage)
        await self.publish(updates)
        return _json(accepted)

    async def close_all_positions(self, request: web.Request) -> web.Response:
        if request.query.get("cancel_orders", "").lower() in TRUE:
            _, updates = self.book.cancel_all()
            await self.publish(updates)
        results = []
        for symbol in sorted(self.book.positions):
            if self.book.positions[symbol].qty == 0:
                continue
            order, accepted, updates = self.book.close_position(symbol)
            await self.publish(updates)
            results.append(
                {"symbol": symbol, "order_id": order.id, "status": 200, "body": accepted}
            )
        return _json(results, 207)

    # -- orders ---------------------------------------------------------------------------------

    async def submit_order(self, request: web.Request) -> web.Response:
        spec = parse_order(await self._required_body(request), self.market.has)
        _, accepted, updates = self.book.submit(
            spec, reject=lambda: self.faults.take("reject_next") is not None
        )
        await self.publish(updates)
        return _json(accepted)

    async def list_orders(self, request: web.Request) -> web.Response:
        q = request.query
        status = q.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise invalid(f"invalid status {status!r}; expected open, closed or all")
        nested = q.get("nested", "").lower() in TRUE
        orders = [o for o in self.book.orders.values() if not (nested and o.parent is not None)]
        if status != "all":
            orders = [o for o in orders if o.is_open == (status == "open")]
        if "symbols" in q:
            wanted = {s.strip() for s in q["symbols"].split(",") if s.strip()}
            orders = [o for o in orders if o.symbol in wanted]
        if "side" in q:
            orders = [o for o in orders if o.side == q["side"]]
        if "after" in q:
            after = _time_ns(q["after"], "after")
            orders = [o for o in orders if o.created_ns > after]
        if "until" in q:
            until = _time_ns(q["until"], "until")
            orders = [o for o in orders if o.created_ns < until]
        direction = q.get("direction", "desc")
        if direction not in ("asc", "desc"):
            raise invalid(f"invalid direction {direction!r}; expected asc or desc")
        if direction == "desc":
            orders.reverse()  # the book keeps creation order
        limit = _int(q.get("limit"), "limit", DEFAULT_ORDER_LIMIT, MAX_ORDER_LIMIT)
        return _json([order_json(o, nested=nested) for o in orders[:limit]])

    async def get_order(self, request: web.Request) -> web.Response:
        order = self.book.order(request.match_info["order_id"])
        return _json(order_json(order, nested=request.query.get("nested", "").lower() in TRUE))

    async def get_by_client_order_id(self, request: web.Request) -> web.Response:
        client_order_id = request.query.get("client_order_id")
        if not client_order_id:
            raise invalid("client_order_id is required")
        return _json(order_json(self.book.order_by_client_id(client_order_id)))

    async def replace_order(self, request: web.Request) -> web.Response:
        spec = parse_replace(await self._required_body(request))
        _, accepted, updates = self.book.replace(request.match_info["order_id"], spec)
        await self.publish(updates)
        return _json(accepted)

    async def cancel_order(self, request: web.Request) -> web.Response:
        updates = self.book.cancel(request.match_info["order_id"])
        await self.publish(updates)
        return web.Response(status=204)

    async def cancel_all(self, request: web.Request) -> web.Response:
        cancelled, updates = self.book.cancel_all()
        await self.publish(updates)
        return _json([_cancel_result(o) for o in cancelled], 207)

    # -- market ---------------------------------------------------------------------------------

    async def get_clock(self, request: web.Request) -> web.Response:
        return _json(clock_json(self.book.market_ns))

    async def get_calendar(self, request: web.Request) -> web.Response:
        q = request.query
        start = _date(q["start"], "start") if q.get("start") else None
        end = _date(q["end"], "end") if q.get("end") else None
        return _json(calendar_json(start, end))

    async def list_assets(self, request: web.Request) -> web.Response:
        q = request.query
        if (
            q.get("status", "active") != "active"
            or q.get("asset_class", "us_equity") != "us_equity"
        ):
            return _json([])
        if q.get("exchange", "NYSE") != "NYSE":
            return _json([])
        return _json([asset_json(s) for s in self.market.symbols])

    async def get_asset(self, request: web.Request) -> web.Response:
        key = request.match_info["symbol"]
        for symbol in self.market.symbols:
            if key in (symbol, asset_id(symbol)):
                return _json(asset_json(symbol))
        raise BrokerError(404, 40410000, f"asset not found for {key}")

    def _symbol(self, key: str) -> str:
        """A symbol from a path that may hold a symbol or an asset id."""
        for symbol in self.market.symbols:
            if key == asset_id(symbol):
                return symbol
        return key


def _cancel_result(order: Order) -> dict[str, Any]:
    return {"id": order.id, "status": 200, "body": order_json(order)}


def _time_ns(raw: str, name: str) -> int:
    try:
        stamp = pd.Timestamp(raw)
    except ValueError:
        raise invalid(f"invalid {name} {raw!r}: expected an RFC 3339 time") from None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.tz_convert("UTC").value)


def _date(raw: str, name: str) -> date:
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        raise invalid(f"invalid {name} {raw!r}: expected YYYY-MM-DD") from None


def _new_york_date(ts_ns: int) -> date:
    return pd.Timestamp(ts_ns, tz="UTC").tz_convert("America/New_York").date()


def _int(raw: str | None, name: str, default: int, maximum: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(f"invalid {name} {raw!r}: expected an integer") from None
    if value < 1:
        raise invalid(f"{name} must be >= 1, got {value}")
    return min(value, maximum)


def _decimal(raw: str, name: str) -> Decimal:
    try:
        return Decimal(raw)
    except ArithmeticError:
        raise invalid(f"invalid {name} {raw!r}") from None


def _retry_after(fault: AlpacaFault) -> dict[str, str]:
    """The 429's Retry-After header in the fault's form (whole seconds: HTTP allows no fraction)."""
    if fault.retry_after_form == "absent":
        return {}
    if fault.retry_after_form == "http_date":
        return {"Retry-After": formatdate(time.time() + fault.retry_after_secs, usegmt=True)}
    return {"Retry-After": str(max(1, int(-(-fault.retry_after_secs // 1))))}
