"""Commission model for US equities: a per-share rate with a per-order minimum and cap.

NautilusTrader's PerContractFeeModel has no minimum; retail and institutional equity pricing
(IBKR fixed: $0.005/share, $1 minimum, 1% of trade value maximum) does.
"""

from nautilus_trader.backtest.config import FeeModelConfig
from nautilus_trader.backtest.models import FeeModel
from nautilus_trader.model.objects import Money


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
