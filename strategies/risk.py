"""Risk rules of the product brief: sizing, caps and the trading-state switch.

Sizing and caps are pure functions so they can be tested without an engine; the strategy only
feeds them equity, prices and current exposure.
"""

import math
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
    # Volatility-targeted stop (off when None): the stop distance is this many forecast sigmas
    # over the signal's holding horizon, within [stop_min, stop_max], instead of stop_loss.
    stop_volatility_multiple: Annotated[float, Meta(gt=0.0, le=20.0)] | None = None
    stop_min: Fraction = 0.005
    stop_max: Fraction = 0.05

    def __post_init__(self) -> None:
        if self.stop_min > self.stop_max:
            raise ValueError(f"'stop_min' ({self.stop_min}) must not exceed 'stop_max' ({self.stop_max})")

    def stop_distance(self, volatility: float, horizon_bars: int) -> float | None:
        """The stop as a fraction of the entry price: ``stop_loss``, or with the volatility
        target ``k * sigma * sqrt(horizon)`` clamped to [stop_min, stop_max] (sigma per bar,
        the square-root rule of a random walk over the holding horizon). None when the target
        is on but the signal has no usable volatility: no entry rather than a guessed stop."""
        if self.stop_volatility_multiple is None:
            return self.stop_loss
        if not (math.isfinite(volatility) and volatility > 0 and horizon_bars >= 1):
            return None
        raw = self.stop_volatility_multiple * volatility * math.sqrt(horizon_bars)
        return min(max(raw, self.stop_min), self.stop_max)


def bracket_prices(
    price: float, long: bool, rules: RiskRules, increment: Decimal = SUB_PENNY, stop_loss: float | None = None
) -> tuple[Decimal, Decimal]:
    """(stop, target) at ``stop_loss`` (default ``rules.stop_loss``; a volatility-targeted
    stop passes ``rules.stop_distance``) and ``take_profit`` from ``price``, on valid ticks.

    Rounding rule: both legs round AWAY from the entry (a long's stop down and its target up,
    a short's stop up and its target down), so the bracket is never tighter than configured;
    ``position_size`` sizes against the rounded stop, so the loss at the stop stays within
    ``risk_per_trade``. Computed in Decimal: 100 * 0.98 must be 98.00, not 97.99."""
    entry = Decimal(repr(price))
    sign = 1 if long else -1
    stop = entry * (1 - sign * Decimal(repr(rules.stop_loss if stop_loss is None else stop_loss)))
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
