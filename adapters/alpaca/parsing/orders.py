"""NautilusTrader orders -> Alpaca request bodies (POST /v2/orders, PATCH /v2/orders/{id}).

Every body carries ``client_order_id`` = the NautilusTrader ClientOrderId: it makes a retried
POST idempotent (Alpaca answers a repeat with 422 "duplicate client_order_id" instead of a
second order) and ties stream events back to the order. Quantities go out as decimal strings,
exactly as NautilusTrader holds them; prices with no zeros past the tick they are on ("98.00",
not a 4-decimal instrument's "98.0000"; "0.4321" below a dollar), so a venue that counts
decimals sees a price that obeys Rule 612 whenever its value does. Whatever Alpaca cannot express
(post-only, GTD, trailing or if-touched types, arbitrary contingent lists) is refused with
``UnsupportedOrderError`` rather than silently sent as something else.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from nautilus_trader.model.enums import ContingencyType, OrderSide, OrderType
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.model.orders import Order

from adapters.alpaca.parsing.wire import (
    ORDER_TYPE_TO_ALPACA,
    TIME_IN_FORCE_TO_ALPACA,
    AlpacaOrder,
)

_PENNY = Decimal("0.01")
BRACKET_ENTRY_TYPES = frozenset({OrderType.MARKET, OrderType.LIMIT})
STOP_LOSS_TYPES = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT})


class UnsupportedOrderError(ValueError):
    """An order (or order list) Alpaca has no equivalent for."""


def wire_price(price: Price) -> str:
    """A price as Alpaca reads it: whole cents keep two decimals, a sub-penny price only the
    digits it has (an off-tick price is sent as it is, for the venue to refuse)."""
    value = price.as_decimal()
    cents = value.quantize(_PENNY)
    return f"{cents:f}" if cents == value else f"{value.normalize():f}"


def order_body(order: Order) -> dict[str, Any]:
    """The POST /v2/orders body of a single (simple) order."""
    alpaca_type = ORDER_TYPE_TO_ALPACA.get(order.order_type)
    if alpaca_type is None:
        raise UnsupportedOrderError(f"Alpaca has no {order.type_string()} orders")
    tif = TIME_IN_FORCE_TO_ALPACA.get(order.time_in_force)
    if tif is None:
        raise UnsupportedOrderError(f"Alpaca has no {order.tif_string()} time in force")
    if order.is_post_only:
        raise UnsupportedOrderError("Alpaca has no post-only orders")
    body: dict[str, Any] = {
        "symbol": order.instrument_id.symbol.value,
        "qty": str(order.quantity),
        "side": _side(order.side),
        "type": alpaca_type,
        "time_in_force": tif,
        "client_order_id": order.client_order_id.value,
    }
    if order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        body["limit_price"] = wire_price(order.price)
    if order.order_type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT):
        body["stop_price"] = wire_price(order.trigger_price)
    return body


@dataclass(frozen=True)
class Bracket:
    """An order list Alpaca can take as one ``order_class=bracket`` order."""

    entry: Order
    take_profit: Order
    stop_loss: Order

    @property
    def orders(self) -> tuple[Order, Order, Order]:
        return self.entry, self.take_profit, self.stop_loss


def as_bracket(orders: list[Order]) -> Bracket:
    """The entry, take-profit and stop-loss of a NautilusTrader bracket list (as
    ``OrderFactory.bracket`` builds it: an OTO entry whose two children are a LIMIT and a
    STOP_MARKET/STOP_LIMIT, opposite side, same quantity)."""
    if len(orders) != 3:
        raise UnsupportedOrderError(f"a bracket has 3 orders, this list has {len(orders)}")
    entry = next((o for o in orders if o.contingency_type == ContingencyType.OTO), None)
    if entry is None:
        raise UnsupportedOrderError("no OTO entry order in the list")
    children = [o for o in orders if o is not entry]
    if any(o.parent_order_id != entry.client_order_id for o in children):
        raise UnsupportedOrderError("the exit orders are not children of the entry")
    tp = [o for o in children if o.order_type == OrderType.LIMIT]
    sl = [o for o in children if o.order_type in STOP_LOSS_TYPES]
    if len(tp) != 1 or len(sl) != 1:
        raise UnsupportedOrderError("a bracket needs one LIMIT take-profit and one STOP stop-loss")
    if entry.order_type not in BRACKET_ENTRY_TYPES:
        raise UnsupportedOrderError(
            f"Alpaca bracket entries are market or limit, not {entry.type_string()}"
        )
    if any(o.side == entry.side for o in children):
        raise UnsupportedOrderError("the exits must be on the opposite side of the entry")
    if any(o.quantity != entry.quantity for o in children):
        raise UnsupportedOrderError("the exits must have the entry's quantity")
    return Bracket(entry, tp[0], sl[0])


def bracket_body(bracket: Bracket) -> dict[str, Any]:
    """One POST body for the whole bracket; the legs share the entry's time in force."""
    body = order_body(bracket.entry)
    body["order_class"] = "bracket"
    body["take_profit"] = {"limit_price": wire_price(bracket.take_profit.price)}
    stop_loss = {"stop_price": wire_price(bracket.stop_loss.trigger_price)}
    if bracket.stop_loss.order_type == OrderType.STOP_LIMIT:
        stop_loss["limit_price"] = wire_price(bracket.stop_loss.price)
    body["stop_loss"] = stop_loss
    return body


def bracket_legs(parent: AlpacaOrder, bracket: Bracket) -> dict[ClientOrderId, AlpacaOrder]:
    """The venue legs of a bracket answer, by the NautilusTrader exit they belong to. Alpaca
    names legs with its own client_order_ids, so they are told apart by type: the limit leg
    is the take-profit, the stop (or stop-limit) leg the stop-loss."""
    legs = parent.legs or []
    tp = [leg for leg in legs if leg.type == "limit"]
    sl = [leg for leg in legs if leg.type in ("stop", "stop_limit")]
    if len(tp) != 1 or len(sl) != 1:
        raise UnsupportedOrderError(
            f"bracket answer {parent.id} has legs {[leg.type for leg in legs]}, "
            "expected one limit and one stop"
        )
    return {
        bracket.take_profit.client_order_id: tp[0],
        bracket.stop_loss.client_order_id: sl[0],
    }


def replace_body(
    quantity: Quantity | None, price: Price | None, trigger_price: Price | None
) -> dict[str, Any]:
    """The PATCH /v2/orders/{id} body for a ModifyOrder; absent fields keep their value."""
    body: dict[str, Any] = {}
    if quantity is not None:
        body["qty"] = str(quantity)
    if price is not None:
        body["limit_price"] = wire_price(price)
    if trigger_price is not None:
        body["stop_price"] = wire_price(trigger_price)
    if not body:
        raise UnsupportedOrderError("nothing to modify: no quantity, price or trigger price")
    return body


def _side(side: OrderSide) -> str:
    if side == OrderSide.BUY:
        return "buy"
    if side == OrderSide.SELL:
        return "sell"
    raise UnsupportedOrderError(f"no order side {side}")
