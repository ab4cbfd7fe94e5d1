"""The journal's rows: one typed struct per table, field order = column order.

Plain msgspec structs (no NautilusTrader inside), so a sink can write, spool and replay them
without the engine, and the spool's frames decode back to the very same rows. Every row
carries ``(run_id, seq)``: the run and the place of the event in it (one counter across all
tables), the key that makes a replay insert each row exactly once.
"""

from datetime import date

import msgspec


class Row(msgspec.Struct, frozen=True, kw_only=True, tag_field="table"):
    run_id: str
    seq: int


class RunEvent(Row, tag="run_events"):
    """The run starting or stopping (``kind``: started/stopped) on its trading day."""

    ts: int
    kind: str
    trading_day: date
    trader_id: str
    name: str
    mode: str


class ModelVersion(Row, tag="model_versions"):
    name: str
    version: int | None  # None: a model directory outside a registry
    path: str


class OrderRow(Row, tag="orders"):
    """An order as the strategy created it (``strategies.records.order_intent``)."""

    ts_init: int
    client_order_id: str
    strategy_id: str
    instrument_id: str
    side: str
    quantity: str
    type: str
    price: str | None
    trigger_price: str | None
    time_in_force: str
    tags: str


class OrderEventRow(Row, tag="order_events"):
    """Any order event (submitted, accepted, rejected, canceled, filled, ...); ``details`` is
    the event's own dict as JSON."""

    ts_event: int
    ts_init: int
    event_id: str
    kind: str
    client_order_id: str
    venue_order_id: str | None
    strategy_id: str
    instrument_id: str
    details: str


class FillRow(Row, tag="fills"):
    ts_event: int
    client_order_id: str
    venue_order_id: str
    trade_id: str
    position_id: str | None
    instrument_id: str
    side: str
    last_qty: str
    last_px: str
    commission: str
    currency: str
    liquidity_side: str


class PositionRow(Row, tag="positions"):
    """A position snapshot as it opened, changed or closed (``kind``)."""

    ts_event: int
    kind: str
    position_id: str
    instrument_id: str
    side: str
    quantity: str
    avg_px_open: float
    realized_pnl: str
    unrealized_pnl: str
    currency: str


class AccountRow(Row, tag="account_states"):
    """One currency's balance of an account state event: the equity curve."""

    ts_event: int
    account_id: str
    currency: str
    total: str
    free: str
    locked: str


class SignalRow(Row, tag="signals"):
    """An MLSignal with its outlook (``strategies.records.SIGNAL_COLUMNS``)."""

    ts_event: int
    instrument_id: str
    models: str
    probabilities: list[float]
    decision: str
    confidence: float
    expected_return: float
    risk_score: int
    volatility: float
    horizon: int
    horizons: str
    horizon_returns: list[float]


class StrategyDecisionRow(Row, tag="strategy_decisions"):
    """What the strategy did with one signal (``strategies.decisions``): an entry with the
    order it created, or hold/skip with the reason."""

    ts_event: int  # the signal's bar close
    ts_init: int  # when the strategy decided
    instrument_id: str
    probability: float
    threshold: float
    action: str
    reason: str
    client_order_id: str


class BarRow(Row, tag="bars"):
    """A bar as the node received it from its data client (``ts_init``: when it arrived)."""

    ts_event: int
    ts_init: int
    instrument_id: str
    open: str
    high: str
    low: str
    close: str
    volume: str


class DailySummary(Row, tag="daily_summaries"):
    """What the run did on its day, written when it stops; P&L = end - start equity."""

    trading_day: date
    signals: int
    orders: int
    fills: int
    start_equity: str | None
    end_equity: str | None
    realized_pnl: str


ROW_TYPES: tuple[type[Row], ...] = (RunEvent, ModelVersion, OrderRow, OrderEventRow, FillRow,
                                    PositionRow, AccountRow, SignalRow, StrategyDecisionRow, BarRow,
                                    DailySummary)
AnyRow = (RunEvent | ModelVersion | OrderRow | OrderEventRow | FillRow | PositionRow | AccountRow
          | SignalRow | StrategyDecisionRow | BarRow | DailySummary)


def table_of(row_type: type[Row]) -> str:
    return row_type.__struct_config__.tag


def columns_of(row_type: type[Row]) -> tuple[str, ...]:
    """The columns in the order ``msgspec.structs.astuple`` gives a row's values."""
    return row_type.__struct_fields__
