"""Alpaca orders, executions, positions and the account -> NautilusTrader reports and
balances, for start-up reconciliation and account state."""

from decimal import ROUND_HALF_EVEN, Decimal

from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.reports import FillReport, OrderStatusReport, PositionStatusReport
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import LiquiditySide, PositionSide, TrailingOffsetType, TriggerType
from nautilus_trader.model.identifiers import (
    AccountId,
    ClientOrderId,
    TradeId,
    VenueOrderId,
)
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import AccountBalance, MarginBalance, Money

from adapters.alpaca.parsing.wire import (
    AlpacaAccount,
    AlpacaOrder,
    AlpacaPosition,
    AlpacaWireError,
    FillActivity,
    execution_id,
    order_side,
    order_status,
    order_type,
    time_in_force,
    to_price,
    to_quantity,
    ts_ns,
)


def order_status_report(
    order: AlpacaOrder,
    account_id: AccountId,
    instrument: Instrument,
    client_order_id: ClientOrderId | None,
    ts_init: int,
) -> OrderStatusReport:
    """``client_order_id`` is passed in, not read from the order: bracket legs and replace
    successors carry Alpaca's own ids, and the caller knows which NautilusTrader order they
    belong to."""
    if order.qty is None:
        raise AlpacaWireError(f"order {order.id} has no qty (notional orders are not supported)")
    price_precision, size_precision = instrument.price_precision, instrument.size_precision
    has_stop = order.stop_price is not None
    return OrderStatusReport(
        account_id=account_id,
        instrument_id=instrument.id,
        client_order_id=client_order_id,
        venue_order_id=VenueOrderId(order.id),
        order_side=order_side(order.side),
        order_type=order_type(order.type),
        time_in_force=time_in_force(order.time_in_force),
        order_status=order_status(order),
        quantity=to_quantity(order.qty, size_precision),
        filled_qty=to_quantity(order.filled_qty, size_precision),
        price=None if order.limit_price is None else to_price(order.limit_price, price_precision),
        trigger_price=to_price(order.stop_price, price_precision) if has_stop else None,
        trigger_type=TriggerType.DEFAULT if has_stop else TriggerType.NO_TRIGGER,
        **_trailing(order),
        avg_px=order.filled_avg_price,
        report_id=UUID4(),
        ts_accepted=ts_ns(order.submitted_at or order.created_at, ts_init),
        ts_last=ts_ns(order.updated_at, ts_init),
        ts_init=ts_init,
    )


def fill_report(
    activity: FillActivity,
    account_id: AccountId,
    instrument: Instrument,
    client_order_id: ClientOrderId | None,
    liquidity_side: LiquiditySide,
    ts_init: int,
) -> FillReport:
    """One execution; commission is zero (Alpaca charges none on US equities)."""
    return FillReport(
        account_id=account_id,
        instrument_id=instrument.id,
        client_order_id=client_order_id,
        venue_order_id=VenueOrderId(activity.order_id),
        trade_id=TradeId(execution_id(activity.id)),
        order_side=order_side(activity.side),
        last_qty=to_quantity(activity.qty, instrument.size_precision),
        last_px=to_price(activity.price, instrument.price_precision),
        commission=Money(0, USD),
        liquidity_side=liquidity_side,
        report_id=UUID4(),
        ts_event=ts_ns(activity.transaction_time, ts_init),
        ts_init=ts_init,
    )


def _trailing(order: AlpacaOrder) -> dict:
    """A trailing stop's offset: ``trail_price`` dollars, or ``trail_percent`` percent
    (NautilusTrader counts it in basis points); its current ``stop_price`` is the trigger."""
    if order.trail_price is not None:
        return {"trailing_offset": order.trail_price, "trailing_offset_type": TrailingOffsetType.PRICE}
    if order.trail_percent is not None:
        return {"trailing_offset": order.trail_percent * 100, "trailing_offset_type": TrailingOffsetType.BASIS_POINTS}
    return {}


def position_status_report(
    position: AlpacaPosition, account_id: AccountId, instrument: Instrument, ts_init: int
) -> PositionStatusReport:
    qty = abs(position.qty)
    if qty == 0:
        side = PositionSide.FLAT
    elif position.side == "short" or position.qty < 0:
        side = PositionSide.SHORT
    else:
        side = PositionSide.LONG
    return PositionStatusReport(
        account_id=account_id,
        instrument_id=instrument.id,
        position_side=side,
        quantity=to_quantity(qty, instrument.size_precision),
        avg_px_open=position.avg_entry_price if qty else None,
        report_id=UUID4(),
        ts_last=ts_init,
        ts_init=ts_init,
    )


def account_balances(
    account: AlpacaAccount, positions: list[AlpacaPosition]
) -> tuple[list[AccountBalance], list[MarginBalance]]:
    """The account as a NautilusTrader MARGIN account holds it.

    A NautilusTrader margin balance excludes open-position P&L: the Portfolio (and the
    EnsembleStrategy's equity) add it from the positions themselves. Alpaca's ``equity``
    includes it, so the balance is equity minus the positions' unrealized P&L: cash plus the
    positions' cost, the figure a backtest margin account carries. Locked is the initial
    margin in use."""
    if account.currency != "USD":
        raise AlpacaWireError(f"account {account.account_number} is in {account.currency}, not USD")
    unrealized = sum((p.unrealized_pl or Decimal(0) for p in positions), Decimal(0))
    total = _cents(account.equity - unrealized)
    locked = _cents(account.initial_margin)
    balance = AccountBalance(
        total=Money(total, USD), locked=Money(locked, USD), free=Money(total - locked, USD)
    )
    margin = MarginBalance(
        initial=Money(locked, USD), maintenance=Money(_cents(account.maintenance_margin), USD)
    )
    return [balance], [margin]


def _cents(value: Decimal) -> Decimal:
    """USD amounts at the currency's precision before they become Money: Alpaca sends up
    to 10 decimals, and total = locked + free must hold exactly after rounding."""
    return value.quantize(Decimal(1).scaleb(-USD.precision), rounding=ROUND_HALF_EVEN)
