"""Alpaca's JSON shapes: money and quantities as strings, RFC 3339 UTC times with ``Z``.

Pure formatting, so the REST answers, the trade_updates events and the snapshots a test reads
(``AlpacaSandbox.orders()``) are the same dicts.
"""

import functools
from decimal import Decimal
from typing import Any

import pandas as pd

from adapters.alpaca.sandbox.orders import Order, asset_id

MAX_DECIMALS = Decimal("1e-10")
CENT = Decimal("0.01")


@functools.lru_cache(maxsize=4096)
def rfc3339(ts_ns: int | None) -> str | None:
    """UTC time with microseconds, like Alpaca (``2024-12-30T14:31:00.000000Z``). Cached:
    an order's JSON repeats a handful of simulated instants, and formatting is the cost."""
    if ts_ns is None:
        return None
    return pd.Timestamp(ts_ns, tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def money(value: Decimal | None) -> str | None:
    """At least 2 decimals (cents), at most 10 (an average price), never an exponent."""
    if value is None:
        return None
    exact = value.quantize(MAX_DECIMALS).normalize()
    if -exact.as_tuple().exponent < 2:  # type: ignore[operator]
        exact = exact.quantize(CENT)
    return f"{exact:f}"


def order_json(order: Order, nested: bool = True) -> dict[str, Any]:
    """The order as the REST API and trade_updates carry it; ``legs`` only when ``nested``."""
    legs = [order_json(leg) for leg in order.legs] if nested and order.legs else None
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "created_at": rfc3339(order.created_ns),
        "updated_at": rfc3339(order.updated_ns),
        "submitted_at": rfc3339(order.created_ns),
        "filled_at": rfc3339(order.filled_ns),
        "expired_at": rfc3339(order.expired_ns),
        "expires_at": rfc3339(order.expires_ns),
        "canceled_at": rfc3339(order.canceled_ns),
        "failed_at": rfc3339(order.failed_ns),
        "replaced_at": rfc3339(order.replaced_ns),
        "replaced_by": order.replaced_by,
        "replaces": order.replaces,
        "asset_id": asset_id(order.symbol),
        "symbol": order.symbol,
        "asset_class": "us_equity",
        "notional": None,
        "qty": str(order.qty),
        "filled_qty": str(order.filled_qty),
        "filled_avg_price": money(order.avg_price),
        "order_class": order.order_class,
        "order_type": order.type,
        "type": order.type,
        "side": order.side,
        "position_intent": _intent(order),
        "time_in_force": order.time_in_force,
        "limit_price": money(order.limit_price),
        "stop_price": money(order.stop_price),
        "status": order.status,
        "extended_hours": False,
        "legs": legs,
        "trail_percent": None,
        "trail_price": None,
        "hwm": None,
        "subtag": None,
        "source": None,
    }


def _intent(order: Order) -> str:
    closing = order.closing or order.parent is not None or order.order_class == "oco"
    return f"{order.side}_to_{'close' if closing else 'open'}"


def error_json(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


def asset_json(symbol: str) -> dict[str, Any]:
    """A catalog symbol as a tradable, shortable, whole-share NYSE stock."""
    return {
        "id": asset_id(symbol),
        "class": "us_equity",
        "exchange": "NYSE",
        "symbol": symbol,
        "name": f"{symbol} (Sextant catalog)",
        "status": "active",
        "tradable": True,
        "marginable": True,
        "maintenance_margin_requirement": 30,
        "margin_requirement_long": "30",
        "margin_requirement_short": "30",
        "shortable": True,
        "easy_to_borrow": True,
        "fractionable": False,
        "attributes": [],
    }


def position_json(
    symbol: str, qty: int, avg_entry_price: Decimal, price: Decimal, lastday_price: Decimal
) -> dict[str, Any]:
    """A net position valued at ``price`` (the last close); shorts have negative qty, market
    value and cost basis, as at Alpaca."""
    market_value = qty * price
    cost_basis = qty * avg_entry_price
    unrealized = market_value - cost_basis
    intraday = qty * (price - lastday_price)
    return {
        "asset_id": asset_id(symbol),
        "symbol": symbol,
        "exchange": "NYSE",
        "asset_class": "us_equity",
        "asset_marginable": True,
        "avg_entry_price": money(avg_entry_price),
        "qty": str(qty),
        "qty_available": str(qty),
        "side": "long" if qty > 0 else "short",
        "market_value": money(market_value),
        "cost_basis": money(cost_basis),
        "unrealized_pl": money(unrealized),
        "unrealized_plpc": money(unrealized / abs(cost_basis)) if cost_basis else "0",
        "unrealized_intraday_pl": money(intraday),
        "unrealized_intraday_plpc": (
            money(intraday / abs(qty * lastday_price)) if lastday_price else "0"
        ),
        "current_price": money(price),
        "lastday_price": money(lastday_price),
        "change_today": money((price - lastday_price) / lastday_price) if lastday_price else "0",
    }
