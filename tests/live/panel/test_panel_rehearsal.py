"""The control panel in a real browser during a real rehearsal (the node, both sandboxes):
one scripted session of an operator, watched in Chromium while the day trades, then its
facts checked one by one (each test below is one of issue 12's checks).

The rehearsal must run on the main thread (NautilusTrader's kernel installs signal
handlers), so the operator (Playwright) works from a thread of its own; every wait in it is
on what the page shows or the journal's rows, never on a fixed sleep.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetOrdersRequest
from playwright.sync_api import expect
from psycopg.rows import dict_row

from live.journal import JournalSettings, open_journal
from live.journal.rows import OrderRow, PositionRow, SignalRow
from live.panel.browser import chromium
from live.panel.launch import PanelOptions, run_panel
from live.rehearsal import SANDBOX_KEYS, rehearse
from strategies.risk import RiskRules
from strategies.settings import StrategySettings
from tests.live.conftest import live_config
from tests.live.journal_support import new_database, server  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DAY = "2024-12-27"
WAIT_MS = 40_000
PAUSED_SIGNALS = 10  # actionable signals on flat stocks seen while entries are off


class Recorder:
    """Every journal row with the wall-clock time it reached the panel (a row listener)."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, object]] = []

    def put(self, row) -> None:
        self.rows.append((time.time_ns(), row))

    def close(self) -> None:
        pass

    def wait_for(self, test, what: str, timeout: float = WAIT_MS / 1000) -> None:
        deadline = time.monotonic() + timeout
        while not test(list(self.rows)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the rehearsal never showed {what}")
            time.sleep(0.05)


def actionable_on_flat(rows: list[tuple[int, object]], after_ns: int) -> int:
    """Signals after ``after_ns`` that would enter (BUY/SELL) a stock holding no position."""
    open_symbols: set[str] = set()
    count = 0
    for at, row in rows:
        if isinstance(row, PositionRow):
            (open_symbols.discard if row.kind == "closed" else open_symbols.add)(row.instrument_id)
        elif isinstance(row, SignalRow) and at > after_ns and row.decision != "HOLD" \
                and row.instrument_id not in open_symbols:
            count += 1
    return count


def entries_after(rows: list[tuple[int, object]], after_ns: int) -> list[OrderRow]:
    return [r for at, r in rows if isinstance(r, OrderRow) and "ENTRY" in r.tags and at > after_ns]


def operate(panel, recorder: Recorder, facts: dict, shots: Path, watching: threading.Event) -> None:
    """The operator's session, in the order a person would do it; ``watching`` is set once
    the trading page is open (the day starts then, so the first trade comes after)."""
    base = panel.server.base_url
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("dialog", lambda dialog: dialog.accept())  # the emergency stop's "are you sure"
        page.goto(panel.server.url)
        facts["landed"] = page.url
        began = time.monotonic()

        page.goto(base + "/trading")
        empty = page.locator("#positions tr").count()
        watching.set()
        navigations = []
        page.on("framenavigated", lambda frame: navigations.append(frame.url))
        page.locator("#positions tr").first.wait_for(timeout=WAIT_MS)
        facts["positions_rows_without_reload"] = (empty, page.locator("#positions tr").count(), list(navigations))
        page.screenshot(path=shots / "trading.png", full_page=True)

        page.goto(base + "/")
        page.click("#entries-off")
        expect(page.locator("#entries")).to_have_text("off", timeout=WAIT_MS)
        facts["paused_ns"] = paused = time.time_ns()
        recorder.wait_for(lambda rows: actionable_on_flat(rows, paused) >= PAUSED_SIGNALS,
                          f"{PAUSED_SIGNALS} actionable signals while paused")
        facts["resumed_ns"] = resumed = time.time_ns()
        page.click("#entries-on")
        expect(page.locator("#entries")).to_have_text("on", timeout=WAIT_MS)
        recorder.wait_for(lambda rows: entries_after(rows, resumed), "an entry after resuming")

        panel.control.set_weights({"lightgbm": 2.0})  # the Models page's edit, applied on the node
        facts["weights_on_node"] = panel.control.status()["weights"]

        page.check("input[name=mode][value=live]")
        page.check("input[name=live]")
        page.check("input[name=understood]")
        page.click("#mode-form button")
        page.locator("#errors:not([hidden])").wait_for(timeout=WAIT_MS)
        facts["mode_error"] = page.text_content("#errors")

        recorder.wait_for(lambda _rows: panel.ctx.view.snapshot("positions")["positions"], "an open position")
        facts["open_before_stop"] = len(panel.ctx.view.snapshot("positions")["positions"])
        page.click("#emergency-stop")
        expect(page.locator("#broker-confirmation")).to_contain_text("broker confirms flat", timeout=WAIT_MS)
        expect(page.locator("#trading-state")).to_have_text("HALTED", timeout=WAIT_MS)
        facts["stopped_ns"] = time.time_ns()
        facts["halt"] = page.text_content("#halt")
        facts["confirmation"] = page.text_content("#broker-confirmation")
        facts["broker"] = broker_account(panel.control)
        facts["operator_secs"] = time.monotonic() - began
        page.screenshot(path=shots / "control.png", full_page=True)
        print(f"operator done in {facts['operator_secs']:.1f} s; screenshots: {shots / 'control.png'} {shots / 'trading.png'}")


def broker_account(control) -> tuple[list, list]:
    """The sandbox broker's positions and open orders, asked with alpaca-py itself."""
    client = TradingClient(SANDBOX_KEYS["ALPACA_API_KEY_ID"], SANDBOX_KEYS["ALPACA_API_SECRET_KEY"], paper=True,
                           url_override=control.broker_url())
    return client.get_all_positions(), client.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))


@pytest.fixture(scope="module")
def session(market, server, tmp_path_factory):  # noqa: F811
    catalog, models = market
    base, _ = server
    db = new_database(base, "panel_rehearsal")
    settings = JournalSettings(sinks=("postgres",), dsn=db, spool_dir=str(tmp_path_factory.mktemp("spool")))
    # tight brackets: positions open and close every few minutes, so there is always a next entry
    cfg = live_config(models, journal=settings, strategy=StrategySettings(
        entry_threshold=0.51, weights={"lightgbm": 1.0}, risk=RiskRules(stop_loss=0.002, take_profit=0.002)))
    shots = tmp_path_factory.mktemp("screenshots")
    recorder, facts = Recorder(), {}
    with open_journal(settings) as journal, ThreadPoolExecutor(1, thread_name_prefix="operator") as pool, \
            run_panel(cfg, PanelOptions(port=0), rehearsal=True, catalog=catalog, retrain=None) as panel:
        panel.attach(journal)
        panel.ctx.row_listeners.append(recorder)
        watching = threading.Event()
        operator = pool.submit(operate, panel, recorder, facts, shots, watching)
        deadline = time.monotonic() + 2 * WAIT_MS / 1000
        while not watching.wait(0.2):  # a slow browser start must not miss the first trade
            if operator.done():
                operator.result()  # the operator's failure, raised here
            if time.monotonic() > deadline:
                raise TimeoutError("the operator never opened the trading page")

        def watched_pace(_done: int, _total: int) -> None:
            """A minute every ~0.2 s while the operator works (the day outlasts a slow machine's
            operator), then the rest of the day at full speed."""
            if not operator.done():
                time.sleep(0.2)

        result = rehearse(cfg, catalog, DAY, control=panel.control, also=[panel.sink], on_minute=watched_pace)
        operator.result(60)  # the operator's failure, if any, fails the fixture here
    return {"facts": facts, "db": db, "result": result, "shots": shots, "rows": recorder.rows}


def journal_rows(db: str, query: str) -> list[dict]:
    with psycopg.connect(db, row_factory=dict_row) as conn:
        return conn.execute(query).fetchall()


def test_login_with_the_token_lands_on_the_control_page(session):
    assert session["facts"]["landed"].endswith("/")


def test_the_positions_table_fills_as_trades_happen_without_reload(session):
    """The page opened before the first trade; rows came over the event stream."""
    before, after, navigations = session["facts"]["positions_rows_without_reload"]
    assert before == 0 and after >= 1 and navigations == []


def test_pausing_entries_stops_new_entries_and_resuming_brings_them_back(session):
    facts = session["facts"]
    created = {r["client_order_id"]: r for r in journal_rows(session["db"], "SELECT * FROM journal.orders")}
    seen = {r.client_order_id: at for at, r in session["rows"] if isinstance(r, OrderRow)}
    entries = [seen[cid] for cid, r in created.items() if "ENTRY" in r["tags"]]
    assert any(at < facts["paused_ns"] for at in entries)  # it was entering before the pause
    assert not [at for at in entries if facts["paused_ns"] < at < facts["resumed_ns"]]
    assert any(facts["resumed_ns"] < at < facts["stopped_ns"] for at in entries)


def test_a_valid_weight_edit_reaches_the_running_strategy(session):
    assert session["facts"]["weights_on_node"] == {"lightgbm": 2.0}


def test_switching_to_live_from_the_paper_config_is_refused_with_the_reason(session):
    error = session["facts"]["mode_error"]
    assert "switch to live: --live given but the config says mode: paper" in error, error


def test_the_emergency_stop_leaves_the_broker_flat_and_the_page_shows_the_halt(session):
    facts = session["facts"]
    assert facts["open_before_stop"] >= 1
    positions, open_orders = facts["broker"]
    assert positions == [] and open_orders == []
    assert facts["halt"] == "HALTED" and "broker confirms flat at" in facts["confirmation"]


def test_the_halt_is_sticky_no_entry_after_the_emergency_stop(session):
    assert not entries_after(session["rows"], session["facts"]["stopped_ns"])


def test_every_operator_action_is_journaled_with_its_outcome(session):
    decisions = journal_rows(session["db"], "SELECT subject, details FROM journal.decisions WHERE kind = 'panel' "
                                            "ORDER BY ts")
    subjects = [d["subject"] for d in decisions]
    assert subjects == ["entries off", "entries on", "mode live", "emergency stop"], subjects
    assert decisions[2]["details"]["outcome"].startswith("refused: switch to live: ")
    assert decisions[3]["details"]["outcome"].startswith("broker confirms flat at")
    assert all("at" in d["details"] for d in decisions)


def test_screenshots_of_control_and_trading_are_written(session):
    for name in ("control.png", "trading.png"):
        assert (session["shots"] / name).stat().st_size > 10_000
