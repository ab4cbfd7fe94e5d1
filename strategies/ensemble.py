"""EnsembleStrategy: trade the weighted vote of the models' probabilities under the risk rules.

The trading idea in one paragraph: when a fresh MLSignal arrives for a stock with no position,
combine the models' probabilities with the configured weights; go long when the ensemble is at
least ``entry_threshold`` sure the price rises, short when it is as sure it falls; enter with a
bracket (2% stop, or optionally one set from the signal's forecast volatility; 4% target) sized
to risk 1% of equity; be flat before the session's real close; stop for the day when the day's
loss reaches the limit.

The same class runs in backtests (signals replayed from the catalog) and live (signals
published by the SignalActor). Live, it also says what it did with each signal of a stock it
trades (``strategies.decisions``: entered, or why not), for the journal.
"""

import msgspec
import pandas as pd
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import Bar, BarType, DataType
from nautilus_trader.model.enums import AccountType, OrderSide, TradingState
from nautilus_trader.model.events import OrderRejected, PositionClosed, PositionOpened
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId, Venue
from nautilus_trader.trading.strategy import Strategy

from catalog.instruments import BAR_SPEC, sector_of
from catalog.sessions import load_calendar, session_bounds
from models import outlook
from models.ensemble import ensemble_probability
from strategies.decisions import Action, Reason, StrategyDecision
from strategies.risk import (
    TRADING_STATE_ENDPOINT,
    RiskRules,
    bracket_prices,
    capped_by_sector,
    position_size,
)
from strategies.settings import StrategySettings
from strategies.signals import MLSignal

FLATTEN_ALERT = "flatten-before-close"
# Tags of the orders that close positions, beside the bracket's own STOP_LOSS / TAKE_PROFIT:
# a trade's exit reason is its closing order's tag (the report cuts trades by it).
FLATTEN_TAG = "FLATTEN"  # session close, strategy stop, a position carried over a session end
HALT_TAG = "HALT"  # the daily loss limit
OPERATOR_TAG = "OPERATOR"  # the control panel: a manual close, the emergency stop
# Live: the execution client publishes True/False here as it can or cannot see the venue's
# order updates (the node points it at this topic); no entries while False. A backtest never
# publishes: its venue is always connected.
EXECUTION_STATUS_TOPIC = "sextant.execution.connected"
# Live: the execution client publishes the broker's start-of-day equity (its equity at the
# previous close) here as JSON {"session_open_ns", "last_equity"}, and keeps the latest in the
# cache under the same key (adapters.alpaca.day_start). A backtest never publishes: its day
# starts at the equity of the session's first signal.
DAY_START_TOPIC = "sextant.execution.day_start"


_DEFAULTS = StrategySettings()


class EnsembleStrategyConfig(StrategyConfig, frozen=True, kw_only=True):
    """The engine-facing config, built by ``StrategySettings.engine_fields`` (which owns the
    bounds) plus the instruments; its defaults are the settings' defaults.
    ``publish_decisions``: publish a StrategyDecision for every signal of a traded stock (the
    live node's journal stores them); off in backtests and tuning trials, which need speed."""

    instrument_ids: list[str]
    weights: dict[str, float]
    entry_threshold: float = _DEFAULTS.entry_threshold
    allow_short: bool = _DEFAULTS.allow_short
    risk: RiskRules = _DEFAULTS.risk
    publish_decisions: bool = False


class EnsembleStrategy(Strategy):
    def __init__(self, config: EnsembleStrategyConfig) -> None:
        super().__init__(config)
        self.instrument_ids = [InstrumentId.from_str(i) for i in config.instrument_ids]
        self.rules = config.risk
        self.threshold = config.entry_threshold
        self.venue = Venue(self.instrument_ids[0].venue.value)
        self._names_by_models: dict[str, tuple[str, ...]] = {}
        self._bar_types = {iid: BarType.from_str(f"{iid}-{BAR_SPEC}") for iid in self.instrument_ids}
        self._sectors: dict[InstrumentId, str] = {}
        self._session_open = 0
        self._session_close = 0
        self._flatten_at = 0
        self._flattened = True  # nothing to flatten before the first session
        self._flatten_by_bar = False
        self._entry_cutoff = 0
        self._day_start_equity = 0.0
        self._broker_day_start: tuple[int, float] | None = None  # (session open ns, equity)
        self._halted = False
        self._last_check_ns = 0
        self._execution_connected = True
        # Entry orders not done yet -> the price they were sized at. Live, fills land after the
        # other signals of the same bar are handled; these orders must count against the caps.
        self._entries_in_flight: dict[ClientOrderId, float] = {}
        self._without_volatility: set[InstrumentId] = set()
        self._publish_decisions = config.publish_decisions
        self._decision_type = DataType(StrategyDecision)
        self.weights = dict(config.weights)  # the operator may change them (set_weights)
        self._entries_enabled = True
        self._emergency_stopped = False
        load_calendar()

    # -- lifecycle -----------------------------------------------------------------------------

    def on_start(self) -> None:
        for iid in self.instrument_ids:
            instrument = self.cache.instrument(iid)
            if instrument is None:
                raise RuntimeError(f"instrument {iid} is not in the cache")
            self._sectors[iid] = sector_of(instrument)
            self.subscribe_bars(self._bar_types[iid])
        self.subscribe_data(DataType(MLSignal))
        self.msgbus.subscribe(topic=EXECUTION_STATUS_TOPIC, handler=self._on_execution_status)
        self.msgbus.subscribe(topic=DAY_START_TOPIC, handler=self._on_day_start)
        published = self.cache.get(DAY_START_TOPIC)  # read at connect, before this strategy started
        if published is not None:
            self._on_day_start(published)

    def on_stop(self) -> None:
        self.cancel_all_orders_everywhere()
        self.flatten("strategy stop")

    # -- events --------------------------------------------------------------------------------

    def on_data(self, data) -> None:
        if not isinstance(data, MLSignal):
            return
        ts = data.ts_event
        if ts > self._session_close:
            self._roll_session(ts)
        if ts != self._last_check_ns:
            self._last_check_ns = ts
            self._check_daily_loss()
        iid = data.instrument_id
        if iid not in self._sectors:
            return  # MLSignal subscriptions are not per instrument: ignore stocks we do not trade
        blocked = self._entry_blocked(iid, ts)
        if blocked is not None:
            self._decided(data, Action.SKIP, blocked)
            return
        probability = self._ensemble(data)
        vote = outlook.decide(probability, self.threshold, self.config.allow_short)
        if vote == outlook.HOLD:
            self._decided(data, Action.HOLD, Reason.BELOW_THRESHOLD, probability)
            return
        self._enter(iid, OrderSide.BUY if vote == outlook.BUY else OrderSide.SELL, data, probability)

    def on_bar(self, bar: Bar) -> None:
        if self._flatten_by_bar and not self._flattened and bar.ts_event >= self._flatten_at:
            self._flatten_for_close()

    def _on_execution_status(self, connected: bool) -> None:
        if connected == self._execution_connected:
            return
        self._execution_connected = connected
        if connected:
            self.log.warning("execution client connected again: new entries resume")
        else:
            self.log.error("execution client disconnected (order updates unseen): no new entries until it is back")

    def _on_day_start(self, message: bytes) -> None:
        """The broker's start-of-day equity of a session: the day's start from that session's
        roll on (at once when it is the session in progress), so a node restarted mid-day
        counts the day's loss from the previous close, not from its own reduced equity."""
        start = msgspec.json.decode(message)
        self._broker_day_start = (start["session_open_ns"], start["last_equity"])
        if start["session_open_ns"] == self._session_open:
            self._day_start_equity = start["last_equity"]

    def on_order_rejected(self, event: OrderRejected) -> None:
        self.log.warning(f"order {event.client_order_id} rejected: {event.reason}; carrying on")

    def on_position_opened(self, event: PositionOpened) -> None:
        if self._halted:  # an entry a live risk engine still held in its queue when the halt came
            self.log.warning(f"{event.instrument_id} opened while halted: closing it")
            self.cancel_all_orders(event.instrument_id)
            self.close_all_positions(event.instrument_id, tags=[HALT_TAG])

    def on_position_closed(self, event: PositionClosed) -> None:
        self._check_daily_loss()

    # -- the trading idea ----------------------------------------------------------------------

    def _ensemble(self, signal: MLSignal) -> float:
        names = self._names_by_models.get(signal.models)
        if names is None:
            names = self._names_by_models[signal.models] = signal.model_names()
        return ensemble_probability(dict(zip(names, signal.probabilities.tolist())), self.weights)

    def _entry_blocked(self, iid: InstrumentId, ts: int) -> Reason | None:
        """The reason no signal of ``iid`` at ``ts`` may enter, whatever the vote; None: none."""
        if self._emergency_stopped:
            return Reason.EMERGENCY_HALT
        if self._halted:
            return Reason.HALTED
        if not self._entries_enabled:
            return Reason.ENTRIES_PAUSED
        if not self._execution_connected:
            return Reason.EXECUTION_DISCONNECTED
        if not (self._session_open < ts <= self._entry_cutoff):
            return Reason.OUTSIDE_ENTRY_WINDOW
        if not self.portfolio.is_flat(iid):
            return Reason.POSITION_OPEN  # one position per stock; its bracket manages the exit
        if self.cache.orders_open_count(instrument_id=iid):
            return Reason.ORDER_OPEN
        return None

    def _enter(self, iid: InstrumentId, side: OrderSide, signal: MLSignal, probability: float) -> None:
        stop_loss = self.rules.stop_distance(signal.volatility, signal.horizon)
        if stop_loss is None:
            if iid not in self._without_volatility:  # once per stock: a whole old catalog lacks it
                self._without_volatility.add(iid)
                self.log.warning(f"{iid}: the volatility-targeted stop needs the signal's volatility "
                                 f"(got {signal.volatility}, horizon {signal.horizon}); no entry")
            self._decided(signal, Action.SKIP, Reason.NO_VOLATILITY, probability)
            return
        pending = self._pending_entries()
        if iid in pending:
            self._decided(signal, Action.SKIP, Reason.ENTRY_PENDING, probability)
            return
        open_positions = self.cache.positions_open_count(venue=self.venue)
        open_positions += sum(1 for p in pending if self.portfolio.is_flat(p))
        if open_positions >= self.rules.max_positions:
            self._decided(signal, Action.SKIP, Reason.MAX_POSITIONS, probability)
            return
        bar = self.cache.bar(self._bar_types[iid])
        if bar is None:
            self._decided(signal, Action.SKIP, Reason.NO_BAR, probability)
            return
        price = bar.close.as_double()
        instrument = self.cache.instrument(iid)
        stop, target = bracket_prices(
            price, side == OrderSide.BUY, self.rules, instrument.price_increment.as_decimal(), stop_loss
        )
        equity = self._equity()
        quantity = position_size(equity, price, float(stop), self.rules)
        if quantity < 1:
            self._decided(signal, Action.SKIP, Reason.SIZE_BELOW_ONE, probability)
            return
        quantity = capped_by_sector(quantity, price, self._sector_exposure(self._sectors[iid], pending), equity, self.rules)
        if quantity < 1:
            self._decided(signal, Action.SKIP, Reason.SECTOR_CAP, probability)
            return
        bracket = self.order_factory.bracket(
            instrument_id=iid,
            order_side=side,
            quantity=instrument.make_qty(quantity),
            sl_trigger_price=instrument.make_price(stop),
            tp_price=instrument.make_price(target),
            tp_post_only=False,
        )
        entry_id = bracket.first.client_order_id
        self._decided(signal, Action.ENTER_LONG if side == OrderSide.BUY else Action.ENTER_SHORT, None, probability,
                      entry_id.value)
        self.submit_order_list(bracket)
        self._entries_in_flight[entry_id] = price

    def _decided(self, signal: MLSignal, action: Action, reason: Reason | None, probability: float | None = None,
                 client_order_id: str = "") -> None:
        """Publish what became of ``signal`` (when the config asks); ``reason`` None: an entry;
        ``probability`` None: the signal was stopped before the vote, computed here for the record."""
        if not self._publish_decisions:
            return
        self.publish_data(self._decision_type, StrategyDecision(
            ts_event=signal.ts_event, ts_init=self.clock.timestamp_ns(), instrument_id=signal.instrument_id,
            probability=self._ensemble(signal) if probability is None else probability,
            threshold=self.threshold, action=action.value, reason="" if reason is None else reason.value,
            client_order_id=client_order_id))

    # -- risk ----------------------------------------------------------------------------------

    def _roll_session(self, ts: int) -> None:
        bounds = session_bounds(pd.Timestamp(ts, tz="UTC"))
        if bounds is None:
            return
        self._session_open, self._session_close = (b.value for b in bounds)
        minute = 60_000_000_000
        self._entry_cutoff = self._session_close - self.rules.no_entry_minutes_before_close * minute
        if self._halted and not self._emergency_stopped:
            self.msgbus.send(TRADING_STATE_ENDPOINT, TradingState.ACTIVE)
            self._halted = False
        # Anything opened before this session survived a session end without a bar to trigger
        # the alert. What a node restarted mid-session reconciled from today stays: its
        # brackets manage it, as they did before the restart.
        if self._opened_before(self._session_open):
            self.flatten("position carried over a session boundary")
        broker = self._broker_day_start  # never a stale one: it must be this session's
        self._day_start_equity = broker[1] if broker is not None and broker[0] == self._session_open else self._equity()
        self.clock.cancel_timers()
        self._flatten_at = self._session_close - self.rules.flatten_minutes_before_close * minute
        self._flattened = False
        # One nanosecond after the flatten minute: every instrument's bar of that minute has
        # reached the venue by then, so all positions close at that minute's prices.
        self._flatten_by_bar = self._flatten_at + 1 <= self.clock.timestamp_ns()
        if not self._flatten_by_bar:
            self.clock.set_time_alert_ns(FLATTEN_ALERT, self._flatten_at + 1, self._flatten_for_close)

    def _opened_before(self, ts: int) -> bool:
        return (any(p.ts_opened < ts for p in self.cache.positions_open(venue=self.venue))
                or any(o.ts_init < ts for o in self.cache.orders_open(venue=self.venue)))

    def _flatten_for_close(self, _alert: object = None) -> None:
        """Once per session: by the clock alert, or, when the clock is already past the flatten
        time (a rehearsal replays a past day while the node's clock shows today), by the first
        bar stamped at the flatten minute, by when a rehearsal's broker has settled that minute."""
        if not self._flattened:
            self._flattened = True
            self.flatten("session close")

    def _check_daily_loss(self) -> None:
        if self._halted or self._day_start_equity <= 0:
            return
        loss = 1.0 - self._equity() / self._day_start_equity
        if loss >= self.rules.daily_loss_limit:
            self.log.warning(f"daily loss {loss:.2%} reached the limit: flattening and halting")
            self.flatten("daily loss limit", tag=HALT_TAG)
            # REDUCING, not HALTED: a live risk engine takes the flatten's orders from its queue
            # after this state change, and HALTED would deny them; REDUCING passes closing
            # orders and denies any that adds risk. The strategy enters nothing until the next
            # session either way.
            self.msgbus.send(TRADING_STATE_ENDPOINT, TradingState.REDUCING)
            self._halted = True

    def flatten(self, reason: str, tag: str = FLATTEN_TAG) -> None:
        if self.cache.positions_open_count(venue=self.venue) == 0 and not self.cache.orders_open_count(venue=self.venue):
            return
        self.log.info(f"flattening: {reason}")
        self.cancel_all_orders_everywhere()
        for iid in self.instrument_ids:
            self.close_all_positions(iid, tags=[tag])

    def cancel_all_orders_everywhere(self) -> None:
        for iid in self.instrument_ids:
            self.cancel_all_orders(iid)

    def _equity(self) -> float:
        """Balance plus open positions marked at their last bar close.

        Marks positions from the bars the strategy already holds rather than asking the
        Portfolio (which recomputes every instrument's P&L): it runs once per signal minute.
        """
        account = self.portfolio.account(self.venue)
        if account is None:
            return 0.0
        equity = account.balance_total(USD).as_double()
        cash_account = account.type == AccountType.CASH
        for position in self.cache.positions_open(venue=self.venue):
            bar = self.cache.bar(self._bar_types[position.instrument_id])
            if bar is None:
                continue
            if cash_account:
                # A cash account paid for its shares out of the balance: add them back at market.
                equity += position.signed_qty * bar.close.as_double()
            else:
                equity += position.unrealized_pnl(bar.close).as_double()
        return equity

    def _pending_entries(self) -> dict[InstrumentId, float]:
        """Unfilled notional of the entry orders still in flight, by instrument."""
        pending: dict[InstrumentId, float] = {}
        for client_order_id, price in list(self._entries_in_flight.items()):
            order = self.cache.order(client_order_id)
            if order is None or order.is_closed:
                del self._entries_in_flight[client_order_id]
            else:
                pending[order.instrument_id] = order.leaves_qty.as_double() * price
        return pending

    def _sector_exposure(self, sector: str, pending: dict[InstrumentId, float]) -> float:
        total = sum(n for iid, n in pending.items() if self._sectors.get(iid) == sector)
        for position in self.cache.positions_open(venue=self.venue):
            if self._sectors.get(position.instrument_id) == sector:
                total += abs(position.quantity.as_double() * position.avg_px_open)
        return total

    # -- the operator's commands (live.control, on the node's loop) ----------------------------

    @property
    def execution_connected(self) -> bool:
        return self._execution_connected

    def set_entries_enabled(self, enabled: bool) -> None:
        """New entries on or off from the next signal; open positions keep their brackets."""
        self._entries_enabled = enabled and not self._emergency_stopped
        self.log.warning(f"operator: new entries {'on' if self._entries_enabled else 'off'}")

    def set_weights(self, weights: dict[str, float]) -> None:
        """The ensemble's weights from the next signal (validated by the caller with
        StrategySettings: ``live.control.TradingControl.set_weights``)."""
        self.weights = dict(weights)
        self.log.warning(f"operator: weights {self.weights}")

    def close_symbol(self, symbol: str) -> bool:
        """Close ``symbol``'s position: cancel its bracket, close at market. False: none open."""
        iid = next((i for i in self.instrument_ids if i.symbol.value == symbol), None)
        if iid is None or self.portfolio.is_flat(iid):
            return False
        self.cancel_all_orders(iid)
        self.close_all_positions(iid, tags=[OPERATOR_TAG])
        return True

    def emergency_stop(self) -> None:
        """Cancel every order, flatten every position, no entries for the rest of the run. The
        engine goes REDUCING (closing orders pass, nothing else) until ``halt_if_flat``."""
        self._emergency_stopped = True
        self._entries_enabled = False
        self._halted = True
        self.log.error("operator: EMERGENCY STOP: cancelling, flattening, halting")
        self.msgbus.send(TRADING_STATE_ENDPOINT, TradingState.REDUCING)
        self.flatten("emergency stop", tag=OPERATOR_TAG)
        self.halt_if_flat()

    def halt_if_flat(self) -> None:
        """HALTED once nothing is open or in flight (HALTED denies even closing orders: an
        entry still in flight that fills later is closed as it opens, which needs REDUCING)."""
        cache = self.cache
        if self._emergency_stopped and not cache.positions_open_count(venue=self.venue) \
                and not cache.orders_open_count(venue=self.venue) and not cache.orders_inflight_count(venue=self.venue):
            self.msgbus.send(TRADING_STATE_ENDPOINT, TradingState.HALTED)
