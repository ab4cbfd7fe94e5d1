"""The paper broker's order state machine and fill rules: pure, synchronous, no I/O.

Everything here runs on one thread (the sandbox's event loop); each command returns the
trade_updates it caused, in order, for the stream to send.

Time. The book keeps ``market_ns``: the simulated instant up to which it has settled. Orders
are stamped with it, and only bars closing at or before it are "known". ``advance(ts)``
settles every bar closing in (market_ns, ts] in time order, then moves market_ns to ts.

Prices come from the catalog's 1-minute bars, each stamped with its CLOSE. "The last bar" of
a symbol at time t is its latest bar with close <= t that belongs to the session in progress
(NYSE open < bar close <= t); before the first bar of a session there is none.

Fill rules (the parity test cites these numbers):
  1. Market: fills on arrival at the last bar's close (the bar the strategy just saw); without
     a last bar it fills at the close of the next bar of the symbol (the session's first bar).
  2. Limit: marketable on arrival (buy: limit >= last close; sell: limit <= last close) fills at
     the last close. Otherwise it rests and fills AT ITS LIMIT on the first later bar that
     trades through it (buy: low <= limit; sell: high >= limit).
  3. Stop: already crossed on arrival (buy: last close >= stop; sell: last close <= stop) fills
     at the last close. Otherwise it triggers on the first later bar that reaches it (buy:
     high >= stop; sell: low <= stop) and fills AT THE STOP on that bar; a remainder left by
     participation then fills like a market order at later closes.
  4. Stop-limit: triggers like a stop (on arrival by the last close, later by high/low); once
     triggered it is a limit order: on arrival it fills at the last close if marketable, on the
     trigger bar and later bars at its limit when the bar trades through it.
  5. Only bars closing AFTER an order arrived (or its bracket leg became active) can fill it.
  6. Brackets (entry + take-profit limit + stop-loss stop/stop_limit legs, both "held"): when
     the entry is completely filled the legs become "new" (a ``new`` event each) and are
     settled from the next bar on. When both legs could fill on one bar the stop-loss goes
     first. A leg filling completely cancels the other (OCO); a partial leg fill lowers the
     other leg's qty by the same amount (no event). oto = entry + one leg; oco = a take-profit
     limit (the parent) and a stop-loss leg, both active at once. Cancelling or expiring the
     entry cancels its held legs; a held leg cannot be cancelled on its own.
  7. Time in force: day orders expire (``expired`` event, stamped with the session close)
     when settling reaches the close of the session they were submitted in (or, submitted
     outside a session, of the next one), after that close's bar was settled; gtc never
     expires; ioc fills what it can on arrival and cancels the rest; fok fills completely on
     arrival or is cancelled.
  8. Participation p: an order fills at most max(1, floor(p * bar volume)) shares per bar (its
     arrival fill counts against the last bar), giving ``partial_fill`` events then ``fill``.
     The cap applies to each order separately.
  9. Replace (PATCH): only a working, unfilled limit/stop/stop_limit order (or active leg). The
     old order becomes "replaced" (``replaced`` event), a new order with a new id and
     ``replaces`` takes its place (``new`` event; in a bracket it inherits the legs/OCO
     partner) and is treated as just arrived.

Timestamps: every order and event is stamped with market time, so orders submitted between two
settlements share one ``created_at`` (page GET /v2/orders with that in mind).

Positions net per symbol (shorting allowed). Average entry prices are exact (kept as fractions,
reported as Decimal); cash moves by qty * fill price. Account (a 2x margin account, simplified):
equity = cash + market value of positions at their last close; buying_power = 2 * equity -
gross exposure - the opening notional of working orders (qty that would open or grow a
position, valued at the limit/stop price or the last close). An order whose opening notional
exceeds buying_power is refused with 403. last_equity is the equity at the latest session
close that settling passed (the start-of-day equity a daily-loss rule wants).
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pandas as pd

from adapters.alpaca.sandbox.market import BarPrices, CatalogMarket, SymbolBars
from adapters.alpaca.sandbox.orders import (
    BrokerError,
    Order,
    OrderSpec,
    ReplaceSpec,
    invalid,
)
from adapters.alpaca.sandbox.wire import money, order_json, rfc3339
from catalog.sessions import session_bounds

CENT = Decimal("0.01")
NOT_CANCELABLE_CODE = 42210000


@dataclass(frozen=True)
class TradeUpdate:
    """One trade_updates message: ``data`` is its "data" object."""

    event: str
    order_id: str
    data: dict[str, Any]


@dataclass
class Position:
    qty: int = 0
    cost: Fraction = Fraction(0)  # signed: qty * average entry price

    @property
    def avg_entry_price(self) -> Decimal:
        if self.qty == 0:
            return Decimal(0)
        avg = self.cost / self.qty
        return Decimal(avg.numerator) / Decimal(avg.denominator)

    def apply(self, signed_qty: int, price: Decimal) -> None:
        if self.qty == 0 or (self.qty > 0) == (signed_qty > 0):
            self.qty += signed_qty
            self.cost += Fraction(price) * signed_qty
            return
        closing = min(abs(signed_qty), abs(self.qty))
        remaining = abs(self.qty) - closing
        self.cost = self.cost * remaining / abs(self.qty) if remaining else Fraction(0)
        self.qty += signed_qty
        if self.qty != 0 and remaining == 0:  # crossed through zero: the rest opens anew
            self.cost = Fraction(price) * self.qty


@dataclass(frozen=True)
class AccountState:
    cash: Decimal
    equity: Decimal
    long_market_value: Decimal
    short_market_value: Decimal
    buying_power: Decimal


class Book:
    """Orders, positions, cash and fill activities of one paper account."""

    def __init__(
        self,
        market: CatalogMarket,
        *,
        start_ns: int,
        starting_cash: Decimal = Decimal(100_000),
        participation: float | None = None,
    ) -> None:
        if participation is not None and not 0 < participation <= 1:
            raise ValueError(f"participation must be in (0, 1], got {participation}")
        self.market = market
        self.market_ns = start_ns
        self.cash = Decimal(starting_cash)
        self.last_equity = self.cash  # equity at the latest session close settled
        self.participation = participation
        self.orders: dict[str, Order] = {}
        self.positions: dict[str, Position] = {}
        self.activities: list[tuple[int, dict[str, Any]]] = []  # (transaction ns, activity)
        self._by_client_id: dict[str, Order] = {}
        self._open: dict[str, Order] = {}  # working or held, in creation order
        self._updates: list[TradeUpdate] = []
        # Every order of a burst asks for the same instant's marks and session (the account
        # valuation marks every position): memos of the last instant asked, exact because
        # the market and the calendar never change.
        self._marks_ns: int | None = None
        self._marks: dict[str, Decimal | None] = {}
        self._session_memo: tuple[int, tuple[int, int] | None] | None = None

    # -- queries --------------------------------------------------------------------------------

    def order(self, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order is None:
            raise BrokerError(404, 40410000, "order not found")
        return order

    def order_by_client_id(self, client_order_id: str) -> Order:
        order = self._by_client_id.get(client_order_id)
        if order is None:
            raise BrokerError(404, 40410000, "order not found")
        return order

    def mark(self, symbol: str) -> Decimal | None:
        """The symbol's last close at or before market time (any session)."""
        if self._marks_ns != self.market_ns:
            self._marks_ns, self._marks = self.market_ns, {}
        if symbol not in self._marks:
            bars = self.market.bars(symbol)
            i = bars.last_index_at(self.market_ns)
            self._marks[symbol] = None if i is None else bars.bar(i).close
        return self._marks[symbol]

    def previous_session_close(self, symbol: str) -> Decimal | None:
        """The last close before the session in progress (or the next one) opened."""
        bounds = self._session(self.market_ns)
        if bounds is None:
            return self.mark(symbol)
        bars = self.market.bars(symbol)
        i = bars.last_index_at(bounds[0])
        return None if i is None else bars.bar(i).close

    def account(self) -> AccountState:
        long_mv = short_mv = Decimal(0)
        for symbol, pos in self.positions.items():
            if pos.qty == 0:
                continue
            value = pos.qty * self.reference_price(symbol)
            if pos.qty > 0:
                long_mv += value
            else:
                short_mv += value
        equity = self.cash + long_mv + short_mv
        reserved = sum(
            (self._opening_qty(o) * self._order_price(o) for o in self._open.values() if o.working),
            Decimal(0),
        )
        buying_power = max(Decimal(0), 2 * equity - (long_mv - short_mv) - reserved)
        return AccountState(self.cash, equity, long_mv, short_mv, buying_power)

    # -- commands -------------------------------------------------------------------------------

    def submit(
        self, spec: OrderSpec, reject: Callable[[], bool] | None = None
    ) -> tuple[Order, dict, list[TradeUpdate]]:
        """Accept a new order; returns it, its JSON as accepted (what POST answers: fills come
        later, over the stream) and the trade updates. ``reject()`` is asked once the order
        passed every check: True accepts it, then rejects it (a ``rejected`` update)."""
        if spec.client_order_id is not None and spec.client_order_id in self._by_client_id:
            raise invalid("client_order_id must be unique")
        now = self.market_ns
        order = Order(
            symbol=spec.symbol,
            side=spec.side,
            type=spec.type,
            time_in_force=spec.time_in_force,
            qty=spec.qty,
            order_class=spec.order_class,
            client_order_id=spec.client_order_id or str(uuid.uuid4()),
            created_ns=now,
            limit_price=spec.limit_price,
            stop_price=spec.stop_price,
            active_after_ns=now,
            expires_ns=self._expiry(spec.time_in_force, now),
        )
        order.closing = self._opening_qty(order) < order.qty
        if spec.order_class != "simple":
            self._check_bracket_prices(order, spec)
            self._attach_legs(order, spec)
        if self._opening_qty(order) * self._order_price(order) > self.account().buying_power:
            raise BrokerError(403, 40310000, "insufficient buying power")
        for o in (order, *order.legs):
            self.orders[o.id] = o
            self._by_client_id[o.client_order_id] = o
            self._open[o.id] = o
        if reject is not None and reject():
            order.status = "accepted"
            accepted = order_json(order)
            for o in (order, *order.legs):
                o.status, o.failed_ns, o.updated_ns = "rejected", now, now
                self._open.pop(o.id, None)
            self._emit("rejected", order, now)
            return order, accepted, self._drain()
        accepted = order_json(order)
        self._emit("new", order, now)
        for leg in order.legs:
            if leg.status == "new":  # oco: the stop-loss works from the start
                self._emit("new", leg, now)
        self._on_arrival(order)
        for leg in order.legs:
            if leg.working:
                self._on_arrival(leg)
        return order, accepted, self._drain()

    def cancel(self, order_id: str) -> list[TradeUpdate]:
        order = self.order(order_id)
        if order.status == "held":
            raise BrokerError(
                422, NOT_CANCELABLE_CODE, "order is a held bracket leg: cancel its parent instead"
            )
        if not order.working:
            raise BrokerError(
                422, NOT_CANCELABLE_CODE, f"order is not cancelable (status {order.status})"
            )
        self._close(order, "canceled", self.market_ns)
        return self._drain()

    def cancel_all(self) -> tuple[list[Order], list[TradeUpdate]]:
        """Cancel every working order (legs go with their parent); returns those cancelled."""
        cancelled = []
        for order in list(self._open.values()):
            if order.working:
                self._close(order, "canceled", self.market_ns)
                cancelled.append(order)
        return cancelled, self._drain()

    def replace(self, order_id: str, spec: ReplaceSpec) -> tuple[Order, dict, list[TradeUpdate]]:
        old = self.order(order_id)
        self._check_replaceable(old, spec)
        if spec.client_order_id is not None and spec.client_order_id in self._by_client_id:
            raise invalid("client_order_id must be unique")
        now = self.market_ns
        tif = spec.time_in_force or old.time_in_force
        new = Order(
            symbol=old.symbol,
            side=old.side,
            type=old.type,
            time_in_force=tif,
            qty=spec.qty or old.qty,
            order_class=old.order_class,
            client_order_id=spec.client_order_id or str(uuid.uuid4()),
            created_ns=now,
            limit_price=spec.limit_price or old.limit_price,
            stop_price=spec.stop_price or old.stop_price,
            active_after_ns=now,
            expires_ns=self._expiry(tif, now) if tif != old.time_in_force else old.expires_ns,
            replaces=old.id,
            triggered=old.triggered,
            closing=old.closing,
            parent=old.parent,
            legs=old.legs,
            oco=old.oco,
        )
        released = self._opening_qty(old) * self._order_price(old)
        needed = self._opening_qty(new) * self._order_price(new)
        if needed > self.account().buying_power + released:
            raise BrokerError(403, 40310000, "insufficient buying power")
        for leg in new.legs:
            leg.parent = new
        if old.parent is not None:
            old.parent.legs[old.parent.legs.index(old)] = new
        if old.oco is not None:
            old.oco[old.oco.index(old)] = new
        old.legs = []
        old.status, old.replaced_ns, old.replaced_by, old.updated_ns = "replaced", now, new.id, now
        self._open.pop(old.id)
        self.orders[new.id] = new
        self._by_client_id[new.client_order_id] = new
        self._open[new.id] = new
        self._emit("replaced", old, now)
        accepted = order_json(new)
        self._emit("new", new, now)
        self._on_arrival(new)
        return new, accepted, self._drain()

    def close_position(
        self, symbol: str, qty: int | None = None, percentage: Decimal | None = None
    ) -> tuple[Order, dict, list[TradeUpdate]]:
        """DELETE /v2/positions/{symbol}: a day market order flattening (part of) it."""
        pos = self.positions.get(symbol)
        if pos is None or pos.qty == 0:
            raise BrokerError(404, 40410000, "position does not exist")
        size = abs(pos.qty)
        if percentage is not None:
            if not 0 < percentage <= 100:
                raise invalid(f"percentage must be in (0, 100], got {percentage}")
            size = int(size * percentage / 100)
        elif qty is not None:
            if qty > size:
                raise BrokerError(
                    403,
                    40310000,
                    f"insufficient qty available for order (requested: {qty}, available: {size})",
                )
            size = qty
        if size <= 0:
            raise invalid("nothing to close: the requested part rounds to 0 shares")
        spec = OrderSpec(
            symbol=symbol,
            qty=size,
            side="sell" if pos.qty > 0 else "buy",
            type="market",
            time_in_force="day",
        )
        return self.submit(spec)

    def advance(self, upto_ns: int) -> list[TradeUpdate]:
        """Settle every bar closing in (market_ns, upto_ns], instant by instant (rules 1-8)."""
        start = self.market_ns
        if upto_ns <= start:
            return []
        self._expire_due(start)  # e.g. a day order submitted at the very close
        symbols = sorted({o.symbol for o in self._open.values()})
        feeds: dict[str, SymbolBars] = {s: self.market.bars(s) for s in symbols}
        instants: dict[int, list[tuple[str, int]]] = {}
        for symbol, bars in feeds.items():
            first, last = bars.index_range(start, upto_ns)
            for k, close_ns in enumerate(bars.close_ns[first:last].tolist(), start=first):
                instants.setdefault(close_ns, []).append((symbol, k))
        expiries = {
            o.expires_ns
            for o in self._open.values()
            if o.expires_ns is not None and start < o.expires_ns <= upto_ns
        }
        closes = _session_closes(start, upto_ns)
        for t in sorted(instants.keys() | expiries | closes):
            self.market_ns = t
            for symbol, k in instants.get(t, ()):
                bar = feeds[symbol].bar(k)
                for order in self._settling_orders(symbol):
                    self._settle_bar(order, bar)
            self._expire_due(t)
            if t in closes:
                self.last_equity = self.account().equity
        self.market_ns = upto_ns
        # Value the positions and find the session of the new instant now, at the bar close,
        # not on the first order of the burst that follows it (both are memoised per instant).
        self.account()
        self._session(upto_ns)
        return self._drain()

    # -- fill rules -----------------------------------------------------------------------------

    def _settling_orders(self, symbol: str) -> list[Order]:
        """Working orders of ``symbol``, stop-losses before take-profits (rule 6)."""
        working = [o for o in self._open.values() if o.symbol == symbol and o.working]
        return sorted(working, key=lambda o: 0 if o.oco is not None and o.type != "limit" else 1)

    def _on_arrival(self, order: Order) -> None:
        bar = self._last_bar(order.symbol)
        price = None if bar is None else self._arrival_price(order, bar.close)
        if price is not None and bar is not None:
            qty = self._capacity(order, bar)
            if order.time_in_force != "fok" or qty >= order.leaves:
                self._fill(order, qty, price, self.market_ns, bar.close_ns)
        if order.time_in_force in ("ioc", "fok") and order.working:
            self._close(order, "canceled", self.market_ns)

    def _arrival_price(self, order: Order, last: Decimal) -> Decimal | None:
        if order.type in ("stop", "stop_limit") and not order.triggered:
            crossed = last >= order.stop_price if order.side == "buy" else last <= order.stop_price
            if not crossed:
                return None
            order.triggered = True
        if order.type in ("market", "stop"):
            return last
        marketable = last <= order.limit_price if order.side == "buy" else last >= order.limit_price
        return last if marketable else None

    def _settle_bar(self, order: Order, bar: BarPrices) -> None:
        if not order.working or bar.close_ns <= order.active_after_ns:
            return
        price: Decimal | None = None
        if order.type == "market" or (order.type == "stop" and order.triggered):
            price = bar.close
        elif order.type == "limit":
            price = self._limit_price_on(order, bar)
        else:
            if not order.triggered:
                reached = (
                    bar.high >= order.stop_price
                    if order.side == "buy"
                    else (bar.low <= order.stop_price)
                )
                if not reached:
                    return
                order.triggered = True
                if order.type == "stop":
                    price = order.stop_price
            if order.type == "stop_limit":
                price = self._limit_price_on(order, bar)
        if price is not None:
            self._fill(order, self._capacity(order, bar), price, bar.close_ns, bar.close_ns)

    @staticmethod
    def _limit_price_on(order: Order, bar: BarPrices) -> Decimal | None:
        limit = order.limit_price
        through = bar.low <= limit if order.side == "buy" else bar.high >= limit
        return limit if through else None

    def _capacity(self, order: Order, bar: BarPrices) -> int:
        if self.participation is None:
            return order.leaves
        cap = max(1, int(self.participation * bar.volume))
        used = order.bar_qty if order.bar_ns == bar.close_ns else 0
        return max(0, min(order.leaves, cap - used))

    def _fill(self, order: Order, qty: int, price: Decimal, ts: int, bar_ns: int) -> None:
        if qty <= 0:
            return
        if order.bar_ns != bar_ns:
            order.bar_ns, order.bar_qty = bar_ns, 0
        order.bar_qty += qty
        order.filled_qty += qty
        order.filled_notional += qty * price
        order.updated_ns = ts
        done = order.leaves == 0
        order.status = "filled" if done else "partially_filled"
        if done:
            order.filled_ns = ts
            self._open.pop(order.id, None)
        position = self.positions.setdefault(order.symbol, Position())
        position.apply(order.sign * qty, price)
        self.cash -= order.sign * qty * price
        event = "fill" if done else "partial_fill"
        execution_id = self._emit(
            event,
            order,
            ts,
            price=money(price),
            qty=str(qty),
            position_qty=str(position.qty),
        )
        # Alpaca's activities name a sale that opens or adds to a short "sell_short" (orders say "sell")
        side = "sell_short" if order.side == "sell" and position.qty < 0 else order.side
        self._record_activity(order, event, side, qty, price, ts, execution_id)
        for sibling in order.siblings():
            if not sibling.is_open:
                continue
            if done:
                self._close(sibling, "canceled", ts)
            else:
                sibling.qty -= qty
        if done:
            for leg in order.legs:
                if leg.status == "held":
                    leg.status, leg.active_after_ns, leg.updated_ns = "new", ts, ts
                    self._emit("new", leg, ts)

    # -- lifecycle helpers ----------------------------------------------------------------------

    def _close(self, order: Order, status: str, ts: int, cascade: bool = True) -> None:
        """End an open order as canceled/expired; its held legs and OCO partners are
        cancelled with it."""
        order.status, order.updated_ns = status, ts
        if status == "expired":
            order.expired_ns = ts
        else:
            order.canceled_ns = ts
        self._open.pop(order.id, None)
        self._emit(status, order, ts)
        if cascade:
            self._cascade(order, ts)

    def _cascade(self, order: Order, ts: int) -> None:
        for leg in order.legs:
            if leg.status == "held":
                self._close(leg, "canceled", ts)
        for sibling in order.siblings():
            if sibling.is_open:
                self._close(sibling, "canceled", ts)

    def _expire_due(self, t: int) -> None:
        due = [
            o
            for o in self._open.values()
            if o.working and o.expires_ns is not None and o.expires_ns <= t
        ]
        for order in due:
            self._close(order, "expired", order.expires_ns or t, cascade=False)
        for order in due:
            self._cascade(order, order.expires_ns or t)

    def _check_replaceable(self, order: Order, spec: ReplaceSpec) -> None:
        if order.status == "held":
            raise BrokerError(422, NOT_CANCELABLE_CODE, "order is a held bracket leg")
        if not order.working:
            raise BrokerError(
                422, NOT_CANCELABLE_CODE, f"order is not open (status {order.status})"
            )
        if order.filled_qty:
            raise BrokerError(
                422,
                NOT_CANCELABLE_CODE,
                "order is partially filled: the sandbox cannot replace it; cancel it instead",
            )
        if order.type == "market":
            raise invalid("market orders cannot be replaced")
        if spec.limit_price is not None and order.type not in ("limit", "stop_limit"):
            raise invalid(f"limit_price is not allowed for {order.type} orders")
        if spec.stop_price is not None and order.type not in ("stop", "stop_limit"):
            raise invalid(f"stop_price is not allowed for {order.type} orders")

    def _check_bracket_prices(self, order: Order, spec: OrderSpec) -> None:
        """Alpaca's rule: take-profit >= base + 0.01 and stop-loss <= base - 0.01 for a buy
        entry (mirrored for a sell), base = the entry's limit/stop or the last close."""
        if spec.order_class == "oco":
            return
        base = order.limit_price or order.stop_price or self.reference_price(order.symbol)
        buy = order.side == "buy"
        tp, sl = spec.take_profit_limit, spec.stop_loss_stop
        if tp is not None and (tp < base + CENT if buy else tp > base - CENT):
            sign = ">= base_price + 0.01" if buy else "<= base_price - 0.01"
            raise invalid(f"take_profit.limit_price must be {sign}")
        if sl is not None and (sl > base - CENT if buy else sl < base + CENT):
            sign = "<= base_price - 0.01" if buy else ">= base_price + 0.01"
            raise invalid(f"stop_loss.stop_price must be {sign}")

    def _attach_legs(self, order: Order, spec: OrderSpec) -> None:
        now = order.created_ns
        oco = spec.order_class == "oco"
        exit_side = order.side if oco else ("sell" if order.side == "buy" else "buy")
        legs = []
        if spec.take_profit_limit is not None and not oco:
            legs.append(self._leg(order, exit_side, "limit", spec.take_profit_limit, None))
        if spec.stop_loss_stop is not None:
            kind = "stop" if spec.stop_loss_limit is None else "stop_limit"
            legs.append(
                self._leg(order, exit_side, kind, spec.stop_loss_limit, spec.stop_loss_stop)
            )
        order.legs = legs
        if oco:
            for leg in legs:
                leg.status, leg.active_after_ns = "new", now
            order.oco = [order, *legs]
            for leg in legs:
                leg.oco = order.oco
        elif spec.order_class == "bracket":
            exits = list(legs)  # its own list: replacing a leg updates legs and exits apart
            for leg in legs:
                leg.oco = exits

    @staticmethod
    def _leg(
        parent: Order, side: str, kind: str, limit: Decimal | None, stop: Decimal | None
    ) -> Order:
        return Order(
            symbol=parent.symbol,
            side=side,
            type=kind,
            time_in_force=parent.time_in_force,
            qty=parent.qty,
            order_class=parent.order_class,
            client_order_id=str(uuid.uuid4()),
            created_ns=parent.created_ns,
            limit_price=limit,
            stop_price=stop,
            status="held",
            expires_ns=parent.expires_ns,
            parent=parent,
        )

    # -- prices, sessions, buying power ---------------------------------------------------------

    def _last_bar(self, symbol: str) -> BarPrices | None:
        """The last bar of ``symbol`` in the session in progress at market time, if any."""
        bars = self.market.bars(symbol)
        i = bars.last_index_at(self.market_ns)
        if i is None:
            return None
        bounds = self._session(self.market_ns)
        if bounds is None:
            return None
        if not bounds[0] < int(bars.close_ns[i]) <= self.market_ns:
            return None
        return bars.bar(i)

    def _expiry(self, tif: str, now: int) -> int | None:
        if tif != "day":
            return None
        bounds = self._session(now)
        return None if bounds is None else bounds[1]

    def _session(self, ts_ns: int) -> tuple[int, int] | None:
        """(open, close) ns of the session containing ``ts_ns`` or the next one."""
        if self._session_memo is None or self._session_memo[0] != ts_ns:
            bounds = session_bounds(pd.Timestamp(ts_ns, tz="UTC"))
            found = None if bounds is None else (int(bounds[0].value), int(bounds[1].value))
            self._session_memo = (ts_ns, found)
        return self._session_memo[1]

    def reference_price(self, symbol: str) -> Decimal:
        """Last close, or before any bar the first bar's close (for valuation only)."""
        mark = self.mark(symbol)
        return mark if mark is not None else self.market.bars(symbol).bar(0).close

    def _order_price(self, order: Order) -> Decimal:
        return order.limit_price or order.stop_price or self.reference_price(order.symbol)

    def _opening_qty(self, order: Order) -> int:
        """The part of the order's leaves that would open or grow a position."""
        position = self.positions.get(order.symbol)
        held = 0 if position is None else position.qty
        if held * order.sign >= 0:
            return order.leaves
        return max(0, order.leaves - abs(held))

    # -- events ---------------------------------------------------------------------------------

    def _emit(self, event: str, order: Order, ts: int, **fill: str) -> str:
        execution_id = str(uuid.uuid4())
        data: dict[str, Any] = {
            "event": event,
            "execution_id": execution_id,
            "timestamp": rfc3339(ts),
            "order": order_json(order),
        }
        data.update(fill)
        self._updates.append(TradeUpdate(event, order.id, data))
        return execution_id

    def _record_activity(
        self, order: Order, kind: str, side: str, qty: int, price: Decimal, ts: int, execution_id: str
    ) -> None:
        stamp = pd.Timestamp(ts, tz="UTC")
        self.activities.append(
            (
                ts,
                {
                    "id": f"{stamp.strftime('%Y%m%d%H%M%S')}{stamp.microsecond // 1000:03d}"
                    f"::{execution_id}",
                    "activity_type": "FILL",
                    "transaction_time": rfc3339(ts),
                    "type": kind,
                    "price": money(price),
                    "qty": str(qty),
                    "side": side,
                    "symbol": order.symbol,
                    "leaves_qty": str(order.leaves),
                    "order_id": order.id,
                    "cum_qty": str(order.filled_qty),
                    "order_status": order.status,
                },
            )
        )

    def _drain(self) -> list[TradeUpdate]:
        updates, self._updates = self._updates, []
        return updates


def _session_closes(after_ns: int, upto_ns: int) -> set[int]:
    """NYSE session closes in (after_ns, upto_ns]."""
    closes = set()
    bounds = session_bounds(pd.Timestamp(after_ns + 1, tz="UTC"))
    while bounds is not None and int(bounds[1].value) <= upto_ns:
        closes.add(int(bounds[1].value))
        bounds = session_bounds(bounds[1] + pd.Timedelta(1, "ns"))
    return closes
