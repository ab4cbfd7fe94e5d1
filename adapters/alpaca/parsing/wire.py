"""Typed views of Alpaca's JSON, and the enum and number conventions shared by the parsers.

Money and quantities arrive as strings (alpaca-py with ``raw_data=True`` hands them over
untouched) and become ``Decimal`` here, so a price is never rounded through a float. A number
sent as a JSON number still converts exactly from its shortest repr.
"""

import math
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import msgspec
import pandas as pd
from nautilus_trader.model.enums import (
    LiquiditySide,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from nautilus_trader.model.objects import Price, Quantity

T = TypeVar("T")


class AlpacaWireError(ValueError):
    """A payload without the shape of Alpaca's (missing fields, wrong types, unknown enums)."""


class AlpacaOrder(msgspec.Struct, kw_only=True):
    """An order as REST answers and trade updates carry it (the fields this adapter uses)."""

    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    status: str
    qty: Decimal | None = None  # None for notional orders
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_percent: Decimal | None = None  # trailing_stop orders (placed from the dashboard, say)
    trail_price: Decimal | None = None
    order_class: str = ""
    legs: "list[AlpacaOrder] | None" = None
    replaces: str | None = None
    replaced_by: str | None = None
    created_at: str | None = None
    submitted_at: str | None = None
    updated_at: str | None = None
    filled_at: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class TradeUpdate(msgspec.Struct, kw_only=True):
    """The ``data`` of a trade_updates message; price/qty only on fills."""

    event: str
    order: AlpacaOrder
    execution_id: str | None = None
    timestamp: str | None = None
    price: Decimal | None = None
    qty: Decimal | None = None
    position_qty: Decimal | None = None


class AlpacaPosition(msgspec.Struct, kw_only=True):
    symbol: str
    qty: Decimal
    side: str  # "long" | "short"; qty is negative for shorts
    avg_entry_price: Decimal
    unrealized_pl: Decimal | None = None


class AlpacaAccount(msgspec.Struct, kw_only=True):
    account_number: str
    currency: str = "USD"
    status: str = "ACTIVE"
    cash: Decimal
    equity: Decimal
    last_equity: Decimal | None = None  # the equity at the previous trading day's close
    buying_power: Decimal | None = None
    initial_margin: Decimal = Decimal(0)
    maintenance_margin: Decimal = Decimal(0)


class FillActivity(msgspec.Struct, kw_only=True):
    """One execution from GET /v2/account/activities/FILL."""

    id: str
    order_id: str
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    cum_qty: Decimal | None = None
    transaction_time: str


class AlpacaAsset(msgspec.Struct, kw_only=True):
    symbol: str
    tradable: bool = True
    status: str = "active"
    asset_class: str = msgspec.field(default="us_equity", name="class")


def execution_id(activity_id: str) -> str:
    """The execution id inside a fill activity id (``20241230143100123::<uuid>``): the
    trade_updates ``execution_id`` of the same fill, so a fill reported both ways has one
    TradeId."""
    return activity_id.rpartition("::")[2]


def decode(payload: Any, type_: type[T]) -> T:
    """``payload`` (a dict from the SDK, or raw JSON bytes/str) as ``type_``."""
    try:
        if isinstance(payload, (bytes, str)):
            return msgspec.json.decode(payload, type=type_, strict=False)
        return msgspec.convert(payload, type_, strict=False)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise AlpacaWireError(
            f"not an Alpaca {_name(type_)} ({exc}): {str(payload)[:200]}"
        ) from None


def _name(type_: Any) -> str:
    return getattr(type_, "__name__", str(type_))


# -- enums ------------------------------------------------------------------------------------

OPEN_STATUSES = frozenset(
    {
        "new",
        "accepted",
        "pending_new",
        "accepted_for_bidding",
        "partially_filled",
        "held",
        "pending_cancel",
        "pending_replace",
        "done_for_day",
        "stopped",
        "calculated",
        "suspended",
    }
)

_ORDER_TYPES = {
    "market": OrderType.MARKET,
    "limit": OrderType.LIMIT,
    "stop": OrderType.STOP_MARKET,
    "stop_limit": OrderType.STOP_LIMIT,
}
ORDER_TYPE_TO_ALPACA = {v: k for k, v in _ORDER_TYPES.items()}
# Read, never sent: a trailing stop placed outside this node is reported so reconciliation
# sees it (this adapter submits none).
_REPORTED_ORDER_TYPES = {**_ORDER_TYPES, "trailing_stop": OrderType.TRAILING_STOP_MARKET}

_TIME_IN_FORCE = {
    "day": TimeInForce.DAY,
    "gtc": TimeInForce.GTC,
    "opg": TimeInForce.AT_THE_OPEN,
    "cls": TimeInForce.AT_THE_CLOSE,
    "ioc": TimeInForce.IOC,
    "fok": TimeInForce.FOK,
}
TIME_IN_FORCE_TO_ALPACA = {v: k for k, v in _TIME_IN_FORCE.items()}


def order_side(side: str) -> OrderSide:
    """Orders say buy or sell; fill activities say "sell_short" for a sale that opens a short."""
    if side == "buy":
        return OrderSide.BUY
    if side in ("sell", "sell_short"):
        return OrderSide.SELL
    raise AlpacaWireError(f"unknown order side {side!r}")


def order_type(type_: str) -> OrderType:
    try:
        return _REPORTED_ORDER_TYPES[type_]
    except KeyError:
        raise AlpacaWireError(f"unsupported Alpaca order type {type_!r}") from None


def time_in_force(tif: str) -> TimeInForce:
    try:
        return _TIME_IN_FORCE[tif]
    except KeyError:
        raise AlpacaWireError(f"unknown time_in_force {tif!r}") from None


def order_status(order: AlpacaOrder) -> OrderStatus:
    """Alpaca's status as NautilusTrader's. Every live status (held bracket legs, pending
    cancel/replace, done for the day) is ACCEPTED or PARTIALLY_FILLED by the fills so far:
    the order still exists at the venue and may still trade."""
    status = order.status
    if status == "filled":
        return OrderStatus.FILLED
    if status in ("canceled", "replaced"):
        return OrderStatus.CANCELED
    if status == "expired":
        return OrderStatus.EXPIRED
    if status == "rejected":
        return OrderStatus.REJECTED
    if status in OPEN_STATUSES:
        return OrderStatus.PARTIALLY_FILLED if order.filled_qty > 0 else OrderStatus.ACCEPTED
    raise AlpacaWireError(f"unknown order status {status!r}")


def liquidity_side(type_: str) -> LiquiditySide:
    """Alpaca does not say who provided liquidity: resting limit prices are taken as MAKER,
    market and stop (market on trigger) as TAKER."""
    return LiquiditySide.MAKER if type_ in ("limit", "stop_limit") else LiquiditySide.TAKER


# -- numbers and times ------------------------------------------------------------------------


def decimals(value: Decimal) -> int:
    """Digits after the point of ``value`` as written (trailing zeros count: "185.00" -> 2)."""
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def to_price(value: Decimal, precision: int) -> Price:
    """At the instrument's precision when that holds ``value`` exactly, else at the value's
    own (a sub-penny fill stays sub-penny rather than being rounded)."""
    return Price(value, max(precision, decimals(value.normalize())))


def to_quantity(value: Decimal, precision: int) -> Quantity:
    return Quantity(value, max(precision, decimals(value.normalize())))


def ts_ns(text: str | None, default: int = 0) -> int:
    """RFC 3339 (``2024-12-30T14:31:00.123456789Z``) as UNIX nanoseconds."""
    if not text:
        return default
    try:
        return pd.Timestamp(text).value
    except ValueError:
        raise AlpacaWireError(f"bad timestamp {text!r}") from None


MAX_RETRY_AFTER_SECS = 60.0


def retry_after_secs(value: str | None, now: datetime | None = None) -> float | None:
    """A 429's Retry-After as seconds to wait: delta-seconds or an HTTP date (RFC 9110 allows
    both; proxies send dates). None when absent or unreadable: the caller's backoff applies.
    At most ``MAX_RETRY_AFTER_SECS``: an "inf" or a date next week from a broken or hostile
    server must not park the order path for good."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECS)
