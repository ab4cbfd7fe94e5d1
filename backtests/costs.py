"""Trading costs of the simulated venue: commissions and fills.

Commissions: a per-share rate with a per-order minimum and cap. NautilusTrader's
PerContractFeeModel has no minimum; equity pricing (IBKR fixed: $0.005/share, $1 minimum, 1% of
trade value maximum) does.

Fills: every order fills in full at the touch; with probability ``prob_slippage`` an order that
takes liquidity (market, stop-market) fills one tick against us, the tick being Reg NMS Rule
612's at the fill price ($0.01 at or above $1.00). NautilusTrader's own slippage is left off: it
moves a fill by the instrument's price increment (0.0001 for instruments that carry Polygon's 4
decimals) and would also move resting limit orders, which fill at their limit on an exchange.

By default NautilusTrader 1.221 sizes the book from a quarter of the
bar's volume, so a bracket leg larger than that fills partially, and the engine's OUO
bookkeeping for a partially filled leg underflows and aborts the process (a Rust panic in
``Quantity::from_raw``). Sextant sizes positions at a few percent of equity, small against the
liquidity of the names it trades, so full fills are the honest approximation.
"""

import random

from nautilus_trader.backtest.config import FeeModelConfig
from nautilus_trader.backtest.models import FeeModel, FillModel
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.data import BookOrder
from nautilus_trader.model.enums import BookType, OrderSide, OrderType
from nautilus_trader.model.objects import Money, Price, Quantity

from catalog.instruments import tick_size

_UNLIMITED = 1_000_000_000


class PerShareFeeModelConfig(FeeModelConfig, frozen=True):
    per_share: float = 0.005
    minimum: float = 1.0
    max_pct_of_value: float = 0.01


class PerShareFeeModel(FeeModel):
    def __init__(self, config: PerShareFeeModelConfig) -> None:
        super().__init__()
        self._per_share = config.per_share
        self._minimum = config.minimum
        self._max_pct = config.max_pct_of_value

    def get_commission(self, order, fill_qty, fill_px, instrument) -> Money:
        shares = fill_qty.as_double()
        value = shares * fill_px.as_double()
        commission = max(self._per_share * shares, self._minimum)
        commission = min(commission, self._max_pct * value)
        return Money(commission, instrument.quote_currency)


class FullLiquidityFillModel(FillModel):
    """Unlimited size at the touch; market and stop-market fills slip one tick with
    probability ``prob_slippage`` (drawn from this model's own seeded generator).

    A resting limit order the market trades through fills at its own limit price, as on an
    exchange. A stop fills at its trigger, as NautilusTrader's default model does: a bar's
    low is visited after its open, so the move through the stop is taken as continuous (a gap
    through a stop within a session, rare on minute bars, is therefore filled optimistically).
    Market orders take the best price.
    """

    def __init__(
        self,
        prob_fill_on_limit: float = 1.0,
        prob_fill_on_stop: float = 1.0,
        prob_slippage: float = 0.0,
        random_seed: int | None = None,
        config=None,
    ) -> None:
        if config is not None:
            prob_fill_on_limit, prob_fill_on_stop = config.prob_fill_on_limit, config.prob_fill_on_stop
            prob_slippage, random_seed = config.prob_slippage, config.random_seed
        # The engine's own slippage stays off (see the module docstring); this model slips.
        super().__init__(prob_fill_on_limit, prob_fill_on_stop, 0.0, random_seed)
        if not 0.0 <= prob_slippage <= 1.0:
            raise ValueError(f"prob_slippage must be in [0, 1], got {prob_slippage}")
        self.slip_probability = prob_slippage
        self._slips = random.Random(random_seed)

    def get_orderbook_for_fill_simulation(self, instrument, order, best_bid, best_ask) -> OrderBook:
        book = OrderBook(instrument_id=instrument.id, book_type=BookType.L2_MBP)
        size = Quantity(_UNLIMITED, instrument.size_precision)
        if order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.LIMIT_IF_TOUCHED):
            if order.side == OrderSide.SELL and best_bid >= order.price:
                best_bid = order.price
            elif order.side == OrderSide.BUY and best_ask <= order.price:
                best_ask = order.price
        elif order.order_type in (OrderType.MARKET, OrderType.STOP_MARKET):
            if order.order_type == OrderType.STOP_MARKET:
                if order.side == OrderSide.SELL and best_bid <= order.trigger_price:
                    best_bid = order.trigger_price
                elif order.side == OrderSide.BUY and best_ask >= order.trigger_price:
                    best_ask = order.trigger_price
            if self.slip_probability and self._slips.random() < self.slip_probability:
                if order.side == OrderSide.BUY:
                    best_ask = _one_tick(best_ask, instrument.price_increment, up=True)
                else:
                    best_bid = _one_tick(best_bid, instrument.price_increment, up=False)
        book.add(BookOrder(side=OrderSide.BUY, price=best_bid, size=size, order_id=1), 0, 0)
        book.add(BookOrder(side=OrderSide.SELL, price=best_ask, size=size, order_id=2), 0, 0)
        return book


def _one_tick(price: Price, increment: Price, up: bool) -> Price:
    """``price`` moved one Rule 612 tick (never finer than the instrument's increment)."""
    value = price.as_decimal()
    tick = max(tick_size(value), increment.as_decimal())
    moved = value + tick if up else max(value - tick, tick)
    return Price(moved, price.precision)
