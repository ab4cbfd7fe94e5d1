"""The walk-forward config loader: defaults, overrides, and an error that names the key for
every way a file can be wrong."""

from pathlib import Path

import pytest

from backtests.config import BacktestConfig, ConfigError, load_config, parse_config
from strategies.risk import RiskRules

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "walkforward.yaml"


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- defaults and the shipped file ------------------------------------------------------------


def test_empty_file_loads_the_documented_defaults(tmp_path):
    config = load_config(write(tmp_path, ""))
    assert config == BacktestConfig()
    assert config.name == "walkforward" and config.seed == 7
    assert config.catalog.path == Path("data/catalog")
    assert (config.catalog.generate.symbols, config.catalog.generate.days) == (12, 120)
    assert config.universe is None
    assert (config.labels.horizon, config.labels.cost) == (15, 0.001)
    wf = config.walk_forward
    assert (wf.folds, wf.train_days, wf.test_days, wf.embargo_days, wf.anchored) == (4, 35, 20, 1, False)
    assert config.weights() == {"lightgbm": 1.0, "xgboost": 1.0, "lstm": 1.0}
    assert all(m.params == {} for m in config.models.values())
    assert config.strategy.entry_threshold == 0.65 and config.strategy.allow_short is True
    assert config.strategy.risk == RiskRules()
    assert config.venue.starting_cash == 1_000_000.0
    assert config.workers == 1


def test_shipped_config_loads_with_its_values():
    config = load_config(SHIPPED)
    assert config.catalog.generate.signal_strength == 0.15
    assert config.catalog.generate.seed == 7
    assert config.workers == 2
    assert config.strategy.risk.stop_loss == 0.02 and config.strategy.risk.take_profit == 0.04
    assert config.strategy.risk.max_positions == 10
    assert set(config.models) == {"lightgbm", "xgboost", "lstm"}


def test_dump_validates_back_to_the_same_config():
    config = load_config(SHIPPED)
    dumped = config.to_dict()  # what metrics.json records
    assert dumped["strategy"]["risk"]["daily_loss_limit"] == 0.02
    assert dumped["catalog"]["path"] == "data/catalog"
    assert parse_config(dumped) == config


def test_partial_sections_keep_the_other_defaults(tmp_path):
    config = load_config(write(tmp_path, "walk_forward: {folds: 2}\nstrategy: {risk: {stop_loss: 0.03}}\n"))
    assert config.walk_forward.folds == 2 and config.walk_forward.train_days == 35
    assert config.strategy.risk.stop_loss == 0.03
    assert config.strategy.risk.take_profit == RiskRules().take_profit


def test_model_entries_with_params_and_variant_names(tmp_path):
    config = load_config(write(tmp_path, (
        "models:\n"
        "  lightgbm: {params: {n_estimators: 50, learning_rate: 1}}\n"  # int for a float is fine
        "  lightgbm@deep: {params: {max_depth: 8}}\n"
        "  lstm: {}\n"
        "strategy: {weights: {lightgbm: 2, lightgbm@deep: 0.5, lstm: 0}}\n"
    )))
    assert config.weights() == {"lightgbm": 2.0, "lightgbm@deep": 0.5, "lstm": 0.0}
    assert config.models["lightgbm"].params == {"n_estimators": 50, "learning_rate": 1}


# -- overrides --------------------------------------------------------------------------------


def test_overrides_replace_nested_keys_and_create_missing_sections(tmp_path):
    path = write(tmp_path, "catalog: {path: a/b}\nwalk_forward: {folds: 2}\n")
    config = load_config(path, overrides={"catalog.path": "x/y", "walk_forward.test_days": 5,
                                          "venue.starting_cash": 5000, "name": "other"})
    assert config.catalog.path == Path("x/y")
    assert (config.walk_forward.folds, config.walk_forward.test_days) == (2, 5)
    assert config.venue.starting_cash == 5000.0
    assert config.name == "other"
    assert load_config(path).catalog.path == Path("a/b")  # the file itself is untouched


def test_override_into_an_empty_section(tmp_path):
    # "catalog:" with every sub-key commented out is YAML null
    config = load_config(write(tmp_path, "catalog:\n#  path: data/catalog\n"), overrides={"catalog.path": "z"})
    assert config.catalog.path == Path("z")


def test_overrides_are_validated_like_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"'walk_forward\.folds'"):
        load_config(write(tmp_path, ""), overrides={"walk_forward.folds": 0})
    with pytest.raises(ConfigError, match=r"'catalog' must be a mapping"):
        load_config(write(tmp_path, "catalog: somewhere\n"), overrides={"catalog.path": "z"})


# -- every error path -------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found") as err:
        load_config(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(err.value)


def test_malformed_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "name: x\nwalk_forward:\n  folds: 2\n   test_days: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(str(path))
    assert "malformed YAML at line 4" in message


def test_malformed_yaml_unclosed_bracket(tmp_path):
    with pytest.raises(ConfigError, match=r"malformed YAML at line \d+"):
        load_config(write(tmp_path, "models: {lightgbm: {params: {}}\nseed: 3\n"))


@pytest.mark.parametrize("text", ["- 1\n- 2\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path, text):
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # unknown keys, at every depth
        ("foldz: 3\n", "unknown key 'foldz'"),
        ("walk_forward: {fold: 2}\n", "unknown key 'walk_forward.fold'"),
        ("catalog: {generate: {symbol: 3}}\n", "unknown key 'catalog.generate.symbol'"),
        ("models: {lightgbm: {wieght: 1}}\n", "unknown key 'models.lightgbm.wieght'"),
        ("models: {lightgbm: {weight: 1}}\n", "unknown key 'models.lightgbm.weight'"),  # weights: strategy
        ("venue: {cash: 10}\n", "unknown key 'venue.cash'"),
        ("strategy: {risk: {stop_los: 0.1}}\n", "unknown key 'strategy.risk.stop_los'"),
        ("models: {lightgbm: {params: {n_estimatorz: 5}}}\n", "unknown key 'models.lightgbm.params.n_estimatorz'"),
        ("models: {catboost: {}}\n", "unknown model kind 'catboost'"),
        # wrong types
        ("walk_forward: {folds: two}\n", "'walk_forward.folds'"),
        ("seed: [1]\n", "'seed'"),
        ("universe: S000\n", "'universe'"),
        ("walk_forward: {anchored: maybe}\n", "'walk_forward.anchored'"),
        ("strategy: {risk: {stop_loss: abc}}\n", "'strategy.risk.stop_loss'"),
        # strict types: no bool for an int, no text for a number
        ("walk_forward: {folds: true}\n", "'walk_forward.folds': expected `int`, got `bool`"),
        ("walk_forward: {folds: '3'}\n", "'walk_forward.folds': expected `int`, got `str`"),
        ("strategy: {entry_threshold: '0.7'}\n", "'strategy.entry_threshold': expected `float`, got `str`"),
        ("seed: 1.5\n", "'seed': expected `int`, got `float`"),
        ("models: {lightgbm: {params: {n_estimators: abc}}}\n", "'models.lightgbm.params.n_estimators': must be int"),
        ("models: {lstm: {params: {epochs: 2.5}}}\n", "'models.lstm.params.epochs': must be int"),
        ("models: {xgboost: {params: {learning_rate: fast}}}\n", "'models.xgboost.params.learning_rate': must be float"),
        # out of range
        ("walk_forward: {folds: 0}\n", "'walk_forward.folds'"),
        ("walk_forward: {train_days: 1}\n", "'walk_forward.train_days'"),
        ("walk_forward: {embargo_days: -1}\n", "'walk_forward.embargo_days'"),
        ("labels: {horizon: 0}\n", "'labels.horizon'"),
        ("catalog: {generate: {signal_strength: 1.5}}\n", "'catalog.generate.signal_strength'"),
        ("catalog: {generate: {days: 4}}\n", "'catalog.generate.days'"),
        ("seed: -1\n", "'seed': expected `int` >= 0"),  # before: a traceback from the LSTM after the GBMs
        ("catalog: {generate: {seed: -1}}\n", "'catalog.generate.seed': expected `int` >= 0"),
        ("strategy: {entry_threshold: 0.5}\n", "'strategy.entry_threshold'"),
        ("strategy: {entry_threshold: 1.0}\n", "'strategy.entry_threshold'"),
        ("strategy: {risk: {stop_loss: -0.1}}\n", "'strategy.risk.stop_loss'"),
        ("venue: {slippage_probability: 1.5}\n", "'venue.slippage_probability'"),
        ("venue: {starting_cash: 0}\n", "'venue.starting_cash'"),
        ("strategy: {weights: {lightgbm: -1, xgboost: 1, lstm: 1}}\n", "'strategy.weights.lightgbm': must be between 0"),
        # a bad value of a mapping: msgspec says "weights[...]", the message names the key
        ("strategy: {weights: {lightgbm: 1, xgboost: high, lstm: 1}}\n",
         "'strategy.weights.xgboost': expected `float`, got `str`"),
        ("strategy: {weights: {lightgbm: true, xgboost: 1, lstm: 1}}\n",
         "'strategy.weights.lightgbm': expected `float`, got `bool`"),
        ("universe: []\n", "'universe': expected `array` of length >= 1"),
        # names become directories under --out
        ("name: ../../trav\n", "'name': expected `str` that is 1-100 letters"),
        ("name: ''\n", "'name': expected `str` that is 1-100 letters"),
        ("name: a/b\n", "'name'"),
        ("name: .hidden\n", "'name'"),
        ("workers: 0\n", "'workers'"),
        # whole-config rules
        ("models: {}\n", "'models': at least one model is required"),
        ("models: {lightgbm: {}, lstm: {}}\nstrategy: {weights: {lightgbm: 0, lstm: 0}}\n",
         "'strategy.weights': needs at least one model with a positive weight"),
        ("models: {lightgbm: {}}\nstrategy: {weights: {lightgbm: 1, lstm: 1}}\n",
         "'strategy.weights': must weigh exactly the models in 'models'"),
        ("models: {'lightgbm@a,b': {}}\n", "'models': a key: expected `str` that is 1-100 letters"),
    ],
)
def test_invalid_configs_name_the_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message


def test_models_without_weights_each_get_weight_one(tmp_path):
    config = load_config(write(tmp_path, "models: {lightgbm: {}, lstm: {}}\nstrategy: {entry_threshold: 0.7}\n"))
    assert config.weights() == {"lightgbm": 1.0, "lstm": 1.0} and config.strategy.entry_threshold == 0.7


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path):
    path = write(tmp_path, "name: a\nwalk_forward:\n  folds: 2\n  test_days: 3\n  folds: 5\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (f"{path}: malformed YAML at line 5, column 3: "
                              "duplicate key 'folds' (first given at line 3)")


def test_yaml_merge_keys_may_override(tmp_path):
    path = write(tmp_path, "base: &b {folds: 2, test_days: 3}\n")  # anchors work; merges override
    path.write_text("walk_forward:\n  <<: {folds: 2, test_days: 3}\n  folds: 3\n")
    assert load_config(path).walk_forward.folds == 3


def test_a_directory_or_a_non_utf8_file_is_a_message(tmp_path):
    with pytest.raises(ConfigError, match="is a directory, not a YAML file"):
        load_config(tmp_path)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.yaml: not UTF-8 text \(byte 9\)"):
        load_config(latin1)


def test_config_error_is_not_a_value_error():
    """The CLI turns ConfigError into a message; a ValueError from a bug must keep its traceback."""
    assert not issubclass(ConfigError, ValueError)


# -- the command: user mistakes are messages, bugs keep their traceback -------------------------


def _backtest(*args: str):
    from typer.testing import CliRunner

    from sextant.cli import app

    return CliRunner().invoke(app, ["backtest", *args])


def _squash(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("out", ["{file}", "{file}/runs"])
def test_an_unusable_out_is_refused_before_any_work(tmp_path, out):
    file = tmp_path / "a-file"
    file.write_text("x")
    out = out.format(file=file)
    result = _backtest(str(write(tmp_path, "")), "--out", out, "--catalog", str(tmp_path / "never-made"))
    assert result.exit_code == 2, result.output
    assert _squash(f"--out {out}: {file} is a file, not a directory") in _squash(result.output)
    assert not (tmp_path / "never-made").exists()  # refused before the catalog is generated


def test_a_climbing_run_name_writes_nothing(tmp_path):
    result = _backtest(str(write(tmp_path, "name: ../../trav\n")), "--out", str(tmp_path / "runs"))
    assert result.exit_code == 2 and "'name':" in result.output
    assert not list(tmp_path.parent.glob("trav-*")) and not (tmp_path / "runs").exists()


def test_a_programming_error_keeps_its_traceback(tmp_path, monkeypatch):
    import backtests.walkforward

    def broken(*_args, **_kwargs):
        raise ValueError("a bug, not a user mistake")

    monkeypatch.setattr(backtests.walkforward, "run_walkforward", broken)
    result = _backtest(str(write(tmp_path, "")), "--out", str(tmp_path / "runs"))
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)
    assert "error:" not in result.output


def test_a_catalog_override_on_a_non_mapping_catalog_key_is_named(tmp_path):
    result = _backtest(str(write(tmp_path, "catalog: 5\n")), "--catalog", str(tmp_path), "--out",
                       str(tmp_path / "runs"))
    assert result.exit_code == 2, result.output
    assert _squash("'catalog' must be a mapping to set 'catalog.path' (got 5)") in _squash(result.output)


# -- --params: a settings overlay (best.yaml) over the strategy section ----------------------------


TWO_MODELS = "models: {lightgbm: {}, xgboost: {}}\nstrategy: {entry_threshold: 0.6, risk: {take_profit: 0.05}}\n"


def test_params_replace_the_strategy_fields_they_name(tmp_path):
    params = write(tmp_path, "strategy:\n  weights: {lightgbm: 0.75, xgboost: 0.25}\n  risk: {stop_loss: 0.01}\n",
                   "best.yaml")
    config = load_config(write(tmp_path, TWO_MODELS), params=params)
    assert config.weights() == {"lightgbm": 0.75, "xgboost": 0.25}
    assert config.strategy.entry_threshold == 0.6  # the config's, not the default
    assert config.strategy.risk == RiskRules(stop_loss=0.01, take_profit=0.05)
    # what the backtest windows trade, and what metrics.json records
    assert config.strategy_settings(["S000.ALPACA"])["weights"] == {"lightgbm": 0.75, "xgboost": 0.25}
    assert config.to_dict()["strategy"]["risk"]["stop_loss"] == 0.01
    assert set(config.models) == {"lightgbm", "xgboost"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("strategy:\n  weights: {lightgbm: 0.5, lstm: 0.5}\n",
                     "'strategy.weights': must weigh exactly the models in 'models': models ['lightgbm', 'xgboost'], "
                     "weights ['lightgbm', 'lstm']", id="weights-name-an-untrained-model"),
        pytest.param("strategy:\n  weights: {lightgbm: 1.0}\n",
                     "'strategy.weights': must weigh exactly the models in 'models'", id="weights-miss-a-model"),
        pytest.param("strategy:\n  entry_threshold: 0.3\n", "'strategy.entry_threshold': expected `float` > 0.5",
                     id="bound"),
        pytest.param("strategy:\n  threshold: 0.7\n", "unknown key 'strategy.threshold'", id="unknown-key"),
    ],
)
def test_bad_params_are_a_config_error_naming_the_params_file(tmp_path, text, message):
    params = write(tmp_path, text, "best.yaml")
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, TWO_MODELS), params=params)
    assert str(error.value).startswith(f"{params}: ")
    assert message in str(error.value)


def test_a_bad_params_file_is_one_line_before_any_work(tmp_path):
    params = write(tmp_path, "strategy:\n  risk: {stop_loss: 1.5}\n", "best.yaml")
    result = _backtest(str(write(tmp_path, "")), "--params", str(params), "--out", str(tmp_path / "runs"),
                       "--catalog", str(tmp_path / "never-made"))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert _squash(f"error: {params}: 'strategy.risk.stop_loss': expected `float` <= 1.0") in _squash(result.output)
    assert not (tmp_path / "runs").exists()


def test_the_zoo_config_runs_every_kind_and_every_block():
    """configs/zoo.yaml is the full-zoo walk-forward the bench and README point at: a kind
    added to the zoo without it there would go untried on the default data."""
    from models.zoo.kinds import MODEL_KINDS

    config = load_config(SHIPPED.with_name("zoo.yaml"))
    assert {name.split("@")[0] for name in config.models} == set(MODEL_KINDS)
    assert config.ensemble.stacking and config.selection is not None
    assert set(config.features.timeframes) == {"5m", "30m", "1h", "1d"}
    risk = config.features.risk
    assert risk.garch and risk.var and risk.beta and risk.copula
    assert config.horizons is not None and config.universe_screen is not None
    assert config.signal.volatility_feature == "garch_vol"


def test_a_model_naming_its_columns_must_find_them_and_leave_them_to_selection():
    with pytest.raises(ConfigError, match=r"'models.cnn.params.features':? names its input columns.*selection"):
        parse_config({"models": {"cnn": {}}, "selection": {"top_k": 20}})
    with pytest.raises(ConfigError, match=r"'models.cnn.params.features':? \['tf5m_ret'\] are not in the feature set"):
        parse_config({"models": {"cnn": {"params": {"features": ["rsi_14", "tf5m_ret"]}}}})
    assert parse_config({"models": {"cnn": {"params": {"features": ["rsi_14", "tf5m_ret"]}}},
                         "features": {"timeframes": ["5m"]}}).models["cnn"].params["features"][1] == "tf5m_ret"
    assert parse_config({"models": {"cnn": {"params": {"features": []}}}, "selection": {"top_k": 20}}).selection
