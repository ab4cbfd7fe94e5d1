"""The drift report of a rehearsed day against the backtest of the same bars with the same
models (test_parity's setup, small): a clean day has no unexplained difference; a day whose
feed lost bars explains its differences as "missing bar live"; the PSI flags a feature whose
day was shifted (a planted regime change) and no feature on an ordinary day."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from backtests.config import parse_config
from backtests.walkforward import run_walkforward
from catalog.jobs import generate_catalog
from catalog.store import MarketCatalog
from live.drift import DayRecord, feature_drift
from live.drift_run import DRIFT_FILE, report_rehearsed_day
from live.journal import JournalSettings
from live.rehearsal import rehearse
from live.settings import LiveConfig, ModelsSection
from models.drift import DriftReference
from sextant.cli import app
from sextant.commands.drift import backtest_config, day_backtest_hook
from strategies.risk import RiskRules
from strategies.settings import StrategySettings
from tests.live.journal_support import dsn, server  # noqa: F401 - fixtures
from tests.live.test_journal_cli import run

DAY, EARLIER = "2024-12-31", "2024-12-30"
SYMBOLS = ["S000", "S001", "S002"]
RISK = {"stop_volatility_multiple": 4.0}
CASH = 100_000.0


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path, LiveConfig]:
    work = tmp_path_factory.mktemp("drift")
    catalog = work / "catalog"
    generate_catalog(catalog, n_symbols=len(SYMBOLS), n_days=9, seed=21, signal_strength=0.3)
    config = parse_config({
        "name": "drift",
        "catalog": {"path": str(catalog)},
        "walk_forward": {"folds": 1, "train_days": 5, "test_days": 2, "embargo_days": 1},
        "models": {"lightgbm": {"params": {"n_estimators": 40}}},
        "strategy": {"entry_threshold": 0.6, "weights": {"lightgbm": 1.0}, "risk": RISK},
        "horizons": {"bars": [1, 5, 30], "trade": 30},
        "venue": {"starting_cash": CASH, "commission_per_share": 0.0, "min_commission": 0.0,
                  "slippage_probability": 0.0},
        "workers": 1,
    })
    run = run_walkforward(config, work / "runs", Console(quiet=True))
    live = LiveConfig(
        universe=SYMBOLS, models=ModelsSection(registry=str(run.run_dir / "models")),
        strategy=StrategySettings(entry_threshold=0.6, weights={"lightgbm": 1.0}, risk=RiskRules(**RISK)),
        journal=JournalSettings(sinks=()))
    return work, catalog, live


def config_file(tmp_path: Path, live: LiveConfig) -> Path:
    """The live YAML of ``live``, its journal's files under ``tmp_path`` (never the user's)."""
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump({
        "universe": SYMBOLS, "models": {"registry": live.models.registry},
        "strategy": {"entry_threshold": 0.6, "weights": {"lightgbm": 1.0}, "risk": RISK},
        "journal": {"data_dir": str(tmp_path / "pg"), "spool_dir": str(tmp_path / "spool")}}))
    return path


def hook(work: Path, catalog: Path, live: LiveConfig):
    return day_backtest_hook(live, backtest_config(live, None), catalog, work / "drift")


@pytest.mark.slow
def test_a_rehearsed_day_against_its_backtest_has_no_unexplained_difference(setup):
    work, catalog, live = setup
    result = rehearse(live, catalog, DAY, starting_cash=CASH)
    report = report_rehearsed_day(result, CASH, hook(work, catalog, live), live.journal, work / "clean")
    assert report.counts["live_signals"] == report.counts["backtest_signals"] > 500
    assert report.counts["live_orders"] == report.counts["backtest_orders"] > 0
    assert report.unexplained == [], report.unexplained[:5]
    assert {d.reason for d in report.differences} <= {"fill rule"}
    assert abs(report.live_pnl - report.backtest_pnl) < 0.01 or report.differences
    assert report.features
    assert (work / "clean" / DRIFT_FILE).is_file()


@pytest.mark.slow
def test_bars_the_live_feed_lost_are_the_reason_for_the_differences_they_cause(setup):
    work, catalog, live = setup
    closes = MarketCatalog(catalog).read_bars("S001", start=pd.Timestamp(f"{DAY} 10:00", tz="America/New_York"),
                                             end=pd.Timestamp(f"{DAY} 10:20", tz="America/New_York")).index.asi8
    lost = [("S001", int(ts)) for ts in closes]
    result = rehearse(live, catalog, DAY, starting_cash=CASH, withheld_bars=lost)
    assert not {("S001.ALPACA", ts) for _, ts in lost} & result.bars  # the sandbox withheld them
    report = report_rehearsed_day(result, CASH, hook(work, catalog, live), live.journal, work / "lossy")
    missing = [d for d in report.differences if d.reason == "missing bar live"]
    assert {d.key for d in missing if d.kind == "signal"} >= {f"S001.ALPACA @ {ts}" for _, ts in lost}
    assert all(d.key.startswith("S001.ALPACA") for d in missing if d.kind in ("signal", "order", "fill"))
    assert report.unexplained == [], report.unexplained[:5]


@pytest.mark.slow
def test_psi_flags_a_planted_regime_change_and_not_an_ordinary_day(setup):
    work, catalog, live = setup
    shifted = work / "shifted-catalog"
    store = MarketCatalog(catalog)
    generate_catalog(shifted, n_symbols=len(SYMBOLS), n_days=9, seed=21, signal_strength=0.3)
    copy = MarketCatalog(shifted)
    for symbol in SYMBOLS:  # the last day's minute moves five times as wide, on twenty times the volume
        bars = store.read_bars(symbol)
        day = bars.index.tz_convert("America/New_York").strftime("%Y-%m-%d") == DAY
        close = bars["close"].to_numpy().copy()
        start = np.flatnonzero(day)[0]
        steps = np.diff(np.log(close[start - 1:]))
        close[start:] = close[start - 1] * np.exp(np.cumsum(5 * steps))
        scale = close / bars["close"].to_numpy()
        frame = bars.assign(**{c: bars[c] * scale for c in ("open", "high", "low", "close")})
        frame.loc[day, "volume"] = frame.loc[day, "volume"] * 20
        copy.write_bars(symbol, frame)
    dirs = {name: str(path) for name, path in live.model_dirs().items()}
    reference = DriftReference.load(Path(dirs["lightgbm"]))
    ordinary: DayRecord = hook(work, catalog, live)(pd.Timestamp(EARLIER).date(), dirs, CASH)
    planted: DayRecord = hook(work, shifted, live)(pd.Timestamp(DAY).date(), dirs, CASH)
    calm = {f.feature: f for f in feature_drift(reference, ordinary.features, ordinary.feature_names)}
    moved = {f.feature: f for f in feature_drift(reference, planted.features, planted.feature_names)}
    assert "dow" not in calm  # one day holds one weekday: no drift to read there
    intraday_volatility = ["rv_15", "bb_width", "hl_range"]
    assert [calm[f].level for f in intraday_volatility] == ["stable"] * 3, calm
    assert {moved[f].level for f in ("rv_15", "bb_width", "atr_14", "rv_60")} == {"significant"}, moved
    significant = [len([f for f in d.values() if f.level == "significant"]) for d in (calm, moved)]
    assert significant[1] > 3 * significant[0], significant


@pytest.mark.slow
def test_sextant_live_rehearse_journals_the_drift_report_that_sextant_journal_drift_shows(setup, dsn, tmp_path):  # noqa: F811
    _, catalog, live = setup
    config = config_file(tmp_path, live)
    rehearsed = CliRunner().invoke(app, ["live", str(config), "--rehearse", "--day", DAY, "--catalog", str(catalog),
                                         "--out", str(tmp_path / "runs"), "--journal", "postgres"],
                                   env={"COLUMNS": "200", "SEXTANT_JOURNAL_DSN": dsn})
    said = " ".join(rehearsed.output.split())
    assert rehearsed.exit_code == 0, said
    assert f"drift of {DAY}" in said and "none unexplained" in said
    assert (tmp_path / "runs" / f"rehearsal-paper-{DAY}" / DRIFT_FILE).is_file()
    result, shown = run("journal", "drift", DAY, "--dsn", dsn)
    assert result.exit_code == 0, shown
    assert f"drift of {DAY}" in shown and "none unexplained" in shown and "feature drift" in shown


@pytest.mark.slow
def test_the_rehearsed_schedule_reports_each_day_at_its_close(setup, dsn, tmp_path):  # noqa: F811
    """`sextant run --rehearse` stops the node at the flatten minute: the day is compared over
    the minutes it traded, and the close's ledger entry carries the report's summary."""
    _, catalog, live = setup
    config = config_file(tmp_path, live)
    out = tmp_path / "runs"
    result = CliRunner().invoke(app, ["run", str(config), "--rehearse", "--catalog", str(catalog), "--from", DAY,
                                      "--to", DAY, "--out", str(out)], env={"COLUMNS": "200", "SEXTANT_JOURNAL_DSN": dsn})
    said = " ".join(result.output.split())
    assert result.exit_code == 0, said
    assert "none unexplained" in said and f"sextant journal drift {DAY}" in said
    ledger = [json.loads(line) for line in (out / f"rehearsal-paper-{DAY}-{DAY}" / "phases.jsonl").read_text().splitlines()]
    (close,) = [e for e in ledger if e["phase"] == "close"]
    assert close["drift"]["unexplained"] == 0
    result, shown = run("journal", "drift", DAY, "--dsn", dsn)
    assert result.exit_code == 0 and "none unexplained" in shown, shown
