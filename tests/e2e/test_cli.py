"""The `sextant` command line, end to end.

The happy path runs the installed console script in real processes (exit codes and output as a
user sees them): generate a catalog, back-test it into --out, back-test again into the same
--out with a catalog that does not exist yet (so it is generated from the config). Bad inputs
go through typer's CliRunner: each must fail with exit code 2 and one clear line naming the
cause, never a traceback.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from catalog.jobs import generate_catalog
from catalog.store import MarketCatalog
from sextant.cli import app

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
    config = write_config(work / "tiny.yaml", catalog__path="from-config")
    first = sextant("backtest", "tiny.yaml", "--catalog", "given", "--out", "out", cwd=work)
    # A --catalog that does not exist yet is generated from the config's `catalog.generate`.
    second = sextant("backtest", str(config), "--catalog", "fresh", "--out", "out", cwd=work)
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
