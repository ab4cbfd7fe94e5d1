"""The EnsembleStrategy opens no position while its execution client reports that it cannot
see the venue's order updates (``EXECUTION_STATUS_TOPIC``; live, the Alpaca client publishes
it when its trade_updates stream is lost and when it is back and reconciled)."""

from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.enums import AccountType

from strategies.ensemble import EXECUTION_STATUS_TOPIC
from strategies.risk import RiskRules
from tests.strategies.conftest import EQUAL_WEIGHTS, START_CASH, Market, build_engine, utc

DAY = "2024-11-26"


class StatusScriptConfig(ActorConfig, frozen=True, kw_only=True):
    script: list[tuple[str, bool]]  # (UTC time, connected)


class StatusScript(Actor):
    """Publishes the execution status at set times, as the live client would."""

    def on_start(self) -> None:
        for k, (ts, connected) in enumerate(self.config.script):
            self.clock.set_time_alert_ns(
                f"status-{k}", utc(ts).value,
                lambda _e, c=connected: self.msgbus.publish(topic=EXECUTION_STATUS_TOPIC, msg=c),
            )


def test_no_entries_while_the_execution_client_is_disconnected():
    market = Market([DAY], {"AAA": "TECH", "BBB": "TECH", "CCC": "TECH"})
    market.signal("AAA", f"{DAY} 15:00", 0.9)  # connected: enters
    market.signal("BBB", f"{DAY} 15:20", 0.9)  # disconnected at 15:10: refused
    market.signal("CCC", f"{DAY} 15:40", 0.9)  # back at 15:30: enters
    run = build_engine(
        market, rules=RiskRules(), threshold=0.65, allow_short=True, weights=EQUAL_WEIGHTS,
        cash=START_CASH, account_type=AccountType.MARGIN, traded=None,
    )
    run.engine.add_actor(StatusScript(StatusScriptConfig(
        script=[(f"{DAY} 15:10", False), (f"{DAY} 15:30", True)])))
    try:
        run.engine.run()
        assert run.entered() == ["AAA", "CCC"]
        assert run.logged("error", "execution client disconnected")
        assert run.logged("warning", "execution client connected again")
    finally:
        run.engine.dispose()

