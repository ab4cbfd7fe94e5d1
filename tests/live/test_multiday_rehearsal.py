"""Multi-day rehearsal parity: `sextant run --rehearse` over 2024-12-23..26 (the 24th a half
day, the 25th a holiday) with a retrain every night gives, day by day, the signals and the
order intents of a walk-forward backtest with a one-session test step over the same days.

How the two line up (which models trade day d):
- Rehearsal: the champion pinned at d's pre-open. The first day's is the registry's (a
  walk-forward of the data through 12-23, its one fold trained on the 6 sessions through
  12-20); each post-close trains the registry's next fold on the 6 sessions through that day
  and, with ``promotion.policy: always``, pins it for the next morning.
- Walk-forward: ``test_days: 1``, folds = the 3 days, the same ``train_days`` (6), so fold k
  tests the k-th day and trains on the 6 sessions through the session before it: the same
  rows, the same seed (``seed + fold``: the nightly's fold index is the registry's next, 1
  then 2) and so the same models as the rehearsal's champion that day. ``embargo_days`` is 0
  in both: the nightly trains on every session through the night before (a live model has no
  test window to keep an embargo from), while a walk-forward fold with an embargo of e would
  train e sessions earlier than the night before its test day.
- Capital: each walk-forward window starts from the configured cash, the rehearsed account
  carries its P&L from day to day; sizing follows equity, so each day's backtest window is
  given the cash the rehearsed account held that morning (flat overnight: cash is equity).
  Costs are off, as in ``test_parity``, whose notes on fills and order ids apply here too.
"""

import dataclasses
import datetime as dt
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from adapters.polygon.sandbox import PolygonSandbox
from backtests.config import load_config, parse_config
from backtests.trade import window_spec
from backtests.train import train
from backtests.window import run_windows
from catalog.store import MarketCatalog, open_catalog
from catalog.synthetic import generate_market
from live.journal import open_journal
from live.live_phases import LiveDayPhases
from live.rehearsal_phases import RehearsalDayPhases
from live.schedule import Phase, ScheduleSection, day_plan
from live.scheduler import SimulatedClock
from live.settings import LiveConfigError, PolygonSection, load_live_config
from models.promotion import PromotionStore, find_ensembles
from models.registry import ModelRegistry
from sextant.cli import app
from sextant.commands.run import retrain_hook
from strategies.risk import RiskRules
from tests.live.conftest import live_config
from tests.live.journal_support import dsn, server  # noqa: F401 - fixtures

SYMBOLS = ["S000", "S001", "S002", "S003"]
DAYS = ["2024-12-23", "2024-12-24", "2024-12-26"]  # 12-25 is a holiday
NY = "America/New_York"
STARTING_CASH = 100_000.0
INTENT = ["instrument_id", "side", "quantity", "type", "price", "trigger_price", "time_in_force", "tags"]
RISK = {"stop_volatility_multiple": 4.0}
FLATTEN_MINUTES = RiskRules().flatten_minutes_before_close  # where the close phase stops the node
STRATEGY = {"entry_threshold": 0.6, "weights": {"lightgbm": 1.0}, "risk": RISK}
WALK_FORWARD = {
    "name": "multiday",
    "walk_forward": {"folds": len(DAYS), "train_days": 6, "test_days": 1, "embargo_days": 0},
    "models": {"lightgbm": {"params": {"n_estimators": 30}}},
    "strategy": STRATEGY,
    "horizons": {"bars": [1, 5, 30], "trade": 30},
    "venue": {"starting_cash": STARTING_CASH, "commission_per_share": 0.0, "min_commission": 0.0,
              "slippage_probability": 0.0},
    "promotion": {"policy": "always"},
    "workers": 2,
}


def write_market(full: Path, head: Path) -> None:
    """One draw of 9 sessions ending 12-26 (12-13 .. 12-26), in full and cut after 12-23: the
    data a walk-forward run on the evening of 12-23 had."""
    market = generate_market(n_symbols=len(SYMBOLS), n_days=9, seed=21, signal_strength=0.3, end=dt.date(2024, 12, 26))
    cut = pd.Timestamp("2024-12-24", tz=NY)
    for symbol, frame in market.bars.items():
        MarketCatalog(full).write_bars(symbol, frame, sector=market.sectors[symbol])
        MarketCatalog(head).write_bars(symbol, frame[frame.index < cut], sector=market.sectors[symbol])


@pytest.fixture(scope="module")
def rehearsed(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("multiday")
    catalog, head = root / "catalog", root / "catalog-to-12-23"
    write_market(catalog, head)
    config = {**WALK_FORWARD, "catalog": {"path": str(catalog)}}
    # The registry the rehearsal starts from: its one fold trains through 12-20, tests 12-23.
    seed_run = train(parse_config({**config, "catalog": {"path": str(head)},
                                   "walk_forward": {**config["walk_forward"], "folds": 1}}),
                     open_catalog(head), SYMBOLS, root / "seed").run
    (root / "walkforward.yaml").write_text(yaml.safe_dump(config))
    live = root / "live.yaml"
    live.write_text(yaml.safe_dump({
        "name": "multiday", "universe": SYMBOLS, "strategy": STRATEGY, "journal": {"sinks": ["parquet"]},
        "models": {"registry": str(seed_run.run_dir / "models"), "retrain": "walkforward.yaml"},
    }))
    out = root / "runs"
    result = CliRunner().invoke(app, ["run", str(live), "--rehearse", "--catalog", str(catalog),
                                      "--from", DAYS[0], "--to", DAYS[-1], "--out", str(out)])
    assert result.exit_code == 0, result.output
    run_dir = out / f"rehearsal-multiday-{DAYS[0]}-{DAYS[-1]}"
    ledger = [json.loads(line) for line in (run_dir / "phases.jsonl").read_text().splitlines()]
    pnl = [e["pnl"] for e in ledger if e["phase"] == "close"]
    morning_cash = [STARTING_CASH + sum(pnl[:k]) for k in range(len(DAYS))]

    backtest = train(parse_config(config), open_catalog(catalog), SYMBOLS, root / "walkforward").run
    specs = [dataclasses.replace(spec, venue=dataclasses.replace(spec.venue, starting_cash=round(cash, 2)))
             for spec, cash in zip((window_spec(backtest, fold, backtest.config.strategy, root / "walkforward")
                                    for fold in backtest.folds), morning_cash, strict=True)]
    windows = run_windows(specs, workers=2)
    return {"output": " ".join(result.output.split()), "ledger": ledger, "run_dir": run_dir,
            "seed_registry": ModelRegistry(seed_run.run_dir / "models"),
            "predictions": pd.read_parquet(backtest.run_dir / "predictions.parquet"),
            "orders": [pd.read_parquet(w.orders_path) for w in windows], "backtest": backtest}


def journal(rehearsed: dict, day: str, table: str) -> pd.DataFrame:
    return pd.read_parquet(rehearsed["run_dir"] / f"rehearsal-multiday-{day}" / f"{table}.parquet")


@pytest.mark.slow
def test_the_walk_forward_folds_are_the_rehearsed_days(rehearsed):
    folds = rehearsed["backtest"].folds
    assert [pd.Timestamp(f.test_start_ns, tz="UTC").tz_convert(NY).date().isoformat() for f in folds] == DAYS
    assert [pd.Timestamp(f.train_end_ns - 1, tz="UTC").tz_convert(NY).date().isoformat() for f in folds] == [
        "2024-12-20", "2024-12-23", "2024-12-24"]  # the night before each day


@pytest.mark.slow
def test_each_night_promotes_its_challenger_and_the_next_morning_loads_it(rehearsed):
    ledger = rehearsed["ledger"]
    assert [(e["day"], e["phase"], e["outcome"]) for e in ledger] == [
        (day, phase, "done") for day in DAYS for phase in ("pre-open", "session", "close", "post-close")]
    nights = [e for e in ledger if e["phase"] == "post-close"]
    assert [(n["action"], n["as_of"], n["trained"]["fold"], n["champion"]["fold"]) for n in nights] == [
        ("promote", day, fold, fold) for day, fold in zip(DAYS, (1, 2, 3), strict=True)]
    loaded = [Path(e["models"]["lightgbm"]) for e in ledger if e["phase"] == "pre-open"]
    assert [p.name for p in loaded] == ["v0001", "v0002", "v0003"]  # fold 0, then each night's
    # The nights trained into the rehearsal's copy of the registry: what live pins is untouched.
    assert {p.parents[1] for p in loaded} == {rehearsed["run_dir"] / "models"}
    seed = rehearsed["seed_registry"]
    assert [e.fold for e in find_ensembles(seed)] == [0] and PromotionStore(seed.root).champion().fold == 0
    assert "warning:" not in rehearsed["output"]  # the first champion never saw the rehearsed days
    assert "2024-12-25: no session (holiday)" in rehearsed["output"]
    assert "2024-12-24 13:15 post-close: done promote fold 2; champion fold 2" in rehearsed["output"]
    assert [e["minutes"] for e in ledger if e["phase"] == "session"] == [385, 205, 385]  # the 24th closes at 13:00


@pytest.mark.slow
@pytest.mark.parametrize("day", DAYS)
def test_same_signals_each_day(rehearsed, day):
    """Through the minute the strategy flattens: there the close phase stops the rehearsed node,
    while the backtest replays the session's last minutes (no entries, nothing to trade)."""
    flatten = day_plan(dt.date.fromisoformat(day), ScheduleSection(), FLATTEN_MINUTES).slot(Phase.SESSION).end
    batch = rehearsed["predictions"]
    batch = batch[(pd.to_datetime(batch["ts"], utc=True).dt.tz_convert(NY).dt.strftime("%Y-%m-%d") == day)
                  & (batch["ts"] <= flatten.value)]
    batch_probs = {(int(r.ts), f"{r.symbol}.ALPACA"): r.lightgbm for r in batch.itertuples()}
    live = journal(rehearsed, day, "signals")
    live_probs = {(int(r.ts_event), r.instrument_id): r.probabilities[0] for r in live.itertuples()}
    assert len(batch_probs) > 500
    assert set(live_probs) == set(batch_probs)
    assert max(abs(live_probs[k] - batch_probs[k]) for k in batch_probs) < 1e-9


@pytest.mark.slow
@pytest.mark.parametrize("day", DAYS)
def test_same_order_intents_in_the_same_order_each_day(rehearsed, day):
    """In creation order: the counter ending each client order id (the journal's orders table
    holds them as they were submitted, and the close's flatten submits its market orders in
    whatever order the execution client takes them)."""
    def rows(frame: pd.DataFrame) -> list[tuple]:
        created = frame.assign(counter=frame["client_order_id"].str.rsplit("-", n=1).str[-1].astype(int))
        return [tuple("" if pd.isna(v) else str(v) for v in row)
                for row in created.sort_values("counter", kind="stable")[INTENT].itertuples(index=False)]

    backtest = rehearsed["orders"][DAYS.index(day)]
    assert len(backtest) > 0
    assert rows(journal(rehearsed, day, "orders")) == rows(backtest)


# -- fast: the config key and the retrain hook's wiring ---------------------------------------

NIGHT = dt.date(2024, 12, 27)  # sessions of the `market` catalog: 12-20, 23, 24, 26, 27, 30, 31


def retrain_file(path: Path, **fields) -> Path:
    """A small walk-forward config: LightGBM with few trees on 3 sessions, a daily refit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({
        "walk_forward": {"folds": 1, "train_days": 3, "test_days": 1, "embargo_days": 0},
        "models": {"lightgbm": {"params": {"n_estimators": 10}}}, "promotion": {"policy": "always"}, **fields}))
    return path


def live_file(path: Path, models: Path, retrain: str, **fields) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"universe": ["S000", "S001"], "strategy": {"weights": {"lightgbm": 1.0}},
                                    "models": {"registry": str(models), "retrain": retrain}, **fields}))
    return path


def copied_registry(models: Path, tmp_path: Path) -> Path:
    registry = tmp_path / "models"
    shutil.copytree(models, registry)
    return registry


def test_models_retrain_is_a_path_relative_to_the_live_config(market, tmp_path: Path, monkeypatch):
    _, models = market
    configs = tmp_path / "configs"
    retrain = retrain_file(configs / "nightly" / "wf.yaml")
    live = live_file(configs / "paper.yaml", models, "nightly/wf.yaml")
    monkeypatch.chdir(tmp_path / "..")  # the process's directory plays no part
    assert Path(load_live_config(live).models.retrain) == retrain
    assert load_live_config(live_file(configs / "none.yaml", models, None)).models.retrain is None


def test_a_missing_retrain_config_names_the_key(market, tmp_path: Path):
    _, models = market
    with pytest.raises(LiveConfigError, match=r"'models.retrain': .*wf.yaml is not a file .*relative to this file"):
        load_live_config(live_file(tmp_path / "paper.yaml", models, "wf.yaml"))


def run_cli(*args: str, env: dict | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["run", *args], env=env)
    assert "Traceback" not in result.output
    return result.exit_code, " ".join(result.output.split())


REHEARSE = ("--rehearse", "--from", "2024-12-26", "--to", "2024-12-27")


@pytest.mark.parametrize(("retrain", "message"), [
    ({"walk_forward": {"trian_days": 3}}, "'models.retrain': "),
    ({"models": {"xgboost": {}}}, "not ['lightgbm'], which 'strategy.weights' trades"),
])
def test_a_bad_retrain_config_stops_the_run_before_any_day(market, tmp_path: Path, retrain, message):
    catalog, models = market
    retrain_file(tmp_path / "wf.yaml", **retrain)
    code, text = run_cli(str(live_file(tmp_path / "paper.yaml", models, "wf.yaml")), *REHEARSE,
                         "--catalog", str(catalog), "--out", str(tmp_path / "runs"))
    assert code == 2 and message in text, text
    assert not (tmp_path / "runs").exists()


def test_the_unknown_retrain_key_is_named(market, tmp_path: Path):
    catalog, models = market
    retrain_file(tmp_path / "wf.yaml", walk_forward={"trian_days": 3})
    _, text = run_cli(str(live_file(tmp_path / "paper.yaml", models, "wf.yaml")), *REHEARSE, "--catalog", str(catalog))
    assert "wf.yaml" in text and "walk_forward.trian_days" in text, text


def test_a_live_retrain_needs_the_schedule_catalog(market, tmp_path: Path):
    _, models = market
    retrain_file(tmp_path / "wf.yaml")
    code, text = run_cli(str(live_file(tmp_path / "paper.yaml", models, "wf.yaml")), "--out", str(tmp_path / "runs"),
                         env={"ALPACA_API_KEY_ID": "PKTEST", "ALPACA_API_SECRET_KEY": "s", "POLYGON_API_KEY": "p"})
    assert code == 2 and "'models.retrain' retrains on 'schedule.catalog'" in text, text


def test_the_post_close_retrains_journals_the_decision_and_pins_it_for_the_next_morning(
        market, tmp_path: Path, dsn):  # noqa: F811
    """The hook `sextant run` builds (backtests.nightly on the live registry and the day's
    catalog) run by a rehearsal's post-close: promoted (policy always), journaled with its
    record, and the champion the next pre-open loads. The same night again trains no twin;
    a night without enough sessions fails without touching the champion."""
    catalog, models = market
    registry = copied_registry(models, tmp_path)
    retrain = retrain_file(tmp_path / "wf.yaml")
    live = load_live_config(live_file(tmp_path / "paper.yaml", registry, "wf.yaml",
                                      journal={"sinks": ["postgres"], "dsn": dsn,
                                               "spool_dir": str(tmp_path / "spool")}))
    before = live.model_dirs()["lightgbm"]
    hook = retrain_hook(live, load_config(retrain), catalog, tmp_path / "work")
    plan = day_plan(NIGHT, live.schedule, live.strategy.risk.flatten_minutes_before_close)
    with RehearsalDayPhases(live, catalog, tmp_path / "out", retrain=hook) as phases:
        night = phases.post_close(plan)
        again = phases.post_close(plan)
        early = phases.post_close(day_plan(dt.date(2024, 12, 23), live.schedule, 5))
    assert (night["action"], night["trained"]["fold"], night["champion"]["fold"]) == ("promote", 1, 1)
    assert night["trained"]["train_end"] == pd.Timestamp("2024-12-28", tz=NY).tz_convert("UTC").isoformat()
    assert live.model_dirs()["lightgbm"] == registry / "lightgbm" / "v0002" != before
    assert again["action"] == "wait" and "is the champion already" in again["reason"]
    assert early["action"] == "failed" and "train_days" in early["reason"]
    assert len(find_ensembles(ModelRegistry(registry))) == 2  # no twin, nothing from the failed night
    with open_journal(live.journal) as journal:
        decisions = journal.read_day(NIGHT).decisions
    assert [(d["kind"], d["subject"]) for d in decisions] == [("promotion", "promote fold 1; champion fold 1"),
                                                             ("promotion", "wait fold 1; champion fold 1")]
    assert decisions[0]["details"] == {k: v for k, v in night.items() if k != "journal_decision"}


def test_the_live_post_close_ingests_the_day_before_it_retrains(market, tmp_path: Path, monkeypatch):
    """Pre-open brought the schedule's catalog to the day before; the retrain must see the day."""
    source, models = market
    dest = tmp_path / "catalog"
    seen = []

    def retrain(plan) -> dict:
        last = MarketCatalog(dest).read_bars("S000").index[-1].tz_convert(NY).date()
        seen.append(last)
        return {"action": "wait", "reason": "test"}

    monkeypatch.setenv("POLYGON_API_KEY", "key")
    with PolygonSandbox(source, api_key="key") as polygon:
        config = live_config(models, polygon=PolygonSection(base_url=polygon.base_url),
                             schedule=ScheduleSection(catalog=str(dest)))
        with LiveDayPhases(config, tmp_path / "runs", SimulatedClock(pd.Timestamp(NIGHT, tz=NY)),
                           retrain=retrain) as phases:
            record = phases.post_close(day_plan(NIGHT, config.schedule, 5))
    assert seen == [NIGHT]
    assert record == {"ingested_sessions": {"S000": 1, "S001": 1}, "ingest_failures": [], "action": "wait",
                      "reason": "test"}


def test_without_a_retrain_the_post_close_says_so(market, tmp_path: Path):
    catalog, models = market
    with RehearsalDayPhases(live_config(models), catalog, tmp_path) as phases:
        assert phases.post_close(day_plan(NIGHT, ScheduleSection(), 5)) == {"retrain": "none configured"}


def test_a_guarded_night_that_cannot_judge_yet_leaves_the_next_morning_on_the_champion(market, tmp_path: Path):
    """The default policy: tonight's challenger has no evaluation window yet, so it waits and
    the next pre-open loads the same champion."""
    catalog, models = market
    registry = copied_registry(models, tmp_path)
    retrain = retrain_file(tmp_path / "wf.yaml", promotion={"policy": "guarded"})
    live = load_live_config(live_file(tmp_path / "paper.yaml", registry, "wf.yaml", journal={"sinks": []}))
    before = live.model_dirs()
    hook = retrain_hook(live, load_config(retrain), catalog, tmp_path / "work")
    with RehearsalDayPhases(live, catalog, tmp_path / "out", retrain=hook) as phases:
        night = phases.post_close(day_plan(NIGHT, live.schedule, 5))
    assert night["action"] == "wait" and night["trained"]["fold"] == 1 and night["champion"]["fold"] == 0
    assert "no evaluation window yet" in night["reason"]
    assert live.model_dirs() == before
