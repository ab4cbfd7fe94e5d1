"""NautilusTrader's own floor for the order-path bench: an execution client that accepts every
order the moment its submit command runs, without any I/O.

A node with this client instead of the Alpaca one (same feed, same probe, same engines and
risk checks) measures what the order path costs before our execution client does anything:
the bench's figure for our client is the full path over this floor. It is registered through
its own factory under the Alpaca venue, so routing, account and instruments line up exactly
as in the full node. Not an adapter: it talks to nothing, and only the bench uses it.
"""

import asyncio
import time
from decimal import Decimal

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.execution.messages import (
    BatchCancelOrders,
    CancelAllOrders,
    CancelOrder,
    GenerateFillReports,
    GenerateOrderStatusReport,
    GenerateOrderStatusReports,
    GeneratePositionStatusReports,
    ModifyOrder,
    SubmitOrder,
    SubmitOrderList,
)
from nautilus_trader.execution.reports import FillReport, OrderStatusReport, PositionStatusReport
from nautilus_trader.live.config import LiveExecClientConfig
from nautilus_trader.live.execution_client import LiveExecutionClient
from nautilus_trader.live.factories import LiveExecClientFactory
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.identifiers import AccountId, ClientId, VenueOrderId
from nautilus_trader.model.objects import AccountBalance, Money
from nautilus_trader.model.orders import Order

from adapters.alpaca.common import ALPACA, ALPACA_VENUE


class FloorExecClientConfig(LiveExecClientConfig, frozen=True):
    """``starting_cash``: the account's balance, large enough that no risk check refuses."""

    starting_cash: float = 10_000_000.0


class FloorExecutionClient(LiveExecutionClient):
    """Accepts every order on the venue at once; ``accepted_ns`` holds the wall time
    (``time.time_ns``) of each acceptance, readable from another thread."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
        config: FloorExecClientConfig,
        name: str | None = None,
    ) -> None:
        super().__init__(
            loop=loop,
            client_id=ClientId(name or ALPACA),
            venue=ALPACA_VENUE,
            oms_type=OmsType.NETTING,
            account_type=AccountType.MARGIN,
            base_currency=USD,
            instrument_provider=InstrumentProvider(),
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            config=config,
        )
        self._starting_cash = Decimal(repr(config.starting_cash))
        self._next_venue_id = 0
        self.accepted_ns: list[int] = []

    async def _connect(self) -> None:
        self._set_account_id(AccountId(f"{ALPACA}-FLOOR"))
        cash = Money(self._starting_cash, USD)
        self.generate_account_state(
            [AccountBalance(total=cash, locked=Money(0, USD), free=cash)], [], True, self._clock.timestamp_ns()
        )
        await self._await_account_registered()

    async def _disconnect(self) -> None:
        return None

    async def _submit_order(self, command: SubmitOrder) -> None:
        self._accept(command.order)

    async def _submit_order_list(self, command: SubmitOrderList) -> None:
        for order in command.order_list.orders:
            self._accept(order)

    def _accept(self, order: Order) -> None:
        ts = self._clock.timestamp_ns()
        self._next_venue_id += 1
        self.generate_order_submitted(order.strategy_id, order.instrument_id, order.client_order_id, ts)
        self.generate_order_accepted(
            order.strategy_id, order.instrument_id, order.client_order_id, VenueOrderId(f"F-{self._next_venue_id}"), ts
        )
        self.accepted_ns.append(time.time_ns())

    # The probe only submits; anything else reaching the floor is a mistake in the bench.

    async def _modify_order(self, command: ModifyOrder) -> None:
        raise NotImplementedError("the floor client only accepts submissions")

    async def _cancel_order(self, command: CancelOrder) -> None:
        raise NotImplementedError("the floor client only accepts submissions")

    async def _cancel_all_orders(self, command: CancelAllOrders) -> None:
        raise NotImplementedError("the floor client only accepts submissions")

    async def _batch_cancel_orders(self, command: BatchCancelOrders) -> None:
        raise NotImplementedError("the floor client only accepts submissions")

    # A fresh venue: nothing to reconcile at start-up.

    async def generate_order_status_report(self, command: GenerateOrderStatusReport) -> OrderStatusReport | None:
        return None

    async def generate_order_status_reports(self, command: GenerateOrderStatusReports) -> list[OrderStatusReport]:
        return []

    async def generate_fill_reports(self, command: GenerateFillReports) -> list[FillReport]:
        return []

    async def generate_position_status_reports(
        self, command: GeneratePositionStatusReports
    ) -> list[PositionStatusReport]:
        return []


class FloorExecClientFactory(LiveExecClientFactory):
    """Builds ``FloorExecutionClient`` for ``node.add_exec_client_factory("ALPACA", ...)``."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: FloorExecClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> FloorExecutionClient:
        return FloorExecutionClient(loop, msgbus, cache, clock, config, name)
