"""The report of a real tiny walk-forward run carries every section, offline, with numbers that
agree with the run's own files: buy-and-hold of its universe and of the index proxy the
catalog holds, and every closed trade cut by its exit reason."""

import io
import re

import pandas as pd
import pytest
import yaml
from rich.console import Console

from backtests import tearsheet
from backtests.config import load_config
from backtests.report import SECTIONS, UNIVERSE, ReportInputs, gather_inputs, write_report
from backtests.walkforward import run_walkforward
from catalog.jobs import generate_catalog
from catalog.sessions import trading_sessions

UNIVERSE_SYMBOLS = ["S000", "S001", "S002"]
HEADINGS = ("Sextant walk-forward report", "Equity and drawdown", "Strategy vs buy-and-hold", "Monthly returns",
            "Rolling Sharpe and volatility", "Return distributions", "Trades", "by exit reason", "Models per fold",
            "Out-of-sample AUC per model", "Feature importance", "Folds", "Run")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("report")
    catalog = generate_catalog(work / "catalog", n_symbols=3, n_days=12, seed=11, signal_strength=0.3)
    catalog.write_bars("SPY", catalog.read_bars("S000") * 4.0)  # an index proxy beside the universe
    config = {
        "name": "tiny", "catalog": {"path": str(work / "catalog")}, "universe": UNIVERSE_SYMBOLS,
        "walk_forward": {"folds": 3, "train_days": 4, "test_days": 2, "embargo_days": 1},
        "models": {"lightgbm": {"params": {"n_estimators": 30}},
                   "lightgbm@small": {"params": {"n_estimators": 10, "num_leaves": 7}}},
        "strategy": {"entry_threshold": 0.55}, "workers": 1,
    }
    (work / "wf.yaml").write_text(yaml.safe_dump(config))
    result = run_walkforward(load_config(work / "wf.yaml"), work / "runs", Console(file=io.StringIO()),
                             generate_missing_catalog=False)
    return result, catalog


@pytest.mark.slow
def test_the_report_holds_every_section_once_with_plotly_embedded_once(tiny_run):
    result, _ = tiny_run
    page = (result.run_dir / "report.html").read_text()
    for heading in HEADINGS:
        assert heading in page, heading
    assert page.count("plotly.js v") == 1 and page.count("Plotly.newPlot") >= 7
    assert re.search(r"<script[^>]*\bsrc\s*=", page, re.IGNORECASE) is None  # offline
    assert "buy &amp; hold: SPY (index proxy)" in page and "buy &amp; hold: universe, equal weight" in page
    for name in ("lightgbm@small", "ensemble"):  # the per-model comparison names every model row
        assert f"<td>{name}</td>" in page


@pytest.mark.slow
def test_the_reports_numbers_agree_with_the_runs_files(tiny_run):
    result, catalog = tiny_run
    metrics = result.metrics
    run_dir = result.run_dir
    inputs = gather_inputs(run_dir, metrics, pd.Series(dtype=float), pd.Series(dtype=float), {}, catalog)
    assert set(inputs.benchmarks) == {UNIVERSE, "buy & hold: SPY (index proxy)"}
    folds = metrics["folds"]
    # Universe buy-and-hold by hand: per fold, mean over symbols of last close / first open.
    level = 1.0
    for fold in folds:
        start, end = pd.Timestamp(fold["test_start"]), pd.Timestamp(fold["test_end"])
        ratios = []
        for symbol in UNIVERSE_SYMBOLS:
            bars = catalog.read_bars(symbol)
            day = pd.DatetimeIndex(bars.index.tz_convert("America/New_York").date)
            inside = bars[(day >= start) & (day <= end)]
            ratios.append(inside["close"].iloc[-1] / inside["open"].iloc[0])
        level *= sum(ratios) / len(ratios)
    assert (1.0 + inputs.benchmarks[UNIVERSE]).prod() == pytest.approx(level)
    # The proxy is S000 scaled: the same returns as S000 held alone.
    windows = [pd.DatetimeIndex(trading_sessions(f["test_start"], f["test_end"]).index) for f in folds]
    s000 = tearsheet.buy_and_hold_returns({"S000": tearsheet.session_prices(catalog.read_bars("S000"))}, windows)
    assert inputs.benchmarks["buy & hold: SPY (index proxy)"].to_numpy() == pytest.approx(s000.to_numpy())
    # Every closed trade is cut, by a known exit reason: the strategy tags every closing order.
    trades = inputs.trades
    assert len(trades) == metrics["trading"]["trades"] > 0
    assert set(trades["exit_reason"]) <= {"stop", "target", "flatten", "halt"}
    assert "flatten" in set(trades["exit_reason"])  # flat before every close
    assert trades["pnl"].sum() == pytest.approx(sum(
        float(p.split(" ")[0]) for p in pd.read_parquet(run_dir / "positions.parquet").dropna(
            subset=["ts_closed"])["realized_pnl"]))


def test_a_section_is_one_function_and_one_line_in_the_list(tmp_path):
    def shap_section(inputs) -> str:
        return f"<h2>SHAP for {inputs.metrics['run']['name']}</h2>"

    inputs = _empty_inputs(tmp_path)
    write_report(tmp_path / "report.html", inputs, sections=[*SECTIONS[:1], shap_section])
    page = (tmp_path / "report.html").read_text()
    assert "<h2>SHAP for empty</h2>" in page and page.index("walk-forward report") < page.index("SHAP")


def _empty_inputs(tmp_path):
    trading = {"total_return": 0.0, "cagr": 0.0, "sharpe": 0.0, "sortino": 0.0, "max_drawdown": 0.0,
               "win_rate": 0.0, "profit_factor": 0.0, "avg_return_per_trade": 0.0, "trades": 0, "exposure": 0.0}
    return ReportInputs(run_dir=tmp_path, metrics={"run": {"name": "empty", "data_note": ""}, "trading": trading,
                                                   "models": {}, "folds": []},
                        equity=pd.Series(dtype=float), daily_returns=pd.Series(dtype=float), importance={},
                        benchmarks={}, trades=tearsheet.trade_table(pd.DataFrame(), pd.DataFrame()))
