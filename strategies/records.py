"""What a strategy decided, as plain rows: the same shape from a backtest engine's cache and
from a live node's journal, so the two can be compared row by row (the parity test)."""

import re

from nautilus_trader.model.orders import Order

from strategies.signals import MLSignal

INTENT_COLUMNS = ["ts_init", "client_order_id", "instrument_id", "side", "quantity", "type",
                  "price", "trigger_price", "time_in_force", "tags"]


def order_intent(order: Order) -> dict:
    """Instrument, side, quantity, type and prices of an order as the strategy created it.

    Read at submission, before any venue changes it; a modified order keeps its original
    intent here."""
    price = getattr(order, "price", None)
    trigger = getattr(order, "trigger_price", None)
    return {
        "ts_init": order.ts_init,
        "client_order_id": order.client_order_id.value,
        "instrument_id": order.instrument_id.value,
        "side": order.side_string(),
        "quantity": str(order.quantity),
        "type": order.type_string(),
        "price": str(price) if price is not None else None,
        "trigger_price": str(trigger) if trigger is not None else None,
        "time_in_force": order.tif_string(),
        "tags": ",".join(order.tags or []),
    }


# What NautilusTrader's ClientOrderIdGenerator makes: O-{date}-{time}-{trader tag}-{strategy tag}-{count}
_GENERATED_ID = re.compile(r"^O-\d{8}-\d{6}-.+-(\d+)$")


def creation_key(order: Order) -> tuple[str, int, int]:
    """Sort key for creation order: the strategy, then the counter that ends every client
    order id it generates. Not the timestamp alone: a backtest stamps a bracket's three
    orders alike, a live clock stamps them apart and not in counter order.

    Orders the strategy did not create have no counter: placed from Alpaca's dashboard or
    another tool (UUID client ids), or bracket legs named by Alpaca, which start-up
    reconciliation hands to the strategy that claims their instrument. They sort first (they
    existed before the strategy created anything), in the order the cache took them in."""
    generated = _GENERATED_ID.match(order.client_order_id.value)
    counter = int(generated.group(1)) if generated else -1
    return order.strategy_id.value, counter, order.ts_init


SIGNAL_COLUMNS = ["ts_event", "instrument_id", "models", "probabilities", "decision", "confidence",
                  "expected_return", "risk_score", "volatility", "horizon", "horizons", "horizon_returns"]


def signal_record(signal: MLSignal) -> dict:
    """A signal as a journal row: the probabilities and the outlook (SIGNAL_COLUMNS)."""
    returns = signal.horizon_returns
    return {
        "ts_event": signal.ts_event,
        "instrument_id": signal.instrument_id.value,
        "models": signal.models,
        "probabilities": [float(p) for p in signal.probabilities],
        "decision": signal.decision,
        "confidence": float(signal.confidence),
        "expected_return": float(signal.expected_return),
        "risk_score": int(signal.risk_score),
        "volatility": float(signal.volatility),
        "horizon": int(signal.horizon),
        "horizons": signal.horizons,
        "horizon_returns": [] if returns is None else [float(r) for r in returns],
    }
