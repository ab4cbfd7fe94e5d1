"""The EnsembleStrategy's decisions: one StrategyDecision per signal of a traded stock, its
action and its reason, each reason reached by a real strategy in a real BacktestEngine (the
harness of tests/strategies/conftest.py), and nothing published unless the config asks."""

import pytest
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.enums import AccountType, OrderSide
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy

from catalog.instruments import instrument_id
from strategies.decisions import ACTIONS, REASONS, Action, Reason
from strategies.risk import RiskRules
from tests.strategies.conftest import EQUAL_WEIGHTS, START_CASH, Market, build_engine, utc
from tests.strategies.test_execution_status import StatusScript, StatusScriptConfig
from tests.strategies.test_risk_rules import WIDE_RULES, losing_market

DAY = "2024-11-26"  # a regular Tuesday: 14:30-21:00 UTC, no entries after 20:45


def decided(run) -> list[tuple[str, str, str, str]]:
    """(symbol, UTC HH:MM, action, reason) of every decision, in order."""
    return [(d.instrument_id.symbol.value, utc(d.ts_event).strftime("%H:%M"), d.action, d.reason)
            for d in run.decisions]


class RestingOrderConfig(StrategyConfig, frozen=True, kw_only=True):
    instrument_id: str
    at: str  # UTC time


class RestingOrder(Strategy):
    """Another strategy's limit order far below the market: an open order of a flat stock."""

    def on_start(self) -> None:
        self.clock.set_time_alert_ns("rest", utc(self.config.at).value, self._place)

    def _place(self, _event) -> None:
        instrument = self.cache.instrument(InstrumentId.from_str(self.config.instrument_id))
        self.submit_order(self.order_factory.limit(
            instrument_id=instrument.id, order_side=OrderSide.BUY, quantity=instrument.make_qty(1),
            price=instrument.make_price(50.0)))


def a_day_of_decisions() -> Market:
    """One session touching every reason the default rules can give, and a stock not traded."""
    market = Market([DAY], {s: "TECH" for s in ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "ZZZ")})
    market.signal("AAA", f"{DAY} 14:30", 0.9)  # the session's open: no entry yet
    market.signal("AAA", f"{DAY} 15:00", 0.6)  # not sure enough
    market.signal("AAA", f"{DAY} 15:01", 0.9)  # enters long
    market.signal("AAA", f"{DAY} 15:01", 0.9)  # same bar: the entry is still in flight
    market.signal("AAA", f"{DAY} 15:10", 0.9)  # filled: the position is open
    market.signal("BBB", f"{DAY} 15:01", 0.1)  # enters short
    market.hold("CCC", 6_000.0, market.minutes[0])
    market.signal("CCC", f"{DAY} 15:02", 0.9)  # 5% of equity buys less than a 6,000 USD share
    market.frames["DDD"] = market.frames["DDD"].loc[utc(f"{DAY} 16:00"):]
    market.signal("DDD", f"{DAY} 15:03", 0.9)  # no bar of DDD yet
    market.signal("EEE", f"{DAY} 15:04", 0.9)  # another strategy's order rests on EEE
    market.signal("FFF", f"{DAY} 20:46", 0.9)  # after the entry cutoff
    market.signal("ZZZ", f"{DAY} 15:05", 0.9)  # not traded: no decision
    return market


def run_the_day(publish_decisions: bool):
    run = build_engine(
        a_day_of_decisions(), rules=RiskRules(), threshold=0.65, allow_short=True, weights=EQUAL_WEIGHTS,
        cash=START_CASH, traded=["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"], account_type=AccountType.MARGIN,
        latency_ms=50.0, publish_decisions=publish_decisions,
    )
    run.engine.add_strategy(RestingOrder(RestingOrderConfig(
        instrument_id=str(instrument_id("EEE")), at=f"{DAY} 14:40", order_id_tag="REST")))
    run.engine.run()
    return run


@pytest.fixture(scope="module")
def the_day():
    runs = {publish: run_the_day(publish) for publish in (True, False)}
    yield runs
    for run in runs.values():
        run.engine.dispose()


def test_every_signal_of_a_traded_stock_has_one_decision_with_its_reason(the_day):
    run = the_day[True]
    assert decided(run) == [
        ("AAA", "14:30", Action.SKIP, Reason.OUTSIDE_ENTRY_WINDOW),
        ("AAA", "15:00", Action.HOLD, Reason.BELOW_THRESHOLD),
        ("AAA", "15:01", Action.ENTER_LONG, ""),
        ("AAA", "15:01", Action.SKIP, Reason.ENTRY_PENDING),
        ("BBB", "15:01", Action.ENTER_SHORT, ""),
        ("CCC", "15:02", Action.SKIP, Reason.SIZE_BELOW_ONE),
        ("DDD", "15:03", Action.SKIP, Reason.NO_BAR),
        ("EEE", "15:04", Action.SKIP, Reason.ORDER_OPEN),
        ("AAA", "15:10", Action.SKIP, Reason.POSITION_OPEN),
        ("FFF", "20:46", Action.SKIP, Reason.OUTSIDE_ENTRY_WINDOW),
    ]
    assert {d.action for d in run.decisions} <= ACTIONS
    assert all(type(d.action) is str and type(d.reason) is str for d in run.decisions)  # plain values
    assert {d.reason for d in run.decisions if d.action in (Action.HOLD, Action.SKIP)} <= REASONS
    assert all(d.threshold == 0.65 for d in run.decisions)
    # the ensemble's vote is recorded also when a rule stopped the signal before it
    assert [round(d.probability, 6) for d in run.decisions] == [0.9, 0.6, 0.9, 0.9, 0.1, 0.9, 0.9, 0.9, 0.9, 0.9]


def test_an_entry_decision_names_the_entry_order_it_created(the_day):
    run = the_day[True]
    entries = {d.client_order_id: d for d in run.decisions if d.action in (Action.ENTER_LONG, Action.ENTER_SHORT)}
    assert sorted(entries) == sorted(o.client_order_id.value for o in run.entries())
    for order in run.entries():
        decision = entries[order.client_order_id.value]
        assert decision.instrument_id == order.instrument_id and decision.ts_event == order.ts_init
        assert (decision.action == Action.ENTER_LONG) == (order.side == OrderSide.BUY)
    assert all(d.client_order_id == "" for d in run.decisions if d.action in (Action.HOLD, Action.SKIP))


def test_publishing_is_off_by_default_and_changes_no_trade(the_day):
    published, silent = the_day[True], the_day[False]
    assert silent.decisions == []
    assert [(o.instrument_id, o.side, o.quantity, o.ts_init) for o in silent.orders()] == [
        (o.instrument_id, o.side, o.quantity, o.ts_init) for o in published.orders()]


def one_rule_run(market: Market, rules: RiskRules, actor=None):
    run = build_engine(market, rules=rules, threshold=0.65, allow_short=True, weights=EQUAL_WEIGHTS,
                       cash=START_CASH, account_type=AccountType.MARGIN, traded=None, publish_decisions=True)
    if actor is not None:
        run.engine.add_actor(actor)
    try:
        run.engine.run()
        return decided(run)
    finally:
        run.engine.dispose()


def test_max_positions():
    market = Market([DAY], {"AAA": "TECH", "BBB": "FIN"})
    market.signal("AAA", f"{DAY} 15:00", 0.9)
    market.signal("BBB", f"{DAY} 15:00", 0.9)
    assert one_rule_run(market, RiskRules(max_positions=1)) == [
        ("AAA", "15:00", Action.ENTER_LONG, ""), ("BBB", "15:00", Action.SKIP, Reason.MAX_POSITIONS)]


def test_sector_cap():
    """The first TECH position uses the whole 5% sector cap: no share of the second fits."""
    market = Market([DAY], {"AAA": "TECH", "BBB": "TECH"})
    market.signal("AAA", f"{DAY} 15:00", 0.9)
    market.signal("BBB", f"{DAY} 15:01", 0.9)
    assert one_rule_run(market, RiskRules(max_sector_pct=0.05)) == [
        ("AAA", "15:00", Action.ENTER_LONG, ""), ("BBB", "15:01", Action.SKIP, Reason.SECTOR_CAP)]


def test_no_volatility():
    market = Market([DAY], {"AAA": "TECH"})
    market.signal("AAA", f"{DAY} 15:00", 0.9)  # volatility NaN: an old catalog's signal
    market.signal("AAA", f"{DAY} 15:01", 0.9, volatility=0.001, horizon=25)
    rules = RiskRules(stop_volatility_multiple=3.0)
    assert one_rule_run(market, rules) == [("AAA", "15:00", Action.SKIP, Reason.NO_VOLATILITY), ("AAA", "15:01", Action.ENTER_LONG, "")]


def test_halted_by_the_daily_loss_limit():
    """The halt comes at 15:30 (tests/strategies/test_risk_rules.py): every signal after it."""
    after = [d for d in one_rule_run(losing_market([DAY]), WIDE_RULES) if d[1] >= "15:30"]
    assert after and {(a, r) for _, _, a, r in after} == {(Action.SKIP, Reason.HALTED)}
    assert ("AAA", "16:00", Action.SKIP, Reason.HALTED) in after and ("CCC", "17:00", Action.SKIP, Reason.HALTED) in after


def test_execution_disconnected():
    market = Market([DAY], {"AAA": "TECH", "BBB": "TECH"})
    market.signal("AAA", f"{DAY} 15:20", 0.9)
    market.signal("BBB", f"{DAY} 15:40", 0.9)
    script = StatusScript(StatusScriptConfig(script=[(f"{DAY} 15:10", False), (f"{DAY} 15:30", True)]))
    assert one_rule_run(market, RiskRules(), script) == [
        ("AAA", "15:20", Action.SKIP, Reason.EXECUTION_DISCONNECTED), ("BBB", "15:40", Action.ENTER_LONG, "")]

