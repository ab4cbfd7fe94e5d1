"""The Models and Data pages in a real headless Chromium (Playwright on Debian's chromium).

Without a node (fast): an invalid weight is refused with its field named on the page, a valid
one is taken and journaled (journal.decisions kind "panel"); a pin from the page writes
promotion.json as `sextant models pin` does; the ingest button shows its progress and ends
"done" with the coverage filled. During a rehearsal (slow): a weight edit changes the running
strategy's weights, and the live scores and the feed monitor update over server-sent events.
Screenshots of both pages go to the test's tmp_path."""

import json
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Page, expect
from typer.testing import CliRunner

from adapters.polygon.sandbox import PolygonSandbox
from live.control import TradingControl
from live.journal import JournalSettings, open_journal
from live.journal.rows import RunEvent
from live.panel.browser import chromium
from live.panel.context import PanelContext
from live.panel.events import EventHub
from live.panel.live_view import LiveView, PanelSink
from live.panel.server import PanelServer
from live.rehearsal import SANDBOX_KEYS, rehearse
from live.schedule import ScheduleSection
from live.settings import PolygonSection
from models.promotion import PromotionStore
from models.registry import ModelRegistry
from sextant.cli import app
from tests.live.conftest import SYMBOLS, live_config, unpinned_copy
from tests.live.journal_support import dsn, server  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
DAY = date(2024, 12, 27)
POLYGON_KEY = SANDBOX_KEYS["POLYGON_API_KEY"]  # the key a rehearsal puts in the environment


@pytest.fixture
def registry(market, tmp_path: Path) -> Path:
    """The market's registry with a second fold (the same model saved again), so there is a
    challenger to pin; a copy, since pins change it."""
    _, models = market
    root = unpinned_copy(models, tmp_path / "models")
    reg = ModelRegistry(root)
    model, meta = reg.load("lightgbm", 1)
    reg.save(model, {**{k: meta[k] for k in ("train_start", "train_end", "metrics", "data_hash", "universe")},
                     "fold": 1})
    return root


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium() as browser:
        yield browser.new_page(viewport={"width": 1300, "height": 1000})


def panel_context(config, journal, catalog: Path) -> PanelContext:
    return PanelContext(config=config, journal=journal, control=TradingControl(config, rehearsal=True),
                        hub=EventHub(), view=LiveView(config.strategy.risk), catalog=catalog)


def panel_decisions(dsn: str) -> list[tuple[str, dict]]:  # noqa: F811
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT subject, details FROM journal.decisions WHERE kind = 'panel' ORDER BY ts").fetchall()


def without_times(path: Path) -> dict:
    state = json.loads(path.read_text())
    for decision in state["history"]:
        decision.pop("at")
    return state


def nightly_stand_in(plan) -> dict:
    """A night that had too few sessions to judge (the real step trains for minutes; its
    journaling and the job around it are what the page runs)."""
    return {"action": "wait", "reason": f"too few sessions before {plan.day}", "champion": {"fold": 0}}


def test_the_read_only_pages_render_without_a_config_a_node_or_a_catalog(page: Page):
    ctx = PanelContext(config=None, journal=None, control=None, hub=EventHub(), view=LiveView())
    with PanelServer(ctx, port=0) as panel:
        page.goto(panel.url)
        page.goto(f"{panel.base_url}/models")
        expect(page.locator("#ensembles")).to_contain_text("no ensemble in the registry")
        expect(page.locator("#weights-apply, #retrain, .pin")).to_have_count(0)
        page.goto(f"{panel.base_url}/data")
        expect(page.locator("#coverage-error")).to_contain_text("no catalog")
        expect(page.locator("#feed-status")).to_have_text("no node running")
        expect(page.locator("#ingest")).to_have_count(0)
        page.goto("about:blank")


def test_weights_pin_retrain_and_ingest_from_the_pages(market, registry: Path, dsn: str, page: Page,  # noqa: F811
                                               tmp_path: Path, monkeypatch):
    source, _ = market
    monkeypatch.setenv("POLYGON_API_KEY", POLYGON_KEY)
    by_cli = tmp_path / "cli-models"
    dest = tmp_path / "catalog"
    with PolygonSandbox(source, api_key=POLYGON_KEY) as polygon, \
            open_journal(JournalSettings(sinks=("postgres",)), dsn=dsn) as journal:
        config = live_config(registry, polygon=PolygonSection(base_url=polygon.base_url),
                             schedule=ScheduleSection(catalog=str(dest), ingest_sessions=2))
        ctx = panel_context(config, journal, dest)
        ctx.retrain = nightly_stand_in
        ctx.view.put(RunEvent(run_id="r", seq=0, ts=0, kind="started", trading_day=DAY, trader_id="T", name="paper",
                              mode="paper"))  # the run's trading day, as a rehearsal of it starts
        with PanelServer(ctx, port=0) as panel:
            shutil.copytree(registry, by_cli)  # as the panel found it: nothing pinned yet
            page.goto(panel.url)
            page.goto(f"{panel.base_url}/models")
            weight = page.locator('input[name="strategy.weights.lightgbm"]')
            expect(weight).to_have_value("1.0")

            weight.fill("-2")
            page.click("#weights-apply")
            expect(page.locator("#errors")).to_contain_text("strategy.weights.lightgbm")
            expect(page.locator('[data-field-error="strategy.weights.lightgbm"]')).to_contain_text("between 0 and")
            expect(weight).to_have_class("num invalid")
            weight.fill("lots")
            page.click("#weights-apply")
            expect(page.locator("#errors")).to_contain_text("strategy.weights.lightgbm: 'lots' is not a number")
            assert ctx.control.weights == {"lightgbm": 1.0}

            weight.fill("0.5")
            page.click("#weights-apply")
            expect(page.locator("#weights-outcome")).to_contain_text("applied from the next signal")
            expect(page.locator("#errors")).to_be_hidden()
            assert ctx.control.weights == {"lightgbm": 0.5}

            expect(page.locator("#ensembles td:nth-child(2)")).to_have_text(["challenger", "challenger"])
            page.click('#ensembles button.pin[data-fold="0"]')
            expect(page.locator("#registry-outcome")).to_contain_text("champion fold 0; the node loads it at the "
                                                                      "next pre-open")
            expect(page.locator('#ensembles tr:last-child td:nth-child(2)')).to_have_text("champion")
            page.click("#retrain")
            expect(page.locator("#retrain-state")).to_have_text("done: wait; champion fold 0")
            expect(page.locator("#retrain-progress")).to_have_attribute("value", "1")
            expect(page.locator("#journaled td:nth-child(3)")).to_have_text(["wait; champion fold 0"])
            page.screenshot(path=str(tmp_path / "models.png"), full_page=True)

            page.goto(f"{panel.base_url}/data")
            expect(page.locator("#coverage-error")).to_contain_text("does not exist")
            page.click("#ingest")
            expect(page.locator("#ingest-state")).to_contain_text("done: 4 symbol-sessions fetched", timeout=60_000)
            expect(page.locator("#ingest-progress")).to_have_attribute("value", str(2 * len(SYMBOLS)))
            expect(page.locator("#coverage tr")).to_have_count(len(SYMBOLS))
            expect(page.locator('#coverage tr[data-symbol="S000"] td:nth-child(6)')).to_have_text("2 / 2")
            page.screenshot(path=str(tmp_path / "data.png"), full_page=True)
            page.goto("about:blank")  # the page's event stream ends before the server does
    print(f"screenshots: {tmp_path / 'models.png'} {tmp_path / 'data.png'}")

    result = CliRunner().invoke(app, ["models", "pin", "lightgbm", "1", "--registry", str(by_cli)])
    assert result.exit_code == 0, result.output
    assert without_times(registry / "promotion.json") == without_times(by_cli / "promotion.json")
    assert PromotionStore(registry).champion().fold == 0
    decisions = panel_decisions(dsn)
    assert [(subject, details["outcome"].split(":")[0]) for subject, details in decisions] == [
        ("set weights", "refused"), ("set weights", "refused"), ("set weights", "done"),
        ("pin", "pin fold 0 (lightgbm v0001)"), ("retrain", "started"), ("ingest", "started")]
    assert decisions[2][1]["weights"] == {"lightgbm": "0.5"} and "champion fold 0" in decisions[3][1]["outcome"]


@pytest.mark.slow
def test_during_a_rehearsal_a_weight_edit_reaches_the_strategy_and_scores_and_feed_update_live(
        market, registry: Path, dsn: str, tmp_path: Path):  # noqa: F811
    """The rehearsal runs on the main thread (the node's signal handlers need it), the
    browser beside it."""
    source, _ = market
    failures: list[BaseException] = []
    with open_journal(JournalSettings(sinks=("postgres",)), dsn=dsn) as journal:
        config = live_config(registry)
        ctx = panel_context(config, journal, Path(source))
        with PanelServer(ctx, port=0) as panel:
            def watch() -> None:
                try:
                    with chromium() as browser:  # closed (its event streams end) before the server stops
                        watch_the_day(browser.new_page(viewport={"width": 1300, "height": 1000}), panel, ctx,
                                      tmp_path)
                except BaseException as e:  # noqa: BLE001 - handed to the test's thread
                    failures.append(e)

            watcher = threading.Thread(target=watch, name="browser")
            watcher.start()
            rehearse(config, source, DAY, control=ctx.control, minute_secs=0.1, until="12:00",
                     out_dir=tmp_path / "rehearsal", also=[PanelSink(ctx.row_listeners)])
            watcher.join(120)
    print(f"screenshots: {tmp_path / 'models-rehearsal.png'} {tmp_path / 'data-rehearsal.png'}")
    assert not watcher.is_alive() and not failures, failures
    assert [d["weights"] for s, d in panel_decisions(dsn) if s == "set weights"] == [{"lightgbm": "0.25"}]


def watch_the_day(page: Page, panel: PanelServer, ctx: PanelContext, tmp_path: Path) -> None:
    page.goto(panel.url)
    page.goto(f"{panel.base_url}/models")
    wait_for(lambda: ctx.control.status()["node"] == "running")
    page.locator('input[name="strategy.weights.lightgbm"]').fill("0.25")
    page.click("#weights-apply")
    expect(page.locator("#weights-outcome")).to_contain_text("applied from the next signal")
    assert ctx.control.status()["weights"] == {"lightgbm": 0.25}  # read from the strategy on the node

    expect(page.locator("#scores tr")).to_have_count(1, timeout=60_000)  # over SSE, once labels are known
    expect(page.locator("#scores tr td:first-child")).to_have_text("lightgbm")
    assert int(page.locator("#scores tr td:nth-child(2)").inner_text()) > 0
    page.screenshot(path=str(tmp_path / "models-rehearsal.png"), full_page=True)

    page.goto(f"{panel.base_url}/data")
    expect(page.locator("#feed-status")).to_have_text("connected", timeout=20_000)
    expect(page.locator("#broker-status")).to_have_text("connected")
    expect(page.locator("#gaps tr")).to_have_count(len(SYMBOLS))
    expect(page.locator("#feed-rate")).not_to_have_text("-")
    expect(page.locator('#coverage tr[data-symbol="S000"]')).to_have_count(1)
    page.screenshot(path=str(tmp_path / "data-rehearsal.png"), full_page=True)


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
