"""Per-order bookkeeping that turns what Alpaca says about an order into NautilusTrader
events exactly once, whichever way the news arrives.

News about one order comes from several places that overlap: the POST/PATCH answer, the
trade_updates stream, and REST snapshots fetched after a reconnect or by the engine's
in-flight check. Events sent while the stream was down are lost, and a snapshot may be older
or newer than the event that follows it. So nothing here trusts the order of arrival:

- fills are counted by Alpaca's cumulative ``filled_qty``: only the part above what was
  already reported becomes a fill, so a snapshot and a late stream event never add up twice;
- a gap (fills missed while disconnected) becomes one fill whose price is what the venue's
  average implies for the missing quantity: exact when the average is (Alpaca's averages
  carry up to 10 decimals);
- accepted and terminal events (canceled, expired, rejected) are emitted at most once;
- a replace moves the order to its successor's venue id (an ``Update``); news about the
  superseded venue order after that is ignored.

The actions are plain data; the execution client turns them into ``generate_*`` calls.
"""

from dataclasses import dataclass
from decimal import Decimal

from nautilus_trader.model.enums import LiquiditySide

from adapters.alpaca.parsing.wire import (
    AlpacaOrder,
    FillActivity,
    TradeUpdate,
    decimals,
    execution_id,
    liquidity_side,
    ts_ns,
)


@dataclass(frozen=True)
class Accept:
    venue_order_id: str
    ts_event: int


@dataclass(frozen=True)
class Fill:
    venue_order_id: str
    trade_id: str
    last_qty: Decimal
    last_px: Decimal
    liquidity_side: LiquiditySide
    ts_event: int
    inferred: bool  # derived from cumulative state, not a reported execution


@dataclass(frozen=True)
class Update:
    venue_order_id: str
    quantity: Decimal
    price: Decimal | None
    trigger_price: Decimal | None
    ts_event: int


@dataclass(frozen=True)
class Cancel:
    venue_order_id: str
    ts_event: int


@dataclass(frozen=True)
class Expire:
    venue_order_id: str
    ts_event: int


@dataclass(frozen=True)
class Reject:
    venue_order_id: str
    reason: str
    ts_event: int


Action = Accept | Fill | Update | Cancel | Expire | Reject


class OrderProgress:
    """What has been reported for one NautilusTrader order so far."""

    def __init__(self, venue_order_id: str | None = None) -> None:
        self.venue_order_id = venue_order_id
        self.accepted = False
        self.closed = False
        self.filled_qty = Decimal(0)
        self.filled_notional = Decimal(0)

    def __repr__(self) -> str:
        return (
            f"OrderProgress(venue_order_id={self.venue_order_id!r}, accepted={self.accepted}, "
            f"closed={self.closed}, filled_qty={self.filled_qty})"
        )

    def catch_up(
        self, filled_qty: Decimal, avg_px: Decimal | None, accepted: bool, closed: bool
    ) -> None:
        """Take in events applied to the order without passing through here (NautilusTrader's
        own reconciliation infers fills and states from reports): never report them again."""
        if filled_qty > self.filled_qty:
            self.filled_qty = filled_qty
            self.filled_notional = (avg_px or Decimal(0)) * filled_qty
        self.accepted = self.accepted or accepted
        self.closed = self.closed or closed

    def apply_snapshot(self, order: AlpacaOrder, now_ns: int) -> list[Action]:
        """The order's venue state (a REST answer, or the order inside a non-fill event)."""
        actions: list[Action] = []
        if not self._follow(order, actions, now_ns):
            return actions
        if order.status == "rejected":
            if not self.closed:
                self.closed = True
                reason = f"rejected by Alpaca (order {order.id})"
                actions.append(Reject(order.id, reason, ts_ns(order.updated_at, now_ns)))
            return actions
        if order.status == "replaced":
            return actions  # the successor carries on; see ``superseded_by``
        self._accept(order, actions, now_ns)
        actions.extend(self._catch_up_fills(order, order.filled_qty, now_ns))
        self._finish(order, actions, now_ns)
        return actions

    def apply_fill(self, update: TradeUpdate, now_ns: int) -> list[Action]:
        """A ``fill`` / ``partial_fill`` trade update: the reported execution, preceded by a
        derived fill for anything the stream missed before it."""
        order = update.order
        actions: list[Action] = []
        if not self._follow(order, actions, now_ns):
            return actions
        self._accept(order, actions, now_ns)
        cumulative = order.filled_qty
        if update.qty is None or update.price is None or cumulative <= self.filled_qty:
            return actions  # already counted (a snapshot got here first)
        this_qty = min(update.qty, cumulative - self.filled_qty)
        actions.extend(self._catch_up_fills(order, cumulative - this_qty, now_ns, update.price))
        ts_event = ts_ns(update.timestamp, now_ns)
        trade_id = update.execution_id or f"{order.id}-{cumulative}"
        actions.append(
            Fill(
                order.id,
                trade_id,
                this_qty,
                update.price,
                liquidity_side(order.type),
                ts_event,
                False,
            )
        )
        self.filled_qty = cumulative
        self.filled_notional += this_qty * update.price
        self._finish(order, actions, now_ns)
        return actions

    def apply_activity(
        self, order: AlpacaOrder, activity: FillActivity, now_ns: int
    ) -> list[Action]:
        """A fill activity (REST) of the venue order ``order``: the exact execution the stream
        missed. Applied only when it is the very next one (its ``cum_qty`` minus its qty is
        what was reported so far): feed them in ``cum_qty`` order; whatever cannot be placed
        exactly is left to ``apply_snapshot``'s derived fill."""
        actions: list[Action] = []
        if activity.cum_qty is None or activity.order_id != order.id:
            return actions
        if not self._follow(order, actions, now_ns):
            return actions
        if activity.cum_qty - activity.qty != self.filled_qty:
            return actions
        self._accept(order, actions, now_ns)
        ts_event = ts_ns(activity.transaction_time, now_ns)
        actions.append(
            Fill(
                order.id,
                execution_id(activity.id),
                activity.qty,
                activity.price,
                liquidity_side(order.type),
                ts_event,
                False,
            )
        )
        self.filled_qty = activity.cum_qty
        self.filled_notional += activity.qty * activity.price
        return actions

    def superseded_by(self, order: AlpacaOrder) -> str | None:
        """The successor's venue id when ``order`` (our current venue order) was replaced."""
        if order.id == self.venue_order_id and order.status == "replaced":
            return order.replaced_by
        return None

    # -- internals ------------------------------------------------------------------------

    def _follow(self, order: AlpacaOrder, actions: list[Action], now_ns: int) -> bool:
        """Whether ``order`` is (still) this order's venue order; moves to a successor."""
        if self.venue_order_id is None or order.id == self.venue_order_id:
            self.venue_order_id = order.id
            return True
        if order.replaces is not None and order.replaces == self.venue_order_id:
            self.venue_order_id = order.id
            if not self.closed and order.qty is not None:
                ts_event = ts_ns(order.submitted_at or order.created_at, now_ns)
                actions.append(
                    Update(order.id, order.qty, order.limit_price, order.stop_price, ts_event)
                )
            return True
        return False  # news about a superseded venue order

    def _accept(self, order: AlpacaOrder, actions: list[Action], now_ns: int) -> None:
        if not self.accepted and not self.closed:
            self.accepted = True
            actions.append(Accept(order.id, ts_ns(order.submitted_at or order.created_at, now_ns)))

    def _catch_up_fills(
        self, order: AlpacaOrder, cumulative: Decimal, now_ns: int, later_px: Decimal | None = None
    ) -> list[Action]:
        """One derived fill bringing the reported quantity up to ``cumulative``. When that is
        short of the order's ``filled_qty``, the rest was executed at ``later_px`` (the fill
        being reported) and is taken out of the venue's total first."""
        gap = cumulative - self.filled_qty
        if gap <= 0:
            return []
        avg = order.filled_avg_price
        if avg is None:
            raise ValueError(
                f"order {order.id} reports filled_qty {order.filled_qty} without an average price"
            )
        notional_at_cumulative = avg * order.filled_qty
        if cumulative != order.filled_qty:
            if later_px is None:
                raise ValueError(f"order {order.id}: no price for the fills after {cumulative}")
            notional_at_cumulative -= (order.filled_qty - cumulative) * later_px
        px = (notional_at_cumulative - self.filled_notional) / gap
        px = px.quantize(Decimal(1).scaleb(-max(2, decimals(avg))))
        self.filled_qty = cumulative
        self.filled_notional += px * gap
        ts_event = ts_ns(order.filled_at or order.updated_at, now_ns)
        return [
            Fill(
                order.id,
                f"{order.id}-{cumulative}",
                gap,
                px,
                liquidity_side(order.type),
                ts_event,
                True,
            )
        ]

    def _finish(self, order: AlpacaOrder, actions: list[Action], now_ns: int) -> None:
        if self.closed:
            return
        ts_event = ts_ns(order.updated_at, now_ns)
        if order.status == "filled" or (order.qty is not None and self.filled_qty >= order.qty):
            self.closed = True
        elif order.status == "canceled":
            self.closed = True
            actions.append(Cancel(order.id, ts_event))
        elif order.status == "expired":
            self.closed = True
            actions.append(Expire(order.id, ts_event))
