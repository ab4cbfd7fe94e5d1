"""The `sextant` command line, end to end.

The happy path runs the installed console script in real processes (exit codes and output as a
user sees them): generate a catalog, back-test it into --out, back-test again into the same
--out with a config whose own catalog does not exist yet (so it is generated from the config;
a --catalog typed on the command line must exist). Bad inputs
go through typer's CliRunner: each must fail with exit code 2 and one clear line naming the
cause, never a traceback.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from catalog.jobs import generate_catalog
from catalog.store import MarketCatalog
from sextant.cli import app
from tests.catalog.test_store import DAMAGE, damage

SEXTANT = Path(sys.executable).parent / "sextant"
TINY = {
    "name": "tiny",
    "catalog": {"path": "set-per-test", "generate": {"symbols": 2, "days": 8, "seed": 9, "signal_strength": 0.2}},
    "walk_forward": {"folds": 2, "train_days": 3, "test_days": 2, "embargo_days": 1},
    "models": {"lightgbm": {"params": {"n_estimators": 20}}, "xgboost": {"params": {"n_estimators": 20}}},
    "workers": 2,
}


def squash(text: str) -> str:
    """Rich wraps long lines at the console width; compare text with all whitespace removed."""
    return "".join(text.split())


def write_config(path: Path, **changes) -> Path:
    config = json.loads(json.dumps(TINY))
    for dotted, value in changes.items():
        node = config
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(config))
    return path


def sextant(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([str(SEXTANT), *args], check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def run_dirs(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir() and not p.is_symlink()) if out.exists() else []


# -- happy path, real processes ----------------------------------------------------------------


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("cli")
    generated = sextant("catalog", "generate", "--catalog", "given", "--symbols", "3", "--days", "8",
                        "--seed", "5", "--signal-strength", "0.2", cwd=work)
    # The config's own catalog path does not exist: --catalog must win over it.
    write_config(work / "tiny.yaml", catalog__path="from-config")
    first = sextant("backtest", "tiny.yaml", "--catalog", "given", "--out", "out", cwd=work)
    # The config's own catalog, when it does not exist yet, is generated from `catalog.generate`.
    fresh = write_config(work / "fresh.yaml", catalog__path="fresh")
    second = sextant("backtest", str(fresh), "--out", "out", cwd=work)
    return work, generated, first, second


@pytest.mark.slow
def test_generate_then_backtest_writes_its_own_run_dir(two_runs):
    work, generated, first, _ = two_runs
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "wrote 3 symbols x 8 sessions to given" in generated.stdout
    assert MarketCatalog(work / "given").symbols() == ["S000", "S001", "S002"]
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Traceback" not in first.stdout + first.stderr
    assert not (work / "from-config").exists()  # --catalog overrode the config; nothing generated
    run_dir = run_dirs(work / "out")[0]
    assert run_dir.name.startswith("tiny-")
    assert squash(f"report: out/{run_dir.name}/report.html") in squash(first.stdout)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["run"]["catalog"] == "given"
    assert metrics["run"]["symbols"] == ["S000", "S001", "S002"]
    assert metrics["run"]["folds"] == 2
    for name in ("report.html", "fills.parquet", "positions.parquet", "predictions.parquet"):
        assert (run_dir / name).is_file(), name
    for model in ("lightgbm", "xgboost"):
        meta = json.loads((run_dir / "models" / model / "v0001" / "meta.json").read_text())
        assert meta["universe"] == ["S000", "S001", "S002"]  # what a live config trades by default
    # The summary line prints what metrics.json holds.
    assert f"trades {metrics['trading']['trades']}" in first.stdout


@pytest.mark.slow
def test_second_run_gets_a_second_dir_and_a_missing_catalog_is_generated(two_runs):
    work, _, _, second = two_runs
    assert second.returncode == 0, second.stdout + second.stderr
    assert squash("catalog fresh not found: generating 2 synthetic symbols x 8 sessions") in squash(second.stdout)
    dirs = run_dirs(work / "out")
    assert len(dirs) == 2 and all((d / "metrics.json").is_file() for d in dirs)
    assert (work / "out" / "latest").resolve() == dirs[-1].resolve()  # for live configs: runs/latest/models
    metrics = [json.loads((d / "metrics.json").read_text()) for d in dirs]
    assert {m["run"]["catalog"] for m in metrics} == {"given", "fresh"}
    fresh = MarketCatalog(work / "fresh")
    assert fresh.symbols() == ["S000", "S001"]
    assert fresh.synthetic_origin() == {"generator": "catalog.synthetic.generate_market", "symbols": 2,
                                        "days": 8, "seed": 9, "signal_strength": 0.2,
                                        "generated_symbols": ["S000", "S001"]}
    assert next(m for m in metrics if m["run"]["catalog"] == "fresh")["run"]["symbols"] == ["S000", "S001"]


@pytest.mark.slow  # a fresh interpreter importing NautilusTrader: ~4-5 s
def test_error_in_a_real_process_is_one_line_and_exit_code_2(tmp_path):
    (tmp_path / "bad.yaml").write_text("name: x\nwalk_forward:\n  folds: 2\n   test_days: 3\n")
    result = sextant("backtest", "bad.yaml", "--out", "out", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert "error: bad.yaml: malformed YAML at line 4" in result.stdout
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_params_overlay_is_what_the_backtest_trades(tmp_path, small_catalog):
    """The same config and catalog with and without a best.yaml: the overlay's weights are
    the strategy's, and a threshold no ensemble probability reaches trades nothing."""
    config = write_config(tmp_path / "c.yaml", strategy={"entry_threshold": 0.6})
    best = tmp_path / "best.yaml"
    best.write_text("strategy:\n  weights: {lightgbm: 0.8, xgboost: 0.2}\n  entry_threshold: 0.99\n")
    plain = runner.invoke(app, ["backtest", str(config), "--catalog", str(small_catalog), "--out", str(tmp_path / "a")])
    tuned = runner.invoke(app, ["backtest", str(config), "--catalog", str(small_catalog), "--out", str(tmp_path / "b"),
                                "--params", str(best)])
    assert plain.exit_code == 0 and tuned.exit_code == 0, plain.output + tuned.output
    plain_run, tuned_run = (run_dirs(tmp_path / d)[0] for d in ("a", "b"))
    plain_metrics, tuned_metrics = (json.loads((d / "metrics.json").read_text()) for d in (plain_run, tuned_run))
    assert plain_metrics["trading"]["trades"] > 0
    ensemble = pd.read_parquet(tuned_run / "predictions.parquet")["ensemble"]
    assert 0.01 < ensemble.min() and ensemble.max() < 0.99
    assert tuned_metrics["trading"]["trades"] == 0 and "trades 0" in tuned.output
    strategy = tuned_metrics["run"]["config"]["strategy"]
    assert strategy["weights"] == {"lightgbm": 0.8, "xgboost": 0.2} and strategy["entry_threshold"] == 0.99
    assert strategy["risk"] == plain_metrics["run"]["config"]["strategy"]["risk"]


# -- bad inputs, in process ----------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture(scope="module")
def small_catalog(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("small") / "cat"
    generate_catalog(path, n_symbols=2, n_days=8, seed=3, signal_strength=0.2)
    return path


def assert_clean_failure(result, *causes: str) -> None:
    """Exit code 2 from the CLI's own error path (typer.Exit), no traceback, cause named."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.output.count("error:") == 1, result.output
    message = squash(result.output[result.output.index("error:"):])  # after any progress bar
    for cause in causes:
        assert squash(cause) in message, result.output


def backtest(config: Path, tmp_path: Path, catalog: Path | None = None):
    args = ["backtest", str(config), "--out", str(tmp_path / "out")]
    if catalog is not None:
        args += ["--catalog", str(catalog)]
    return runner.invoke(app, args)


def test_missing_config_file(tmp_path):
    assert_clean_failure(backtest(tmp_path / "nope.yaml", tmp_path), "nope.yaml: file not found")


def test_malformed_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nmodels:\n  lightgbm: {weight: 1\n  xgboost: {}\n")
    assert_clean_failure(backtest(path, tmp_path), "malformed YAML at line 4")


def test_unknown_config_key_is_named(tmp_path):
    config = write_config(tmp_path / "c.yaml", walk_forward__fold=2)
    assert_clean_failure(backtest(config, tmp_path), "unknown key 'walk_forward.fold'")


def test_unknown_model_param_is_named_before_any_work(tmp_path, small_catalog):
    config = write_config(tmp_path / "c.yaml", models={"lightgbm": {"params": {"n_estimatorz": 5}}})
    assert_clean_failure(backtest(config, tmp_path, small_catalog), "unknown key 'models.lightgbm.params.n_estimatorz'")
    assert not (tmp_path / "out").exists()


def test_wrong_type_names_the_key(tmp_path):
    config = write_config(tmp_path / "c.yaml", walk_forward__test_days="two")
    assert_clean_failure(backtest(config, tmp_path), "'walk_forward.test_days'", "expected `int`, got `str`")


def import_abc(csv: Path, tmp_path: Path):
    return runner.invoke(app, ["catalog", "import-csv", str(csv), "--symbol", "ABC",
                               "--catalog", str(tmp_path / "cat")])


def test_csv_with_a_missing_column(tmp_path):
    csv = tmp_path / "bars.csv"
    csv.write_text("timestamp,open,high,low,close\n2024-01-02 14:30:00,10,10,10,10\n")
    result = import_abc(csv, tmp_path)
    assert_clean_failure(result, "missing column(s) volume")
    assert MarketCatalog(tmp_path / "cat").symbols() == []


def test_csv_with_non_monotonic_timestamps_names_the_row(tmp_path):
    csv = tmp_path / "bars.csv"
    csv.write_text("timestamp,open,high,low,close,volume\n"
                   "2024-01-02 14:30:00,10,10,10,10,100\n"
                   "2024-01-02 14:32:00,10,10,10,10,100\n"
                   "2024-01-02 14:31:00,10,10,10,10,100\n")
    result = import_abc(csv, tmp_path)
    assert_clean_failure(result, "row 3 (line 4): out-of-order timestamp")


def test_csv_with_an_unparsable_value_names_the_row(tmp_path):
    csv = tmp_path / "bars.csv"
    csv.write_text("timestamp,open,high,low,close,volume\n2024-01-02 14:30:00,10,10,ten,10,100\n")
    result = import_abc(csv, tmp_path)
    assert_clean_failure(result, "row 1 (line 2): unparsable low value 'ten'")


def test_missing_csv_file(tmp_path):
    result = runner.invoke(app, ["catalog", "import-csv", str(tmp_path / "nope.csv"), "--symbol", "ABC",
                                 "--catalog", str(tmp_path / "cat")])
    assert_clean_failure(result, "nope.csv")


def test_existing_catalog_directory_without_instruments(tmp_path):
    catalog = tmp_path / "cat"
    (catalog / "data").mkdir(parents=True)  # e.g. left behind by an aborted write
    config = write_config(tmp_path / "c.yaml", catalog__path=str(catalog))
    assert_clean_failure(backtest(config, tmp_path), f"catalog {catalog} exists but holds no instruments")
    assert list((catalog / "data").iterdir()) == []  # nothing was generated into it


def test_universe_symbol_missing_from_catalog(tmp_path, small_catalog):
    config = write_config(tmp_path / "c.yaml", universe=["S000", "MSFT"])
    assert_clean_failure(backtest(config, tmp_path, small_catalog), "universe symbols ['MSFT'] have no bars")
    assert not (tmp_path / "out").exists()


def test_universe_symbols_follow_the_symbol_rule(tmp_path, small_catalog):
    config = write_config(tmp_path / "c.yaml", universe=["s000 ", "msft"])  # s000 is S000: only MSFT is missing
    assert_clean_failure(backtest(config, tmp_path, small_catalog), "universe symbols ['MSFT'] have no bars")
    config = write_config(tmp_path / "c.yaml", universe=["S000", "X$(id)"])
    assert_clean_failure(backtest(config, tmp_path, small_catalog), "invalid symbol 'X$(id)'")
    assert not (tmp_path / "out").exists()


def test_walk_forward_needing_more_sessions_than_the_catalog_has(tmp_path, small_catalog):
    config = write_config(tmp_path / "c.yaml", walk_forward={"folds": 3, "train_days": 5, "test_days": 3})
    assert_clean_failure(backtest(config, tmp_path, small_catalog),
                         "walk-forward needs 15 sessions (5 train + 1 embargo + 3 x 3 test) but only 8 are available")
    assert not (tmp_path / "out").exists()


def test_window_with_no_usable_bars(tmp_path, small_catalog):
    # Training covers the first 2 sessions (780 bars) but the LSTM needs 1000-bar windows.
    config = write_config(tmp_path / "c.yaml", walk_forward={"folds": 1, "train_days": 2, "test_days": 5},
                          models={"lstm": {"params": {"seq_len": 1000}}})
    assert_clean_failure(backtest(config, tmp_path, small_catalog), "fold 0: 0 train rows", "no usable bars")


# -- catalog commands: merging, symbols, replace, damaged files, missing paths, info -----------------


def csv_of(path: Path, closes) -> Path:
    starts = [(t - pd.Timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S") for t in closes]
    path.write_text("timestamp,open,high,low,close,volume\n" + "".join(f"{t},10,10.5,9.5,10,100\n" for t in starts))
    return path


def test_import_csv_keeps_every_stored_bar_it_does_not_replace(tmp_path, small_catalog):
    catalog = tmp_path / "cat"
    shutil.copytree(small_catalog, catalog)
    stored = MarketCatalog(catalog).read_bars("S000")
    csv = csv_of(tmp_path / "two.csv", [stored.index[0], stored.index[-1]])  # spans all 8 sessions
    result = runner.invoke(app, ["catalog", "import-csv", str(csv), "--symbol", "s000", "--catalog", str(catalog)])
    assert result.exit_code == 0, result.output
    assert squash("imported 2 bars for S000") in squash(result.output)
    after = MarketCatalog(catalog).read_bars("S000")
    assert len(after) == len(stored)
    pd.testing.assert_frame_equal(after.iloc[1:-1], stored.iloc[1:-1], check_exact=True)
    assert after["close"].iloc[[0, -1]].tolist() == [10.0, 10.0]


@pytest.mark.parametrize("symbol", ["A,B", "*", "X$(id)", "BRK/B", "../../evil", "", "A" * 300])
def test_import_csv_with_a_bad_symbol_writes_nothing(tmp_path, symbol):
    csv = csv_of(tmp_path / "bars.csv", [pd.Timestamp("2024-01-02 14:31", tz="UTC")])
    result = runner.invoke(app, ["catalog", "import-csv", str(csv), "--symbol", symbol, "--catalog", str(tmp_path / "cat")])
    assert_clean_failure(result, "symbol")
    assert not (tmp_path / "cat").exists() and not (tmp_path / "evil").exists()


def test_import_csv_of_a_directory_or_non_utf8_file(tmp_path):
    assert_clean_failure(import_abc(tmp_path, tmp_path), "is a directory, not a CSV file")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"timestamp,open,high,low,close,volume\n2024-01-02 14:30:00,10,10,10,10,1 # caf\xe9\n")
    assert_clean_failure(import_abc(latin, tmp_path), "latin.csv: not UTF-8 text (line 2")


def test_import_csv_row_outside_the_calendar_is_named(tmp_path):
    csv = tmp_path / "bars.csv"
    csv.write_text("timestamp,open,high,low,close,volume\n2024-01-02 14:30:00,10,10,10,10,1\n"
                   "2035-01-02 14:30:00,10,10,10,10,1\n")
    assert_clean_failure(import_abc(csv, tmp_path), "row 2 (line 3): timestamp '2035-01-02 14:30:00' is outside")
    assert not (tmp_path / "cat").exists()


def test_ingest_with_a_bad_symbol_fails_before_any_request(tmp_path):
    result = runner.invoke(app, ["catalog", "ingest", "--symbols", "AAPL,X$(id)", "--start", "2024-01-02",
                                 "--end", "2024-01-03", "--catalog", str(tmp_path / "cat")])
    assert_clean_failure(result, "invalid symbol 'X$(id)'")
    assert not (tmp_path / "cat").exists()


def generate(catalog: Path, *extra: str):
    return runner.invoke(app, ["catalog", "generate", "--catalog", str(catalog), "--symbols", "2", "--days", "2", *extra])


def test_generate_over_an_existing_catalog_needs_replace(tmp_path):
    catalog = tmp_path / "cat"
    assert generate(catalog, "--seed", "1").exit_code == 0
    before = MarketCatalog(catalog).read_bars("S000")
    refused = generate(catalog, "--seed", "2")
    assert_clean_failure(refused, f"catalog {catalog} already holds data", "--replace")
    assert "writing symbols" not in refused.output  # no progress bar for work that never started
    pd.testing.assert_frame_equal(MarketCatalog(catalog).read_bars("S000"), before, check_exact=True)
    assert generate(catalog, "--seed", "2", "--replace").exit_code == 0
    assert MarketCatalog(catalog).synthetic_origin()["seed"] == 2
    assert MarketCatalog(catalog).bar_count("S000") == len(before)  # replaced, not spliced


def test_signal_strength_on_the_command_line_obeys_the_one_rule(tmp_path):
    from catalog.synthetic import SIGNAL_STRENGTH_MAX

    assert generate(tmp_path / "max", "--signal-strength", str(SIGNAL_STRENGTH_MAX)).exit_code == 0
    assert MarketCatalog(tmp_path / "max").synthetic_origin()["signal_strength"] == SIGNAL_STRENGTH_MAX
    above = generate(tmp_path / "above", "--signal-strength", str(SIGNAL_STRENGTH_MAX + 0.01))
    assert above.exit_code == 2 and "--signal-strength" in above.output
    assert not (tmp_path / "above").exists()


def test_backtest_with_a_catalog_path_that_does_not_exist(tmp_path):
    config = write_config(tmp_path / "c.yaml", catalog__path=str(tmp_path / "own"))
    typo = tmp_path / "catalgo"
    assert_clean_failure(backtest(config, tmp_path, typo), f"catalog {typo} does not exist", "sextant catalog info")
    assert not typo.exists() and not (tmp_path / "own").exists() and not (tmp_path / "out").exists()


def test_backtest_with_an_empty_catalog_directory(tmp_path):
    config = write_config(tmp_path / "c.yaml", catalog__path=str(tmp_path / "own"))
    (tmp_path / "empty").mkdir()
    assert_clean_failure(backtest(config, tmp_path, tmp_path / "empty"), "is an empty directory")
    assert list((tmp_path / "empty").iterdir()) == []


@pytest.fixture(params=DAMAGE)
def damaged_catalog(request, tmp_path, small_catalog) -> tuple[Path, str]:
    catalog = tmp_path / "cat"
    shutil.copytree(small_catalog, catalog)
    file = MarketCatalog(catalog)._bar_files("S001")[0]
    damage(file, request.param)
    return catalog, file


def test_backtest_on_a_damaged_file_names_it(tmp_path, damaged_catalog):
    catalog, file = damaged_catalog
    config = write_config(tmp_path / "c.yaml")
    assert_clean_failure(backtest(config, tmp_path, catalog), f"catalog file {file} is damaged")
    assert not (tmp_path / "out").exists()


def test_replay_on_a_damaged_file_names_it_instead_of_aborting(damaged_catalog):
    catalog, file = damaged_catalog
    start = str(MarketCatalog(catalog).read_bars("S000").index[0].date())
    result = runner.invoke(app, ["catalog", "replay", "--start", start, "--end", start, "--catalog", str(catalog),
                                 "--quiet"])
    assert_clean_failure(result, f"catalog file {file} is damaged")


@pytest.mark.slow  # a fresh interpreter importing NautilusTrader: ~5 s
def test_replay_of_a_damaged_page_in_a_real_process_exits_2_without_a_panic(tmp_path, small_catalog):
    catalog = tmp_path / "cat"
    shutil.copytree(small_catalog, catalog)
    file = MarketCatalog(catalog)._bar_files("S000")[0]
    damage(file, "page-header")  # before the fix: a Rust panic in DataFusion, SIGABRT (rc -6)
    start = str(MarketCatalog(catalog).read_bars("S001").index[0].date())
    result = sextant("catalog", "replay", "--start", start, "--end", start, "--catalog", str(catalog), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "panicked" not in result.stderr and "Traceback" not in result.stdout + result.stderr
    assert squash(f"catalog file {file} is damaged") in squash(result.stdout)


def test_replay_and_bench_on_a_missing_catalog(tmp_path):
    missing = tmp_path / "nope"
    replay = runner.invoke(app, ["catalog", "replay", "--start", "2024-01-02", "--end", "2024-01-02",
                                 "--catalog", str(missing)])
    assert_clean_failure(replay, f"catalog {missing} does not exist")
    bench = runner.invoke(app, ["bench", "--catalog", str(missing), "--part", "engine"])
    assert_clean_failure(bench, f"catalog {missing} does not exist")
    assert not missing.exists()


def test_replay_symbols_follow_the_symbol_rule(small_catalog):
    start = str(MarketCatalog(small_catalog).read_bars("S000").index[0].date())
    args = ["catalog", "replay", "--start", start, "--end", start, "--catalog", str(small_catalog), "--quiet"]
    assert_clean_failure(runner.invoke(app, [*args, "--symbols", "S000,../x"]), "invalid symbol '../x'")
    ok = runner.invoke(app, [*args, "--symbols", " s000"])
    assert ok.exit_code == 0, ok.output
    assert "S000" in ok.output


def test_catalog_info_lists_what_the_catalog_holds(small_catalog):
    result = runner.invoke(app, ["catalog", "info", "--catalog", str(small_catalog)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    stored = MarketCatalog(small_catalog)
    sectors = stored.sectors()
    lines = [line for line in result.output.splitlines() if "S00" in line]
    assert len(lines) == 2
    for line, symbol in zip(lines, ["S000", "S001"], strict=True):
        cells = line.split()  # one-word sectors and sources: the columns are whitespace-separated
        assert cells[:3] == [symbol, sectors[symbol], "1m"]
        assert cells[5:] == ["8", f"{stored.bar_count(symbol):,}", "0"]
    assert squash(f"catalog {small_catalog}: 2 symbols, synthetic") in squash(result.output)  # one source
    assert squash("synthetic market: 2 symbols x 8 sessions, seed 3") in squash(result.output)


def test_catalog_info_fits_a_standard_terminal_without_losing_a_digit(small_catalog):
    result = runner.invoke(app, ["catalog", "info", "--catalog", str(small_catalog)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    stored = MarketCatalog(small_catalog)
    rows = [line.split() for line in result.output.splitlines() if line.lstrip().startswith("S00")]
    assert [r[0] for r in rows] == ["S000", "S001"]  # one line per series: nothing wrapped
    assert all(r[-3:] == ["8", f"{stored.bar_count(r[0]):,}", "0"] for r in rows)


def test_catalog_info_on_a_missing_catalog(tmp_path):
    result = runner.invoke(app, ["catalog", "info", "--catalog", str(tmp_path / "nope")])
    assert_clean_failure(result, "does not exist")


# -- the error rule: a user's mistake is a message, a bug keeps its traceback ------------------------


def test_generate_with_a_negative_seed_is_refused(tmp_path):
    result = generate(tmp_path / "cat", "--seed", "-1")
    assert result.exit_code == 2 and "--seed" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "cat").exists()


def test_generate_more_sessions_than_the_calendar_holds(tmp_path):
    result = generate(tmp_path / "cat", "--days", "100000")
    assert_clean_failure(result, "100,000 sessions requested, but the NYSE calendar holds only")
    assert not (tmp_path / "cat").exists()


def test_backtest_generating_more_sessions_than_the_calendar_holds(tmp_path):
    config = write_config(tmp_path / "c.yaml", catalog__path=str(tmp_path / "own"), catalog__generate__days=100_000)
    assert_clean_failure(backtest(config, tmp_path), "100,000 sessions requested")
    assert not (tmp_path / "own").exists()


def replay_args(catalog: Path, *extra: str) -> list[str]:
    return ["catalog", "replay", "--catalog", str(catalog), "--quiet", *extra]


@pytest.mark.parametrize(("extra", "cause"), [
    (["--start", "2024-13-45", "--end", "2024-12-31"], "'2024-13-45' is not a date"),
    (["--start", "2024-12-31", "--end", "2024-12-30"], "start 2024-12-31 is after end 2024-12-30"),
    (["--start", "2024-12-28", "--end", "2024-12-29"], "no NYSE session between 2024-12-28 and 2024-12-29"),
    (["--start", "2035-01-02", "--end", "2035-01-02"], "outside the supported calendar range"),
    (["--start", "2024-12-31", "--end", "2024-12-31", "--timeframe", "2m"], "unknown timeframe '2m'"),
], ids=["bad-date", "reversed", "weekend", "beyond-calendar", "timeframe"])
def test_replay_request_mistakes_are_messages(small_catalog, extra, cause):
    assert_clean_failure(runner.invoke(app, replay_args(small_catalog, *extra)), cause)


@pytest.mark.parametrize(("extra", "cause"), [
    (["--start", "2024-02-30", "--end", "2024-03-01"], "'2024-02-30' is not a date"),
    (["--start", "2024-01-02", "--end", "2024-01-03", "--timeframe", "2m"], "unknown timeframe '2m'"),
], ids=["bad-date", "timeframe"])
def test_ingest_request_mistakes_fail_before_any_request(tmp_path, small_catalog, monkeypatch, extra, cause):
    monkeypatch.setenv("POLYGON_API_KEY", "not-used")
    catalog = tmp_path / "cat"
    shutil.copytree(small_catalog, catalog)  # its symbols are known: no reference request either
    result = runner.invoke(app, ["catalog", "ingest", "--symbols", "S000", "--catalog", str(catalog),
                                 "--base-url", "http://127.0.0.1:9", *extra])  # port 9: nothing listens
    assert_clean_failure(result, cause)


def a_bug(*_args, **_kwargs):
    raise ValueError("a bug, not a user mistake")


def assert_traceback_kept(result) -> None:
    assert result.exit_code == 1 and isinstance(result.exception, ValueError), result.output
    assert "error:" not in result.output


def test_a_bug_in_replay_keeps_its_traceback(small_catalog, monkeypatch):
    import backtests.replay

    monkeypatch.setattr(backtests.replay, "replay", a_bug)
    assert_traceback_kept(runner.invoke(app, replay_args(small_catalog, "--start", "2024-12-31", "--end", "2024-12-31")))


def test_a_bug_in_ingest_keeps_its_traceback(tmp_path, small_catalog, monkeypatch):
    import catalog.ingest

    monkeypatch.setattr(catalog.ingest, "ingest_bars", a_bug)
    monkeypatch.setenv("POLYGON_API_KEY", "not-used")
    result = runner.invoke(app, ["catalog", "ingest", "--symbols", "S000", "--start", "2024-01-02", "--end",
                                 "2024-01-03", "--catalog", str(small_catalog), "--base-url", "http://127.0.0.1:9"])
    assert_traceback_kept(result)


@pytest.mark.parametrize("option", ["--symbols", "--days"])
def test_bench_sizes_below_one_are_refused_before_any_work(option):
    result = runner.invoke(app, ["bench", "--part", "engine", option, "0"])
    assert result.exit_code == 2 and option in result.output
    assert "Traceback" not in result.output and "built a" not in result.output


def test_a_replay_too_short_for_the_warm_up_says_why_it_has_no_signal(tmp_path, small_catalog):
    from backtests.config import parse_config
    from backtests.train import build_panel
    from models.registry import ModelRegistry
    from models.zoo import build_model

    stored = MarketCatalog(small_catalog)
    panel, _ = build_panel(stored, stored.symbols(), parse_config({"models": {"lightgbm": {}}}))
    model = build_model("lightgbm", {"n_estimators": 5}, name="lightgbm")
    model.fit(panel, panel.usable_rows(require_label=True), seed=0)
    ModelRegistry(tmp_path / "models").save(model, {"train_start": "-", "train_end": "-", "fold": 0, "metrics": {},
                                                    "data_hash": "-", "universe": stored.symbols()})
    last = str(stored.read_bars("S000").index[-1].date())
    args = replay_args(small_catalog, "--start", last, "--end", last, "--models", str(tmp_path / "models"))
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "no signal: the SignalActor publishes once a symbol holds its warm-up" in result.output


@pytest.mark.parametrize("under", ["", "sub"], ids=["is-a-file", "under-a-file"])
@pytest.mark.parametrize("command", [
    ["catalog", "generate", "--symbols", "1", "--days", "2"],
    ["catalog", "import-csv", "{csv}", "--symbol", "ABC"],
    ["catalog", "ingest", "--symbols", "ABC", "--start", "2024-01-02", "--end", "2024-01-03",
     "--base-url", "http://127.0.0.1:9"],
], ids=["generate", "import-csv", "ingest"])
def test_a_catalog_that_cannot_be_written_is_refused_before_any_work(tmp_path, monkeypatch, command, under):
    monkeypatch.setenv("POLYGON_API_KEY", "not-used")
    file = tmp_path / "a-file"
    file.write_text("x")
    csv = csv_of(tmp_path / "bars.csv", [pd.Timestamp("2024-01-02 14:31", tz="UTC")])
    target = file / under if under else file
    result = runner.invoke(app, [*(part.format(csv=csv) for part in command), "--catalog", str(target)])
    assert_clean_failure(result, f"--catalog {target}: {file} is a file, not a directory")
    assert file.read_text() == "x"
