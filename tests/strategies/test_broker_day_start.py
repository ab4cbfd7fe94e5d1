"""The EnsembleStrategy's day starts at the broker's previous close when the execution client
published it for that session (``DAY_START_TOPIC``; live, the Alpaca client publishes
``last_equity`` with the session it starts: ``adapters.alpaca.day_start``), never at a value
published for another day; without one it keeps its own rule (the equity at the session's
first signal), which is all a backtest ever has.

The broker's figure here is 3% above the account's equity: a day that starts there has already
lost more than the 2% limit, so the strategy halts at its first check of that session."""

from decimal import Decimal

from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.enums import AccountType, TradingState

from adapters.alpaca.day_start import day_start_message
from strategies.ensemble import DAY_START_TOPIC
from strategies.risk import RiskRules
from tests.strategies.conftest import EQUAL_WEIGHTS, START_CASH, Market, build_engine, utc

DAY = "2024-11-26"  # 14:30-21:00 UTC
NEXT = "2024-11-27"
ABOVE = Decimal(repr(START_CASH * 1.03))  # the day started 3% richer than the account is now


class DayStartScriptConfig(ActorConfig, frozen=True, kw_only=True):
    script: list[tuple[str, str]]  # (UTC time of the broker's clock, last_equity)


class DayStartScript(Actor):
    """Publishes the broker's start-of-day equity at set times, as the live client would after
    reading the account (and the clock) then."""

    def on_start(self) -> None:
        for k, (ts, last_equity) in enumerate(self.config.script):
            message = day_start_message(Decimal(last_equity), utc(ts).isoformat())
            assert message is not None, ts
            self.clock.set_time_alert_ns(
                f"day-start-{k}", utc(ts).value,
                lambda _e, m=message: self.msgbus.publish(topic=DAY_START_TOPIC, msg=m),
            )


def run_two_days(script: list[tuple[str, str]]):
    market = Market([DAY, NEXT], {"AAA": "TECH", "BBB": "TECH"})
    market.signal("AAA", f"{DAY} 15:00", 0.9)
    market.signal("BBB", f"{NEXT} 15:00", 0.9)
    run = build_engine(market, rules=RiskRules(), threshold=0.65, allow_short=True, weights=EQUAL_WEIGHTS,
                       cash=START_CASH, account_type=AccountType.MARGIN, traded=None)
    run.engine.add_actor(DayStartScript(DayStartScriptConfig(script=script)))
    run.engine.run()
    return run


def test_a_day_start_published_for_the_session_halts_at_its_first_check_and_not_the_next_day():
    run = run_two_days([(f"{DAY} 14:00", str(ABOVE))])  # pre-open: the last close is DAY's start
    try:
        assert run.state_changes[0] == (utc(f"{DAY} 15:00"), TradingState.REDUCING)
        assert run.logged("warning", "daily loss 2.91% reached the limit")
        # NEXT: the DAY figure is stale; the day starts at the account's equity and trades
        assert run.state_changes[1:] == [(utc(f"{NEXT} 15:00"), TradingState.ACTIVE)]
        assert run.entered() == ["BBB"]
    finally:
        run.engine.dispose()


def test_each_day_uses_its_own_figure():
    run = run_two_days([(f"{DAY} 14:00", str(START_CASH)), (f"{NEXT} 14:00", str(ABOVE))])
    try:
        assert run.entered() == ["AAA"]
        assert run.state_changes[0] == (utc(f"{NEXT} 15:00"), TradingState.REDUCING)
    finally:
        run.engine.dispose()


def test_a_figure_that_arrives_during_its_session_applies_from_the_next_check():
    market = Market([DAY], {"AAA": "TECH", "BBB": "TECH"})
    market.signal("AAA", f"{DAY} 15:00", 0.9)  # the day's start: the equity here (no figure yet)
    market.signal("BBB", f"{DAY} 16:00", 0.9)  # the broker's figure came at 15:30
    run = build_engine(market, rules=RiskRules(), threshold=0.65, allow_short=True, weights=EQUAL_WEIGHTS,
                       cash=START_CASH, account_type=AccountType.MARGIN, traded=None)
    run.engine.add_actor(DayStartScript(DayStartScriptConfig(script=[(f"{DAY} 15:30", str(ABOVE))])))
    try:
        run.engine.run()
        assert run.entered() == ["AAA"]
        assert run.state_changes[0] == (utc(f"{DAY} 16:00"), TradingState.REDUCING)
    finally:
        run.engine.dispose()


def test_without_a_figure_the_day_starts_at_the_first_signal():
    run = run_two_days([])
    try:
        assert run.entered() == ["AAA", "BBB"] and run.state_changes == []
    finally:
        run.engine.dispose()
