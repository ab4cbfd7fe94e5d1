"""Validation of order requests, with the 422 answers Alpaca gives (each names the field).

Bodies are decoded with ``parse_float=Decimal`` so ``184.1`` is exactly 184.10, never a float.
The sandbox trades whole shares of regular-session bars only: fractional or notional orders,
``opg``/``cls`` and extended hours are refused rather than silently approximated.
"""

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.alpaca.sandbox.orders import (
    ORDER_CLASSES,
    ORDER_TYPES,
    SIDES,
    TIME_IN_FORCE,
    BrokerError,
    OrderSpec,
    ReplaceSpec,
    invalid,
)
from catalog.instruments import is_on_tick

SUB_PENNY_CODE = 42210000
MAX_CLIENT_ORDER_ID = 128
# Far above any listed share price (BRK.A trades below $1M); bounds ``1e400`` before any
# arithmetic on it, which Decimal's context could not represent.
MAX_PRICE = Decimal(1_000_000_000)


def parse_order(body: Any, known_symbol: Callable[[str], bool]) -> OrderSpec:
    """A POST /v2/orders body -> OrderSpec, for the symbols ``known_symbol`` accepts."""
    if not isinstance(body, dict):
        raise invalid("request body must be a JSON object")
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise invalid("symbol is required")
    if not known_symbol(symbol):
        raise invalid(f"asset {symbol} not found")
    if body.get("notional") is not None:
        raise invalid(f"notional orders are not supported: asset {symbol} is not fractionable")
    qty = whole_shares(body.get("qty"), symbol)
    side = _choice(body, "side", SIDES)
    order_type = _choice(body, "type", ORDER_TYPES, unsupported={"trailing_stop"})
    tif = _choice(body, "time_in_force", TIME_IN_FORCE, unsupported={"opg", "cls"})
    order_class = body.get("order_class") or "simple"
    if order_class not in ORDER_CLASSES:
        raise invalid(
            f"invalid order_class {order_class!r}; expected one of {sorted(ORDER_CLASSES)}"
        )
    if body.get("extended_hours"):
        raise invalid("extended_hours is not supported: the sandbox trades the regular session")
    take_profit = _leg(body, "take_profit")
    stop_loss = _leg(body, "stop_loss")
    tp_limit = price_field(take_profit, "limit_price", "take_profit.limit_price")
    sl_stop = price_field(stop_loss, "stop_price", "stop_loss.stop_price")
    sl_limit = price_field(stop_loss, "limit_price", "stop_loss.limit_price")
    limit_price = price_field(body, "limit_price")
    if order_class == "oco" and limit_price is None:
        limit_price = tp_limit  # an oco order is its take-profit limit plus a stop-loss leg
    stop_price = price_field(body, "stop_price")
    _check_prices(order_type, limit_price, stop_price)
    _check_class(order_class, order_type, tif, tp_limit, sl_stop, take_profit, stop_loss)
    return OrderSpec(
        symbol=symbol,
        qty=qty,
        side=side,
        type=order_type,
        time_in_force=tif,
        order_class=order_class,
        limit_price=limit_price,
        stop_price=stop_price,
        client_order_id=client_order_id(body.get("client_order_id")),
        take_profit_limit=tp_limit,
        stop_loss_stop=sl_stop,
        stop_loss_limit=sl_limit,
    )


def parse_replace(body: Any) -> ReplaceSpec:
    """A PATCH /v2/orders/{id} body -> ReplaceSpec (at least one field)."""
    if not isinstance(body, dict):
        raise invalid("request body must be a JSON object")
    if body.get("trail") is not None:
        raise invalid("trail is not supported: the sandbox has no trailing stop orders")
    spec = ReplaceSpec(
        qty=None if body.get("qty") is None else whole_shares(body.get("qty"), None),
        limit_price=price_field(body, "limit_price"),
        stop_price=price_field(body, "stop_price"),
        time_in_force=(
            None
            if body.get("time_in_force") is None
            else _choice(body, "time_in_force", frozenset({"day", "gtc"}))
        ),
        client_order_id=client_order_id(body.get("client_order_id")),
    )
    if spec == ReplaceSpec():
        raise invalid("replace needs at least one of qty, limit_price, stop_price, time_in_force")
    return spec


def whole_shares(raw: Any, symbol: str | None) -> int:
    if raw is None:
        raise invalid("qty is required")
    try:
        qty = Decimal(str(raw)) if not isinstance(raw, bool) else None
    except InvalidOperation:
        qty = None
    if qty is None or not qty.is_finite():
        raise invalid(f"invalid qty {raw!r}")
    if qty != qty.to_integral_value():
        asset = f"asset {symbol} " if symbol else "the asset "
        raise invalid(f"qty must be a whole number of shares: {asset}is not fractionable")
    if qty <= 0:
        raise invalid(f"qty must be > 0, got {raw}")
    return int(qty)


def price_field(body: dict | None, key: str, name: str | None = None) -> Decimal | None:
    """A price on Reg NMS Rule 612's tick (whole cents at or above $1.00, hundredths of a cent
    below); others get Alpaca's 42210000 sub-penny answer."""
    name = name or key
    raw = None if body is None else body.get(key)
    if raw is None:
        return None
    try:
        value = Decimal(str(raw)) if not isinstance(raw, bool) else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or not 0 < value <= MAX_PRICE:
        raise invalid(f"invalid {name} {raw!r}: must be a positive number up to {MAX_PRICE}")
    if not is_on_tick(value):
        raise BrokerError(
            422,
            SUB_PENNY_CODE,
            f"invalid {name} {raw}. sub-penny increment does not fulfill minimum pricing criteria",
        )
    return value


def client_order_id(raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > MAX_CLIENT_ORDER_ID:
        raise invalid(
            f"client_order_id must be a string of at most {MAX_CLIENT_ORDER_ID} characters"
        )
    return raw


def _choice(
    body: dict, key: str, allowed: frozenset[str], unsupported: set[str] | None = None
) -> str:
    value = body.get(key)
    if value in (unsupported or ()):
        raise invalid(
            f"{key} {value!r} is not supported by the sandbox; use one of {sorted(allowed)}"
        )
    if value not in allowed:
        if value is None:
            raise invalid(f"{key} is required")
        raise invalid(f"invalid {key} {value!r}; expected one of {sorted(allowed)}")
    return value


def _leg(body: dict, key: str) -> dict | None:
    leg = body.get(key)
    if leg is not None and not isinstance(leg, dict):
        raise invalid(f"{key} must be an object")
    return leg


def _check_prices(order_type: str, limit: Decimal | None, stop: Decimal | None) -> None:
    needs_limit = order_type in ("limit", "stop_limit")
    needs_stop = order_type in ("stop", "stop_limit")
    if needs_limit and limit is None:
        raise invalid(f"limit_price is required for {order_type} orders")
    if needs_stop and stop is None:
        raise invalid(f"stop_price is required for {order_type} orders")
    if not needs_limit and limit is not None:
        raise invalid(f"limit_price is not allowed for {order_type} orders")
    if not needs_stop and stop is not None:
        raise invalid(f"stop_price is not allowed for {order_type} orders")


def _check_class(
    order_class: str,
    order_type: str,
    tif: str,
    tp_limit: Decimal | None,
    sl_stop: Decimal | None,
    take_profit: dict | None,
    stop_loss: dict | None,
) -> None:
    if order_class == "simple":
        if take_profit is not None or stop_loss is not None:
            raise invalid("take_profit and stop_loss need order_class bracket, oto or oco")
        return
    if tif not in ("day", "gtc"):
        raise invalid(f"time_in_force must be day or gtc for {order_class} orders")
    if order_class in ("bracket", "oco"):
        if tp_limit is None:
            raise invalid(f"take_profit.limit_price is required for {order_class} orders")
        if sl_stop is None:
            raise invalid(f"stop_loss.stop_price is required for {order_class} orders")
    elif tp_limit is None and sl_stop is None:
        raise invalid("oto orders need take_profit.limit_price or stop_loss.stop_price")
    elif tp_limit is not None and sl_stop is not None:
        raise invalid("oto orders take one of take_profit and stop_loss, not both")
    if order_class == "oco" and order_type != "limit":
        raise invalid("type must be limit for oco orders (the take-profit leg)")
