"""Risk rules of the product brief: sizing, caps and the trading-state switch.

Sizing and caps are pure functions so they can be tested without an engine; the strategy only
feeds them equity, prices and current exposure.
"""

from decimal import Decimal
from typing import Annotated

from msgspec import Meta
from nautilus_trader.common.component import MessageBus
from nautilus_trader.config import NautilusConfig
from nautilus_trader.model.enums import TradingState

from catalog.instruments import SUB_PENNY, round_to_tick

TRADING_STATE_ENDPOINT = "Sextant.set_trading_state"


Fraction = Annotated[float, Meta(gt=0.0, le=1.0)]
Minutes = Annotated[int, Meta(ge=1, le=120)]


class RiskRules(NautilusConfig, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Defaults from DESIGN.md; every field is configurable from YAML.

    One type, its bounds declared once here: the ``risk`` section of ``StrategySettings``
    (what a config file holds) and the ``risk`` field of the engine's
    ``EnsembleStrategyConfig``. It is a NautilusConfig (a msgspec struct) because the engine
    config that carries it must be one, which is why every Sextant config is msgspec."""

    risk_per_trade: Fraction = 0.01
    stop_loss: Fraction = 0.02
    take_profit: Annotated[float, Meta(gt=0.0)] = 0.04
    max_position_pct: Fraction = 0.05
    max_sector_pct: Fraction = 0.25
    max_positions: Annotated[int, Meta(ge=1)] = 10
    daily_loss_limit: Fraction = 0.02
    flatten_minutes_before_close: Minutes = 5
    no_entry_minutes_before_close: Minutes = 15


def bracket_prices(
    price: float, long: bool, rules: RiskRules, increment: Decimal = SUB_PENNY
) -> tuple[Decimal, Decimal]:
    """(stop, target) at ``stop_loss`` and ``take_profit`` from ``price``, on valid ticks.

    Rounding rule: both legs round AWAY from the entry (a long's stop down and its target up,
    a short's stop up and its target down), so the bracket is never tighter than configured;
    ``position_size`` sizes against the rounded stop, so the loss at the stop stays within
    ``risk_per_trade``. Computed in Decimal: 100 * 0.98 must be 98.00, not 97.99."""
    entry = Decimal(repr(price))
    sign = 1 if long else -1
    stop = entry * (1 - sign * Decimal(repr(rules.stop_loss)))
    target = entry * (1 + sign * Decimal(repr(rules.take_profit)))
    return round_to_tick(stop, up=not long, increment=increment), round_to_tick(target, up=long, increment=increment)


def position_size(equity: float, price: float, stop: float, rules: RiskRules) -> int:
    """Shares so that hitting ``stop`` loses ``risk_per_trade`` of equity, capped per stock."""
    distance = abs(price - stop)
    if equity <= 0 or price <= 0 or distance <= 0:
        return 0
    by_risk = rules.risk_per_trade * equity / distance
    by_cap = rules.max_position_pct * equity / price
    return int(min(by_risk, by_cap))


def capped_by_sector(
    quantity: int, price: float, sector_exposure: float, equity: float, rules: RiskRules
) -> int:
    """Reduce ``quantity`` so the sector's gross exposure stays within its cap (0 if no room)."""
    room = rules.max_sector_pct * equity - sector_exposure
    if room <= 0:
        return 0
    return int(min(quantity, room // price))


def install_trading_state_endpoint(msgbus: MessageBus, risk_engine) -> None:
    """Let strategies switch the RiskEngine's trading state through the message bus.

    NautilusTrader 1.221 gives strategies no handle on the RiskEngine; the host (backtest window
    or live node) registers this endpoint once after building the kernel.
    """

    def set_state(state: TradingState) -> None:
        if risk_engine.trading_state != state:
            risk_engine.set_trading_state(state)

    msgbus.register(endpoint=TRADING_STATE_ENDPOINT, handler=set_state)
