"""The Alpaca live execution client: NautilusTrader commands -> Alpaca REST, Alpaca's
trade_updates and REST state -> NautilusTrader order events and reports.

Where news about an order comes from:
- the answer to POST/PATCH (the order as Alpaca accepted it, with bracket legs);
- the trade_updates stream (``stream.AlpacaTradeStream``);
- REST snapshots: after every stream reconnect (events sent while disconnected are lost),
  when NautilusTrader's in-flight check queries an order (``_query_order``), and when a
  cancel is refused.
All three go through one ``OrderProgress`` per order (``parsing.progress``), which emits each
event exactly once and counts fills by Alpaca's cumulative ``filled_qty``; missed executions
are recovered exactly from GET /v2/account/activities/FILL when Alpaca lists them.

Identity: every order goes out with ``client_order_id`` = its NautilusTrader id. Bracket legs
and replacement orders get ids from Alpaca, so their venue order ids are mapped to the
NautilusTrader orders they stand for (from the POST answer, or ``replaces`` links).
Updates about orders this node does not know (placed elsewhere) are logged and skipped.
"""

import asyncio
import random
import time
from collections import OrderedDict
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.execution.messages import (
    BatchCancelOrders,
    CancelAllOrders,
    CancelOrder,
    GenerateFillReports,
    GenerateOrderStatusReport,
    GenerateOrderStatusReports,
    GeneratePositionStatusReports,
    ModifyOrder,
    QueryAccount,
    QueryOrder,
    SubmitOrder,
    SubmitOrderList,
)
from nautilus_trader.execution.reports import FillReport, OrderStatusReport, PositionStatusReport
from nautilus_trader.live.execution_client import LiveExecutionClient
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import (
    AccountType,
    ContingencyType,
    LiquiditySide,
    OmsType,
    OrderStatus,
)
from nautilus_trader.model.identifiers import (
    AccountId,
    ClientId,
    ClientOrderId,
    InstrumentId,
    TradeId,
    VenueOrderId,
)
from nautilus_trader.model.objects import Money
from nautilus_trader.model.orders import Order

from adapters.alpaca.common import ALPACA, ALPACA_VENUE, AlpacaCredentials
from adapters.alpaca.config import AlpacaExecClientConfig
from adapters.alpaca.day_start import day_start_message
from adapters.alpaca.http import (
    AlpacaApiError,
    AlpacaError,
    AlpacaHttpClient,
    AlpacaNotFoundError,
    AlpacaRequestError,
    AlpacaUnprocessableError,
    backoff_delay,
)
from adapters.alpaca.parsing.orders import (
    UnsupportedOrderError,
    as_bracket,
    bracket_body,
    bracket_legs,
    order_body,
    replace_body,
)
from adapters.alpaca.parsing.progress import (
    Accept,
    Action,
    Cancel,
    Expire,
    Fill,
    OrderProgress,
    Reject,
    Update,
)
from adapters.alpaca.parsing.reports import (
    account_balances,
    fill_report,
    order_status_report,
    position_status_report,
)
from adapters.alpaca.parsing.wire import (
    AlpacaAccount,
    AlpacaOrder,
    AlpacaPosition,
    AlpacaWireError,
    FillActivity,
    TradeUpdate,
    decode,
    liquidity_side,
    to_price,
    to_quantity,
    ts_ns,
)
from adapters.alpaca.providers import AlpacaInstrumentProvider
from adapters.alpaca.stream import AlpacaTradeStream
from adapters.connection import KeepsConnectError
from catalog.instruments import instrument_id

FILL_EVENTS = frozenset({"fill", "partial_fill"})
ORPHAN_LIMIT = 256  # venue orders whose updates are held until a submission claims them
SNAPSHOT_CONCURRENCY = 4
ACTIVITY_SLACK = timedelta(seconds=1)
SETTLE_POLL_SECS = 0.01


class AlpacaExecutionClient(KeepsConnectError, LiveExecutionClient):
    """One Alpaca account on the ``ALPACA`` venue: NETTING, MARGIN, USD."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        http_client: AlpacaHttpClient,
        credentials: AlpacaCredentials,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
        instrument_provider: AlpacaInstrumentProvider,
        config: AlpacaExecClientConfig,
        name: str | None = None,
    ) -> None:
        super().__init__(
            loop=loop,
            client_id=ClientId(name or ALPACA),
            venue=ALPACA_VENUE,
            oms_type=OmsType.NETTING,
            account_type=AccountType.MARGIN,
            base_currency=USD,
            instrument_provider=instrument_provider,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            config=config,
        )
        self._config = config
        self._http = http_client
        self._stream = AlpacaTradeStream(
            config.resolved_stream_url,
            credentials,
            on_update=self._on_trade_update,
            on_reconnected=self._on_stream_reconnected,
            on_update_failed=self._on_update_failed,
            on_lost=self._on_stream_lost,
            connect_timeout_secs=config.stream_connect_timeout_secs,
            reconnect_initial_delay_secs=config.reconnect_initial_delay_secs,
            reconnect_max_delay_secs=config.reconnect_max_delay_secs,
            logger=self._log,
        )
        self._progress: dict[ClientOrderId, OrderProgress] = {}
        self._client_ids: dict[str, ClientOrderId] = {}  # venue order id -> our order
        self._orphans: OrderedDict[str, list[TradeUpdate]] = OrderedDict()
        self._locks: dict[InstrumentId, asyncio.Lock] = {}
        self._abandoned: set[str] = set()  # venue orders cancelled for orders given up here
        self._adopted: set[str] = set()  # venue orders that filled after being given up here
        self._reconcile_delays = (
            config.reconnect_initial_delay_secs,
            config.reconnect_max_delay_secs,
        )
        self._lookup_delays = (config.retry_initial_delay_secs, config.retry_max_delay_secs)
        self._rng = random.Random()
        self._reconcile_task: asyncio.Task | None = None
        self._reconcile_again = False
        self._account_task: asyncio.Task | None = None
        self._account_stale = False
        self._log.info(f"REST {http_client.base_url}, stream {config.resolved_stream_url}")

    @property
    def stream(self) -> AlpacaTradeStream:
        return self._stream

    # -- connection ----------------------------------------------------------------------------

    async def _open(self) -> None:
        await self._instrument_provider.initialize()
        for instrument in self._instrument_provider.list_all():
            self._cache.add_instrument(instrument)
        account = decode(await self._http.get_account(), AlpacaAccount)
        if account.status != "ACTIVE":
            self._log.warning(f"Alpaca account status is {account.status}")
        self._set_account_id(AccountId(f"{ALPACA}-{account.account_number}"))
        await self._update_account_state(account)
        await self._await_account_registered()
        # a bar close can send an order for every instrument at once
        await self._http.open_order_connections(len(self._instrument_provider.list_all()))
        self._stream.start()
        timeout = self._config.stream_connect_timeout_secs * 2
        if not await self._stream.wait_connected(timeout):
            raise RuntimeError(f"Alpaca trade_updates stream not listening after {timeout:g}s")

    async def _disconnect(self) -> None:
        """Stops the stream; reconciliation and account refreshes are tasks of this client,
        cancelled by ``LiveExecutionClient.disconnect`` after this returns."""
        await self._stream.stop()
        await self._http.close_order_session()

    # -- commands ------------------------------------------------------------------------------
    #
    # NautilusTrader runs every command as its own task. Commands for one instrument are
    # serialised here so they reach Alpaca in the order they were issued: a strategy that
    # flattens (cancel all, then close the position) must not have its closing order arrive
    # while the bracket legs that reserve the shares are still open (Alpaca refuses it for
    # insufficient available qty).

    async def _submit_order(self, command: SubmitOrder) -> None:
        async with self._instrument_lock(command.instrument_id):
            await self._submit(command.order)

    async def _submit_order_list(self, command: SubmitOrderList) -> None:
        orders = list(command.order_list.orders)
        async with self._instrument_lock(command.instrument_id):
            if all(o.contingency_type == ContingencyType.NO_CONTINGENCY for o in orders):
                for order in orders:  # independent orders: one request each
                    await self._submit(order)
                return
            await self._submit_bracket(orders)

    async def _submit(self, order: Order) -> None:
        try:
            body = order_body(order)
        except UnsupportedOrderError as exc:
            self._deny([order], str(exc))
            return
        self._mark_submitted([order])
        await self._post([order], body)

    async def _submit_bracket(self, orders: list[Order]) -> None:
        try:
            bracket = as_bracket(orders)
            body = bracket_body(bracket)
        except UnsupportedOrderError as exc:
            self._deny(orders, str(exc))
            return
        self._mark_submitted(orders)
        parent = await self._post([bracket.entry, bracket.take_profit, bracket.stop_loss], body)
        if parent is None:
            return
        for client_order_id, leg in bracket_legs(parent, bracket).items():
            order = self._cache.order(client_order_id)
            self._claim(leg.id, client_order_id)
            self._emit(order, self._progress_of(order).apply_snapshot(leg, self._now()))
            self._replay_orphans(leg.id)

    async def _post(self, orders: list[Order], body: dict) -> AlpacaOrder | None:
        """POST the body for ``orders`` (one order, or a bracket's three); returns the
        accepted venue order, or None after rejecting them."""
        first = orders[0]
        try:
            raw = await self._http.submit_order(body)
        except AlpacaApiError as exc:
            self._log.warning(f"Alpaca refused {first.client_order_id}: {exc}")
            self._reject(orders, exc.message)
            return None
        except AlpacaRequestError as exc:
            self._log.error(f"No answer from Alpaca for {first.client_order_id}: {exc}")
            raw = await self._look_up_unanswered(orders, str(exc))
            if raw is None:
                return None
        parent = decode(raw, AlpacaOrder)
        self._claim(parent.id, first.client_order_id)
        self._emit(first, self._progress_of(first).apply_snapshot(parent, self._now()))
        self._replay_orphans(parent.id)
        return parent

    async def _look_up_unanswered(self, orders: list[Order], reason: str) -> dict | None:
        """A POST without an answer may yet be processed (a stalled request reaches Alpaca
        late): look the order up by client_order_id, with backoff, for up to
        ``order_lookup_secs``. Found: the venue's order, handled like a POST answer. Not
        found by every lookup: rejected as not placed. Lookups that fail themselves settle
        nothing: the order stays SUBMITTED for the engine's in-flight check."""
        first = orders[0]
        deadline = time.monotonic() + self._config.order_lookup_secs
        attempt = 0
        settled = False
        while True:
            try:
                raw = await self._http.get_order_by_client_id(first.client_order_id.value)
            except AlpacaRequestError as lookup:
                self._log.warning(f"Looking up {first.client_order_id} failed: {lookup}")
                settled = False
            else:
                if raw is not None:
                    return raw
                settled = True
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(backoff_delay(attempt, *self._lookup_delays, self._rng))
            attempt += 1
        if not settled:
            self._log.error(
                f"{first.client_order_id} may or may not be at Alpaca; "
                "left SUBMITTED for the in-flight check to resolve"
            )
            return None
        self._reject(
            orders,
            f"not placed: {reason}; not at Alpaca after {self._config.order_lookup_secs:g}s",
        )
        return None

    async def _modify_order(self, command: ModifyOrder) -> None:
        order = self._cache.order(command.client_order_id)
        if order is None:
            self._log.error(f"Cannot modify {command.client_order_id}: not in the cache")
            return
        async with self._instrument_lock(command.instrument_id):
            await self._replace(order, command)

    async def _replace(self, order: Order, command: ModifyOrder) -> None:
        """PATCH: Alpaca answers with a new order (new venue id, ``replaces`` the old one);
        the NautilusTrader order moves to it with an OrderUpdated. A partially filled order
        is refused here: how Alpaca carries the fills over to the replacement is not
        something this client can reconcile exactly, so cancel and resubmit the rest."""
        progress = self._progress_of(order)
        venue_order_id = progress.venue_order_id
        if venue_order_id is None:
            self._modify_rejected(order, None, "the order has no Alpaca id yet")
            return
        if progress.filled_qty > 0:
            self._modify_rejected(order, venue_order_id, "partially filled orders are not replaced")
            return
        try:
            body = replace_body(command.quantity, command.price, command.trigger_price)
            raw = await self._http.replace_order(venue_order_id, body)
        except UnsupportedOrderError as exc:
            self._modify_rejected(order, venue_order_id, str(exc))
            return
        except AlpacaApiError as exc:
            self._modify_rejected(order, venue_order_id, exc.message)
            return
        successor = decode(raw, AlpacaOrder)
        self._claim(successor.id, order.client_order_id)
        self._emit(order, progress.apply_snapshot(successor, self._now()))

    async def _cancel_order(self, command: CancelOrder) -> None:
        order = self._cache.order(command.client_order_id)
        if order is None:
            self._log.error(f"Cannot cancel {command.client_order_id}: not in the cache")
            return
        async with self._instrument_lock(command.instrument_id):
            await self._cancel(order)

    async def _cancel_all_orders(self, command: CancelAllOrders) -> None:
        """Cancels this node's open orders of the instrument one by one (Alpaca's DELETE
        /orders would cancel every symbol's), parents first (cancelling a bracket entry
        cancels its held legs), then waits, bounded by ``request_timeout_secs``, for Alpaca
        to confirm them, so a closing order queued behind this finds the shares released."""
        async with self._instrument_lock(command.instrument_id):
            orders = self._open_orders(command.instrument_id)
            if command.order_side:
                orders = [o for o in orders if o.side == command.order_side]
            for order in sorted(orders, key=lambda o: o.parent_order_id is not None):
                await self._cancel(order)
            await self._settled(orders, self._config.request_timeout_secs)

    async def _batch_cancel_orders(self, command: BatchCancelOrders) -> None:
        for cancel in command.cancels:
            await self._cancel_order(cancel)

    def _instrument_lock(self, instrument: InstrumentId) -> asyncio.Lock:
        lock = self._locks.get(instrument)
        if lock is None:
            lock = self._locks[instrument] = asyncio.Lock()
        return lock

    async def _settled(self, orders: list[Order], timeout: float) -> None:
        """Until every order is closed as far as Alpaca has told us, or ``timeout``."""
        deadline = time.monotonic() + timeout
        while any(not self._progress_of(o).closed for o in orders):
            if time.monotonic() >= deadline:
                open_ids = [
                    str(o.client_order_id) for o in orders if not self._progress_of(o).closed
                ]
                self._log.warning(f"Cancels not confirmed by Alpaca after {timeout:g}s: {open_ids}")
                return
            await asyncio.sleep(SETTLE_POLL_SECS)

    async def _cancel(self, order: Order) -> None:
        progress = self._progress_of(order)
        venue_order_id = progress.venue_order_id
        if venue_order_id is None:
            raw = await self._http.get_order_by_client_id(order.client_order_id.value)
            if raw is None:
                self._cancel_rejected(order, None, "Alpaca does not know the order")
                return
            venue_order_id = decode(raw, AlpacaOrder).id
        try:
            await self._http.cancel_order(venue_order_id)
        except (AlpacaNotFoundError, AlpacaUnprocessableError) as exc:
            await self._on_cancel_refused(order, venue_order_id, exc.message)
        except AlpacaApiError as exc:
            self._cancel_rejected(order, venue_order_id, exc.message)

    async def _on_cancel_refused(self, order: Order, venue_order_id: str, reason: str) -> None:
        """A refused cancel is often one that lost a race (filled, or already cancelled with
        its bracket): report what the order became; if it is still open, the refusal."""
        raw = await self._http.get_order(venue_order_id)
        snapshot = None if raw is None else decode(raw, AlpacaOrder)
        if snapshot is not None and not snapshot.is_open:
            await self._sync(order, snapshot)
            return
        self._cancel_rejected(order, venue_order_id, reason)

    async def _query_account(self, command: QueryAccount) -> None:
        await self._update_account_state()

    async def _query_order(self, command: QueryOrder) -> None:
        """NautilusTrader's in-flight check: bring the order up to its venue state through
        the same bookkeeping as the stream (exact fills, no double counting)."""
        order = self._cache.order(command.client_order_id)
        if order is None:
            return
        snapshot = await self._venue_order(order)
        if snapshot is None:
            self._log.warning(f"{order.client_order_id} is not known at Alpaca (yet)")
            return
        await self._sync(order, snapshot)

    # -- stream ------------------------------------------------------------------------------

    def _on_trade_update(self, data: dict) -> None:
        try:
            update = decode(data, TradeUpdate)
        except AlpacaWireError as exc:
            self._log.error(f"Unreadable trade update, reconciling open orders over REST: {exc}")
            self._schedule_reconcile()
            return
        self._apply_update(update)

    def _on_update_failed(self) -> None:
        self._log.error("A trade update could not be handled; reconciling open orders over REST")
        self._schedule_reconcile()

    def _apply_update(self, update: TradeUpdate) -> None:
        client_order_id = self._client_order_id_for(update.order)
        order = None if client_order_id is None else self._cache.order(client_order_id)
        if order is None:
            self._hold_orphan(update)
            return
        if order.status == OrderStatus.REJECTED:
            self._after_give_up(order, update.order)
            return
        self._claim(update.order.id, order.client_order_id)
        if update.event == "order_cancel_rejected":
            if order.status == OrderStatus.PENDING_CANCEL:
                self._cancel_rejected(order, update.order.id, "Alpaca rejected the cancel")
            return
        if update.event == "order_replace_rejected":
            if order.status == OrderStatus.PENDING_UPDATE:
                self._modify_rejected(order, update.order.id, "Alpaca rejected the replace")
            return
        progress = self._progress_of(order)
        now = self._now()
        if update.event in FILL_EVENTS:
            actions = progress.apply_fill(update, now)
        else:
            actions = progress.apply_snapshot(update.order, now)
        self._emit(order, actions)
        self._cancel_if_abandoned(order, update.order)

    def _hold_orphan(self, update: TradeUpdate) -> None:
        """An update about an order nobody claimed (yet): bracket legs can be announced before
        the POST answer that names them arrives. Held briefly, then forgotten (an order placed
        outside this node)."""
        held = self._orphans.setdefault(update.order.id, [])
        held.append(update)
        self._orphans.move_to_end(update.order.id)
        while len(self._orphans) > ORPHAN_LIMIT:
            self._orphans.popitem(last=False)
        self._log.info(
            f"trade update {update.event} for Alpaca order {update.order.id} "
            f"({update.order.symbol}, client_order_id {update.order.client_order_id}) not known "
            "here: held for a submission in flight, else ignored (placed outside this node)"
        )

    def _replay_orphans(self, venue_order_id: str) -> None:
        for update in self._orphans.pop(venue_order_id, []):
            self._apply_update(update)

    def _on_stream_lost(self, reason: str) -> None:
        """Order updates go unseen from here: say so, and report disconnected (on
        ``status_topic`` too) so no new position is opened blind; the stream keeps retrying."""
        self._set_connected(False)
        self._log.error(
            f"Alpaca trade_updates stream lost ({reason}): order updates unseen, "
            "new entries halted until it is back and reconciled"
        )
        self._publish_status(False)

    def _resume(self) -> None:
        if self.is_connected or not self._stream.is_connected:
            return
        self._set_connected(True)
        self._log.warning("Alpaca trade_updates stream back and reconciled: trading resumes")
        self._publish_status(True)

    def _publish_status(self, connected: bool) -> None:
        if self._config.status_topic is not None:
            self._msgbus.publish(topic=self._config.status_topic, msg=connected)

    def _on_stream_reconnected(self) -> None:
        if not self._config.reconcile_on_reconnect:
            self._log.warning(
                "Stream reconnected; reconcile_on_reconnect is off: updates may be lost"
            )
            self._resume()
            return
        self._schedule_reconcile()

    def _schedule_reconcile(self) -> None:
        """One reconciliation at a time; one more if asked again while it runs."""
        if self._reconcile_task is not None and not self._reconcile_task.done():
            self._reconcile_again = True
            return
        self._reconcile_task = self.create_task(
            self._reconcile_open_orders(), log_msg="reconcile_open_orders"
        )

    async def _reconcile_open_orders(self) -> None:
        """After a reconnect: every order open here gets its venue state, so whatever happened
        while the stream was down (fills, cancels, expiries) is emitted, exactly once. REST
        trouble (it often comes with the stream's) is retried with backoff until it passes:
        until then the node's view of its open orders may be stale."""
        failures = 0
        while True:
            self._reconcile_again = False
            try:
                count = await self._reconcile_once()
            except AlpacaError as exc:
                delay = backoff_delay(failures, *self._reconcile_delays, self._rng)
                failures += 1
                self._log.error(f"Reconciling open orders failed ({exc}); retrying in {delay:.2f}s")
                await asyncio.sleep(delay)
                self._reconcile_again = True
            else:
                self._log.info(f"Reconciled {count} open order(s) with Alpaca")
            if not self._reconcile_again:
                self._resume()
                return

    async def _reconcile_once(self) -> int:
        orders = self._open_orders(None)
        semaphore = asyncio.Semaphore(SNAPSHOT_CONCURRENCY)
        snapshots = await asyncio.gather(*(self._venue_order(o, semaphore) for o in orders))
        pairs = [(o, s) for o, s in zip(orders, snapshots, strict=True) if s is not None]
        activities = await self._activities_for([s for _, s in pairs])
        for order, snapshot in pairs:
            await self._sync(order, snapshot, activities)
        await self._update_account_state()
        return len(pairs)

    # -- venue state -> events ----------------------------------------------------------------

    async def _sync(
        self, order: Order, snapshot: AlpacaOrder, activities: list[FillActivity] | None = None
    ) -> None:
        """Emit whatever ``snapshot`` (the order's venue state) says that was not reported:
        replacements followed to the current venue order, missed executions from the fill
        activities, then status."""
        if order.status == OrderStatus.REJECTED:
            self._after_give_up(order, snapshot)
            return
        progress = self._progress_of(order)
        while (successor_id := progress.superseded_by(snapshot)) is not None:
            raw = await self._http.get_order(successor_id)
            if raw is None:
                break
            snapshot = decode(raw, AlpacaOrder)
            self._claim(snapshot.id, order.client_order_id)
            self._emit(order, progress.apply_snapshot(snapshot, self._now()))
        if snapshot.filled_qty > progress.filled_qty:
            if activities is None:
                activities = await self._activities_for([snapshot])
            mine = sorted(
                (a for a in activities if a.order_id == snapshot.id),
                key=lambda a: a.cum_qty or Decimal(0),
            )
            for activity in mine:
                self._emit(order, progress.apply_activity(snapshot, activity, self._now()))
        self._emit(order, progress.apply_snapshot(snapshot, self._now()))
        self._cancel_if_abandoned(order, snapshot)

    async def _activities_for(self, snapshots: list[AlpacaOrder]) -> list[FillActivity]:
        """Fill activities since the earliest of ``snapshots`` with executions not yet
        reported; one request for all of them."""
        gaps = [s for s in snapshots if s.filled_qty > self._reported_qty(s)]
        if not gaps:
            return []
        since = min(ts_ns(s.submitted_at or s.created_at) for s in gaps)
        after = datetime.fromtimestamp(since / 1e9, tz=UTC) - ACTIVITY_SLACK
        return [decode(a, FillActivity) for a in await self._http.fill_activities(after)]

    def _reported_qty(self, snapshot: AlpacaOrder) -> Decimal:
        client_order_id = self._client_order_id_for(snapshot)
        progress = None if client_order_id is None else self._progress.get(client_order_id)
        return Decimal(0) if progress is None else progress.filled_qty

    def _after_give_up(self, order: Order, snapshot: AlpacaOrder) -> None:
        """Alpaca has, after all, an order this client rejected (given up after its lookups):
        the venue's truth wins. What still works there is cancelled; what filled is reported
        to the engine as an order of its own (an external order the strategy claims), so the
        fill becomes a position the strategy manages, not an event on a closed order."""
        self._cancel_if_abandoned(order, snapshot)
        if snapshot.filled_qty == 0 or snapshot.id in self._adopted:
            return
        self._adopted.add(snapshot.id)
        self._client_ids.pop(snapshot.id, None)
        self._log.error(
            f"Alpaca order {snapshot.id} for {order.client_order_id}, given up as rejected, "
            f"filled {snapshot.filled_qty}: reported as an order of its own, so its position "
            "is managed"
        )
        instrument = self._cache.instrument(order.instrument_id)
        self._send_order_status_report(
            order_status_report(snapshot, self.account_id, instrument, None, self._now())
        )

    def _cancel_if_abandoned(self, order: Order, snapshot: AlpacaOrder) -> None:
        """A venue order still open for an order given up here (rejected after a submission
        outlived its retries, or by the engine's in-flight check) would trade unseen: cancel."""
        if (
            order.status == OrderStatus.REJECTED
            and snapshot.is_open
            and snapshot.status != "held"
            and snapshot.id not in self._abandoned
        ):
            self._abandoned.add(snapshot.id)
            self._log.error(
                f"Alpaca order {snapshot.id} is open but {order.client_order_id} was given up "
                "as rejected: cancelling it at Alpaca"
            )
            self.create_task(self._http.cancel_order(snapshot.id), log_msg="cancel_abandoned")

    def _emit(self, order: Order, actions: list[Action]) -> None:
        if not actions:
            return
        instrument = self._cache.instrument(order.instrument_id)
        for action in actions:
            ids = (order.strategy_id, order.instrument_id, order.client_order_id)
            venue_order_id = VenueOrderId(action.venue_order_id)
            match action:
                case Accept():
                    self.generate_order_accepted(*ids, venue_order_id, action.ts_event)
                case Fill():
                    if action.inferred:
                        self._log.warning(
                            f"{order.client_order_id}: fill of {action.last_qty} "
                            f"@ {action.last_px} inferred from Alpaca's order state"
                        )
                    self.generate_order_filled(
                        *ids,
                        venue_order_id,
                        None,
                        TradeId(action.trade_id),
                        order.side,
                        order.order_type,
                        to_quantity(action.last_qty, instrument.size_precision),
                        to_price(action.last_px, instrument.price_precision),
                        instrument.quote_currency,
                        Money(0, USD),
                        action.liquidity_side,
                        action.ts_event,
                    )
                    self._refresh_account_soon()
                case Update():
                    self.generate_order_updated(
                        *ids,
                        venue_order_id,
                        to_quantity(action.quantity, instrument.size_precision),
                        None
                        if action.price is None
                        else to_price(action.price, instrument.price_precision),
                        None
                        if action.trigger_price is None
                        else to_price(action.trigger_price, instrument.price_precision),
                        action.ts_event,
                        True,
                    )
                case Cancel():
                    self.generate_order_canceled(*ids, venue_order_id, action.ts_event)
                case Expire():
                    self.generate_order_expired(*ids, venue_order_id, action.ts_event)
                case Reject():
                    self.generate_order_rejected(*ids, action.reason, action.ts_event)

    # -- bookkeeping ---------------------------------------------------------------------------

    def _progress_of(self, order: Order) -> OrderProgress:
        """The order's progress, first caught up with what the cache shows (events applied
        by NautilusTrader's own reconciliation are never reported twice)."""
        progress = self._progress.get(order.client_order_id)
        if progress is None:
            venue_order_id = None if order.venue_order_id is None else order.venue_order_id.value
            progress = self._progress[order.client_order_id] = OrderProgress(venue_order_id)
        filled = order.filled_qty.as_decimal()
        avg = None if order.avg_px is None else Decimal(repr(order.avg_px))
        progress.catch_up(filled, avg, order.venue_order_id is not None, order.is_closed)
        return progress

    def _claim(self, venue_order_id: str, client_order_id: ClientOrderId) -> None:
        self._client_ids[venue_order_id] = client_order_id

    def _client_order_id_for(self, order: AlpacaOrder) -> ClientOrderId | None:
        """Ours by venue id (legs, replacements, anything seen), by the venue order it
        replaces, or by its client_order_id."""
        for venue_order_id in (order.id, order.replaces):
            if venue_order_id is None:
                continue
            known = self._client_ids.get(venue_order_id) or self._cache.client_order_id(
                VenueOrderId(venue_order_id)
            )
            if known is not None:
                return known
        candidate = ClientOrderId(order.client_order_id)
        return candidate if self._cache.order(candidate) is not None else None

    def _open_orders(self, instrument: InstrumentId | None) -> list[Order]:
        """Open and in-flight orders of this venue (optionally one instrument), including
        those whose events this client emitted but the engine has not applied yet."""
        found = {
            o.client_order_id: o
            for o in self._cache.orders_open(venue=ALPACA_VENUE, instrument_id=instrument)
            + self._cache.orders_inflight(venue=ALPACA_VENUE, instrument_id=instrument)
        }
        for client_order_id, progress in self._progress.items():
            order = self._cache.order(client_order_id)
            if order is None or progress.closed or order.is_closed or client_order_id in found:
                continue
            if instrument is None or order.instrument_id == instrument:
                found[client_order_id] = order
        return list(found.values())

    async def _venue_order(
        self, order: Order, semaphore: asyncio.Semaphore | None = None
    ) -> AlpacaOrder | None:
        venue_order_id = self._progress_of(order).venue_order_id
        async with semaphore or nullcontext():
            if venue_order_id is not None:
                raw = await self._http.get_order(venue_order_id)
            else:
                raw = await self._http.get_order_by_client_id(order.client_order_id.value)
        return None if raw is None else decode(raw, AlpacaOrder)

    def _mark_submitted(self, orders: list[Order]) -> None:
        now = self._clock.timestamp_ns()
        for order in orders:
            self._progress_of(order)
            self.generate_order_submitted(
                order.strategy_id, order.instrument_id, order.client_order_id, now
            )

    def _deny(self, orders: list[Order], reason: str) -> None:
        self._log.error(f"Cannot send to Alpaca: {reason}")
        now = self._clock.timestamp_ns()
        for order in orders:
            self.generate_order_denied(
                order.strategy_id, order.instrument_id, order.client_order_id, reason, now
            )

    def _reject(self, orders: list[Order], reason: str) -> None:
        now = self._clock.timestamp_ns()
        for order in orders:
            self._progress_of(order).closed = True
            self.generate_order_rejected(
                order.strategy_id, order.instrument_id, order.client_order_id, reason, now
            )

    def _cancel_rejected(self, order: Order, venue_order_id: str | None, reason: str) -> None:
        self._log.warning(f"Cancel of {order.client_order_id} refused: {reason}")
        self.generate_order_cancel_rejected(
            order.strategy_id,
            order.instrument_id,
            order.client_order_id,
            None if venue_order_id is None else VenueOrderId(venue_order_id),
            reason,
            self._clock.timestamp_ns(),
        )

    def _modify_rejected(self, order: Order, venue_order_id: str | None, reason: str) -> None:
        self._log.warning(f"Modify of {order.client_order_id} refused: {reason}")
        self.generate_order_modify_rejected(
            order.strategy_id,
            order.instrument_id,
            order.client_order_id,
            None if venue_order_id is None else VenueOrderId(venue_order_id),
            reason,
            self._clock.timestamp_ns(),
        )

    def _now(self) -> int:
        return self._clock.timestamp_ns()

    # -- account -------------------------------------------------------------------------------

    async def _update_account_state(self, account: AlpacaAccount | None = None) -> None:
        if account is None:
            account = decode(await self._http.get_account(), AlpacaAccount)
        positions = [decode(p, AlpacaPosition) for p in await self._http.get_positions()]
        balances, margins = account_balances(account, positions)
        self.generate_account_state(balances, margins, True, self._clock.timestamp_ns())
        await self._publish_day_start(account)

    async def _publish_day_start(self, account: AlpacaAccount) -> None:
        """The account's ``last_equity`` with the session it starts, on ``day_start_topic``
        and in the cache under that key (``day_start``: why, and the message)."""
        topic = self._config.day_start_topic
        if topic is None or account.last_equity is None:
            return
        clock = await self._http.get_clock()  # after the account: see day_start
        message = day_start_message(account.last_equity, str(clock["timestamp"]))
        if message is None:
            return
        self._cache.add(topic, message)
        self._msgbus.publish(topic=topic, msg=message)

    def _refresh_account_soon(self) -> None:
        """After fills the balance moved; one refresh at a time, one more if fills came in
        while it ran."""
        self._account_stale = True
        if self._account_task is None or self._account_task.done():
            self._account_task = self.create_task(
                self._refresh_account(), log_msg="refresh_account"
            )

    async def _refresh_account(self) -> None:
        while self._account_stale:
            self._account_stale = False
            await self._update_account_state()

    # -- reports (NautilusTrader's start-up reconciliation and queries) -----------------------

    async def generate_order_status_report(
        self, command: GenerateOrderStatusReport
    ) -> OrderStatusReport | None:
        if command.venue_order_id is not None:
            raw = await self._http.get_order(command.venue_order_id.value)
        elif command.client_order_id is not None:
            raw = await self._http.get_order_by_client_id(command.client_order_id.value)
        else:
            raise ValueError("need a client_order_id or a venue_order_id")
        if raw is None:
            return None
        order = decode(raw, AlpacaOrder)
        instrument = self._cache.instrument(instrument_id(order.symbol))
        if instrument is None:
            self._log.warning(f"No instrument for {order.symbol}: no report for order {order.id}")
            return None
        client_order_id = command.client_order_id or self._client_order_id_for(order)
        return order_status_report(order, self.account_id, instrument, client_order_id, self._now())

    async def generate_order_status_reports(
        self, command: GenerateOrderStatusReports
    ) -> list[OrderStatusReport]:
        symbols = None if command.instrument_id is None else [command.instrument_id.symbol.value]
        raw = await self._http.list_orders(
            "open" if command.open_only else "all", command.start, symbols
        )
        orders = _flatten(decode(o, AlpacaOrder) for o in raw)
        if not command.open_only and command.start is not None:
            # Working orders are state to reconcile whatever their age: a GTC order placed
            # from the dashboard last week, the legs of an old bracket (listed by their own
            # status: a filled parent is not "open").
            known = {o.id for o in orders}
            working = await self._http.list_orders("open", None, symbols, nested=False)
            orders += [o for o in (decode(w, AlpacaOrder) for w in working) if o.id not in known]
        roots = _replacement_roots(orders)
        reports = []
        for order in orders:
            if order.status == "replaced":
                continue  # its successor reports the order's state
            instrument = self._cache.instrument(instrument_id(order.symbol))
            if instrument is None:
                self._log.warning(
                    f"No instrument for {order.symbol}: order {order.id} not reconciled"
                )
                continue
            root = roots.get(order.id, order)
            client_order_id = self._client_order_id_for(order) or self._client_order_id_for(root)
            client_order_id = client_order_id or ClientOrderId(root.client_order_id)
            reports.append(
                order_status_report(
                    order, self.account_id, instrument, client_order_id, self._now()
                )
            )
        return reports

    async def generate_fill_reports(self, command: GenerateFillReports) -> list[FillReport]:
        activities = [
            decode(a, FillActivity) for a in await self._http.fill_activities(command.start)
        ]
        if command.instrument_id is not None:
            activities = [a for a in activities if a.symbol == command.instrument_id.symbol.value]
        if command.venue_order_id is not None:
            activities = [a for a in activities if a.order_id == command.venue_order_id.value]
        orders = {
            o.id: o
            for o in _flatten(
                decode(o, AlpacaOrder) for o in await self._http.list_orders("all", command.start)
            )
        }
        reports = []
        for activity in activities:
            instrument = self._cache.instrument(instrument_id(activity.symbol))
            if instrument is None:
                continue
            order = orders.get(activity.order_id)
            client_order_id = None if order is None else self._client_order_id_for(order)
            side = LiquiditySide.NO_LIQUIDITY_SIDE if order is None else liquidity_side(order.type)
            reports.append(
                fill_report(
                    activity, self.account_id, instrument, client_order_id, side, self._now()
                )
            )
        return reports

    async def generate_position_status_reports(
        self, command: GeneratePositionStatusReports
    ) -> list[PositionStatusReport]:
        if command.instrument_id is not None:
            raw = await self._http.get_position(command.instrument_id.symbol.value)
            instrument = self._cache.instrument(command.instrument_id)
            if instrument is None:
                return []
            if raw is None:
                return [
                    PositionStatusReport.create_flat(
                        self.account_id, instrument.id, instrument.size_precision, self._now()
                    )
                ]
            return [
                position_status_report(
                    decode(raw, AlpacaPosition), self.account_id, instrument, self._now()
                )
            ]
        reports = []
        for raw in await self._http.get_positions():
            position = decode(raw, AlpacaPosition)
            instrument = self._cache.instrument(instrument_id(position.symbol))
            if instrument is None:
                self._log.warning(f"No instrument for {position.symbol}: position not reconciled")
                continue
            reports.append(
                position_status_report(position, self.account_id, instrument, self._now())
            )
        return reports


def _flatten(orders) -> list[AlpacaOrder]:
    """Parents followed by their nested legs."""
    flat = []
    for order in orders:
        flat.append(order)
        flat.extend(order.legs or ())
    return flat


def _replacement_roots(orders: list[AlpacaOrder]) -> dict[str, AlpacaOrder]:
    """Each replacement order -> the first order of its chain (the one we named)."""
    by_id = {o.id: o for o in orders}
    roots = {}
    for order in orders:
        root = order
        while root.replaces is not None and root.replaces in by_id:
            root = by_id[root.replaces]
        if root is not order:
            roots[order.id] = root
    return roots
