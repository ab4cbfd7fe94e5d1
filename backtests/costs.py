"""Trading costs of the simulated venue: commissions and fills.

Commissions: a per-share rate with a per-order minimum and cap. NautilusTrader's
PerContractFeeModel has no minimum; equity pricing (IBKR fixed: $0.005/share, $1 minimum, 1% of
trade value maximum) does.

Fills: every order fills in full at the touch; the base FillModel's ``prob_slippage`` then moves
a fill one tick against us. By default NautilusTrader 1.221 sizes the book from a quarter of the
bar's volume, so a bracket leg larger than that fills partially, and the engine's OUO
bookkeeping for a partially filled leg underflows and aborts the process (a Rust panic in
``Quantity::from_raw``). Sextant sizes positions at a few percent of equity, small against the
liquidity of the names it trades, so full fills are the honest approximation.
"""

from nautilus_trader.backtest.config import FeeModelConfig
from nautilus_trader.backtest.models import FeeModel, FillModel
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.data import BookOrder
from nautilus_trader.model.enums import BookType, OrderSide, OrderType
from nautilus_trader.model.objects import Money, Quantity

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
    """Unlimited size at the touch (slippage comes from ``prob_slippage``).

    A resting limit order the market trades through fills at its own limit price, as on an
    exchange. A stop fills at its trigger, as NautilusTrader's default model does: a bar's
    low is visited after its open, so the move through the stop is taken as continuous (a gap
    through a stop within a session, rare on minute bars, is therefore filled optimistically).
    Market orders take the best price.
    """

    def get_orderbook_for_fill_simulation(self, instrument, order, best_bid, best_ask) -> OrderBook:
        book = OrderBook(instrument_id=instrument.id, book_type=BookType.L2_MBP)
        size = Quantity(_UNLIMITED, instrument.size_precision)
        if order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.LIMIT_IF_TOUCHED):
            if order.side == OrderSide.SELL and best_bid >= order.price:
                best_bid = order.price
            elif order.side == OrderSide.BUY and best_ask <= order.price:
                best_ask = order.price
        elif order.order_type == OrderType.STOP_MARKET:
            if order.side == OrderSide.SELL and best_bid <= order.trigger_price:
                best_bid = order.trigger_price
            elif order.side == OrderSide.BUY and best_ask >= order.trigger_price:
                best_ask = order.trigger_price
        book.add(BookOrder(side=OrderSide.BUY, price=best_bid, size=size, order_id=1), 0, 0)
        book.add(BookOrder(side=OrderSide.SELL, price=best_ask, size=size, order_id=2), 0, 0)
        return book
