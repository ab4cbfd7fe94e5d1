"""The broker's order records and the errors it answers with (Alpaca's status and code).

Kept apart from the state machine (book.py) so the intake validation and the JSON shapes can
share them without depending on the fill rules.
"""

import functools
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

# statuses in which an order can still trade (Alpaca's "open" listing also shows held legs)
WORKING = frozenset({"new", "accepted", "partially_filled"})
OPEN = WORKING | frozenset({"held", "pending_new", "pending_cancel", "pending_replace"})
ORDER_TYPES = frozenset({"market", "limit", "stop", "stop_limit"})
SIDES = frozenset({"buy", "sell"})
ORDER_CLASSES = frozenset({"simple", "bracket", "oto", "oco"})
TIME_IN_FORCE = frozenset({"day", "gtc", "ioc", "fok"})

ASSET_NAMESPACE = uuid.UUID("6f6a2e1c-6d55-4b39-9a0e-5a0f3c1d2b7e")


@functools.cache
def asset_id(symbol: str) -> str:
    """A stable asset id per symbol, so the same symbol has the same id across runs (named
    in every order's JSON: computed once per symbol)."""
    return str(uuid.uuid5(ASSET_NAMESPACE, symbol))


class BrokerError(Exception):
    """A request the broker refuses: answered with ``status`` and ``{"code","message"}``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid(message: str, code: int = 40010001) -> BrokerError:
    return BrokerError(422, code, message)


@dataclass(frozen=True)
class OrderSpec:
    """A validated new order (prices on Rule 612 ticks, qty whole shares)."""

    symbol: str
    qty: int
    side: str
    type: str
    time_in_force: str
    order_class: str = "simple"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    client_order_id: str | None = None
    take_profit_limit: Decimal | None = None
    stop_loss_stop: Decimal | None = None
    stop_loss_limit: Decimal | None = None


@dataclass(frozen=True)
class ReplaceSpec:
    """The fields a PATCH /v2/orders/{id} may change; None keeps the old value."""

    qty: int | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str | None = None
    client_order_id: str | None = None


@dataclass(eq=False)
class Order:
    """One Alpaca order; times are simulated UTC nanoseconds."""

    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: int
    order_class: str
    client_order_id: str
    created_ns: int
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    status: str = "new"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    updated_ns: int = 0
    filled_ns: int | None = None
    expired_ns: int | None = None
    canceled_ns: int | None = None
    failed_ns: int | None = None
    replaced_ns: int | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    expires_ns: int | None = None  # day orders: the close of their session
    filled_qty: int = 0
    filled_notional: Decimal = Decimal(0)
    triggered: bool = False  # stop / stop_limit: the stop has been reached
    active_after_ns: int = 0  # only bars closing after this instant can fill it
    bar_ns: int | None = None  # participation: the bar of the last fill ...
    bar_qty: int = 0  # ... and how much of it this order took
    closing: bool = False  # reduces the position it met on arrival (position_intent *_to_close)
    parent: "Order | None" = field(default=None, repr=False)
    legs: list["Order"] = field(default_factory=list, repr=False)
    oco: list["Order"] | None = field(default=None, repr=False)  # exits cancelling each other

    def __post_init__(self) -> None:
        self.updated_ns = self.updated_ns or self.created_ns

    @property
    def leaves(self) -> int:
        return self.qty - self.filled_qty

    @property
    def working(self) -> bool:
        return self.status in WORKING

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def sign(self) -> int:
        return 1 if self.side == "buy" else -1

    @property
    def avg_price(self) -> Decimal | None:
        if self.filled_qty == 0:
            return None
        return self.filled_notional / self.filled_qty

    def siblings(self) -> list["Order"]:
        return [o for o in self.oco or () if o is not self]
