"""Sub-penny prices at the Alpaca edge: the sandbox applies Reg NMS Rule 612 as Alpaca does
(whole cents at or above $1.00, four decimals below), answers an unrepresentable price with a
422 rather than a 500, and fills a market order at a sub-penny bar price that the execution
client reports to NautilusTrader as the exact Decimal Alpaca sent."""

from collections.abc import Iterator
from decimal import Decimal

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderSide, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, StopLossRequest, TakeProfitRequest
from nautilus_trader.model.enums import LiquiditySide, OrderStatus
from nautilus_trader.model.enums import OrderSide as NautilusSide
from nautilus_trader.model.enums import TimeInForce as NautilusTif
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.objects import Price, Quantity

from adapters.alpaca.parsing.progress import OrderProgress
from adapters.alpaca.parsing.reports import fill_report
from adapters.alpaca.parsing.wire import FillActivity, to_price
from adapters.alpaca.sandbox import AlpacaSandbox, CatalogMarket
from catalog.instruments import equity, is_on_tick
from catalog.jobs import generate_catalog
from catalog.store import MarketCatalog
from tests.adapters.alpaca.conftest import KEY_ID, SECRET_KEY
from tests.adapters.alpaca.test_execution import NOW, S000, ExecNode, activities_of, client_config
from tests.adapters.alpaca.test_parsing import ACCOUNT, T0, fill_update
from tests.adapters.alpaca.test_sandbox_orders import raw

SUB_PENNY = "sub-penny increment does not fulfill minimum pricing criteria"


@pytest.fixture(scope="module")
def sub_penny_market(tmp_path_factory: pytest.TempPathFactory) -> CatalogMarket:
    """The conftest's market with every price moved by 0.0021 (four decimals, as Polygon
    sends them), plus PENY, a stock trading near $0.40."""
    work = tmp_path_factory.mktemp("sub-penny")
    generated = generate_catalog(work / "gen", n_symbols=3, n_days=3, seed=7)
    catalog = MarketCatalog(work / "catalog")
    prices = ["open", "high", "low", "close"]
    for symbol in generated.symbols():
        frame = generated.read_bars(symbol)
        frame[prices] = (frame[prices] + 0.0021).round(4)
        catalog.write_bars(symbol, frame, sector="Manufacturing")
        if symbol == "S000":
            frame[prices] = (frame[prices] / 1000).round(4)
            catalog.write_bars("PENY", frame, sector="Manufacturing")
    return CatalogMarket(catalog.path)


@pytest.fixture
def sandbox(sub_penny_market: CatalogMarket) -> Iterator[AlpacaSandbox]:
    with AlpacaSandbox(sub_penny_market, key_id=KEY_ID, secret_key=SECRET_KEY) as running:
        running.advance_to(NOW)
        yield running


@pytest.fixture
def client(sandbox: AlpacaSandbox) -> TradingClient:
    return TradingClient(KEY_ID, SECRET_KEY, paper=True, url_override=sandbox.base_url)


def limit(symbol: str, price: float, **kw) -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol=symbol, qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, limit_price=price, **kw
    )


def test_a_sub_penny_price_at_or_above_a_dollar_is_refused_as_alpaca_does(client: TradingClient):
    for price in (185.4321, 1.001):
        with pytest.raises(APIError) as refused:
            client.submit_order(limit("S000", price))
        assert (refused.value.status_code, refused.value.code) == (422, 42210000)
        assert refused.value.message == f"invalid limit_price {price}. {SUB_PENNY}"
    bracket = limit(
        "S000", 100.0, order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=500.005), stop_loss=StopLossRequest(stop_price=90.0),
    )
    with pytest.raises(APIError, match="take_profit.limit_price 500.005"):
        client.submit_order(bracket)


def test_below_a_dollar_four_decimals_are_a_valid_price(client: TradingClient):
    order = client.submit_order(limit("PENY", 0.1234))
    assert order.limit_price == "0.1234"
    with pytest.raises(APIError) as refused:
        client.submit_order(limit("PENY", 0.12345))
    assert refused.value.code == 42210000 and SUB_PENNY in refused.value.message


@pytest.mark.parametrize(
    ("price", "shown"),
    [("1e400", "1e400"), (float("inf"), "inf"), ("-1e400", "-1e400"), ("1e-400", "1e-400")],
    ids=["huge", "infinite", "negative", "tiny"],
)
def test_an_unrepresentable_price_is_a_422_naming_the_field(sandbox: AlpacaSandbox, price, shown: str):
    """alpaca-py sends only floats, so the body goes over raw HTTP."""
    body = {"symbol": "S000", "qty": 1, "side": "buy", "type": "limit", "time_in_force": "day"}
    status, answer = raw(sandbox, "POST", "/v2/orders", body | {"limit_price": price})
    assert status == 422, answer
    assert answer["message"].startswith("invalid limit_price") and shown in answer["message"], answer


def test_a_sub_penny_fill_reaches_nautilus_as_the_exact_decimal(
    sandbox: AlpacaSandbox, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("ALPACA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("ALPACA_API_SECRET_KEY", SECRET_KEY)
    with ExecNode(client_config(sandbox)) as node:
        order = node.submit(
            lambda s: s.order_factory.market(S000, NautilusSide.BUY, Quantity.from_int(7), NautilusTif.DAY)
        )
        node.wait_status(order.client_order_id, OrderStatus.FILLED)
        [activity] = activities_of(sandbox, node.order(order.client_order_id).venue_order_id.value)
        [fill] = node.strategy.fills(order.client_order_id)
    venue_px = Decimal(activity["price"])
    assert not is_on_tick(venue_px) and venue_px == venue_px.quantize(Decimal("0.0001"))  # 4 decimals
    assert fill.last_px == Price.from_str(activity["price"]) and fill.last_px.precision == 4
    assert fill.last_px.as_decimal() == venue_px



def test_sub_penny_executions_stay_exact_in_the_stream_and_activity_paths():
    """A trade_updates fill and a REST fill activity at Alpaca's sub-penny prices (a price
    improvement, an average over executions) become NautilusTrader prices digit for digit."""
    update = fill_update("fill", "185.4321", "3", "exec-1", status="filled", filled_qty="3",
                         filled_avg_price="185.4321", type="market", limit_price=None)
    _accepted, fill = OrderProgress().apply_fill(update, 0)
    assert fill.last_px == Decimal("185.4321")
    assert to_price(fill.last_px, equity("AAPL").price_precision) == Price.from_str("185.4321")
    activity = FillActivity(id="20241230143100000::exec-2", order_id="venue-1", symbol="AAPL", side="buy",
                            price=Decimal("0.51235"), qty=Decimal(5), cum_qty=Decimal(5), transaction_time=T0)
    report = fill_report(activity, ACCOUNT, equity("AAPL"), ClientOrderId("O-1"), LiquiditySide.TAKER, 0)
    assert str(report.last_px) == "0.51235" and report.last_px.as_decimal() == Decimal("0.51235")
