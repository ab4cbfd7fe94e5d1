"""The ``features`` section of a walk-forward config: defaults, and errors that name the key."""

import pytest

from backtests.config import ConfigError, load_config, parse_config
from backtests.train import panel_from_bars
from models.pipeline import FeatureSpec, RiskSpec, feature_names
from tests.models.test_features import make_bars


def test_default_is_the_base_set_and_blocks_load_typed(tmp_path):
    assert parse_config({}).features == FeatureSpec()
    path = tmp_path / "cfg.yaml"
    path.write_text("features:\n  timeframes: [5m, 1d]\n  risk: {garch: true, beta: true, window: 200}\n")
    spec = load_config(path).features
    assert spec == FeatureSpec(timeframes=("5m", "1d"), risk=RiskSpec(garch=True, beta=True, window=200))
    assert feature_names(spec)[-3:] == ("beta_mkt", "corr_mkt", "garch_vol")


@pytest.mark.parametrize(("text", "expected"), [
    ("features: {timeframes: [5m, 2h]}\n", "'features.timeframes[1]': invalid enum value '2h'; one of: 1d, 1h, 30m, 5m"),
    ("ensemble: {method: average}\n", "'ensemble.method': invalid enum value 'average'; one of: stack, vote"),
    ("features: {timeframes: [1h, 1h]}\n", "'features.timeframes': lists 1h more than once"),
    ("features: {timeframe: [1h]}\n", "unknown key 'features.timeframe'"),
    ("features: {risk: {garch: yes please}}\n", "'features.risk.garch'"),
    ("features: {risk: {garhc: true}}\n", "unknown key 'features.risk.garhc'"),
    ("features: {risk: {window: 5}}\n", "'features.risk.window': expected `int` >= 20"),
    ("features: {risk: {var_level: 1.5}}\n", "'features.risk.var_level'"),
])
def test_bad_feature_keys_name_the_key(tmp_path, text, expected):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert expected in str(err.value), str(err.value)


def test_a_market_proxy_outside_the_universe_is_a_config_error():
    frame = make_bars(n_sessions=2)
    bars = {"S0": (*(frame[c].to_numpy() for c in ("open", "high", "low", "close", "volume")), frame.index.asi8)}
    config = parse_config({"features": {"risk": {"beta": True, "market_proxy": "SPY"}}})
    with pytest.raises(ConfigError, match=r"'features.risk.market_proxy': 'SPY' is not in the universe"):
        panel_from_bars(bars, config)
