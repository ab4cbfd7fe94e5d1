"""The config sections of the signal outlook, the horizon models, the universe screen and the
volatility-targeted stop: off by default, and a bad key or value names itself."""

import pytest

from backtests.config import ConfigError, HorizonConfig, parse_config
from models.universe import ScreenRule


def test_off_by_default() -> None:
    config = parse_config({})
    assert config.horizons is None and config.universe_screen is None
    assert config.signal.volatility_feature == "rv_60"
    assert config.strategy.risk.stop_volatility_multiple is None


def test_sections_load() -> None:
    config = parse_config({
        "horizons": {"bars": [1, 5, 390], "trade": 5},
        "universe_screen": {"min_avg_volume": 2e6, "market_proxy": "QQQ"},
        "strategy": {"risk": {"stop_volatility_multiple": 2.5, "stop_max": 0.04}},
    })
    assert config.horizons == HorizonConfig(bars=[1, 5, 390], trade=5)
    assert config.universe_screen == ScreenRule(min_avg_volume=2e6, market_proxy="QQQ")
    assert config.strategy.risk.stop_distance(0.001, 25) == pytest.approx(0.0125)


@pytest.mark.parametrize(("raw", "message"), [
    ({"horizons": {"bars": [1, 5], "trade": 30}}, r"'horizons\.trade': \(30\) must be one of 'bars' \[1, 5\]"),
    ({"horizons": {"bars": [5, 5], "trade": 5}}, r"'horizons\.bars': must be distinct"),
    ({"horizons": {"bars": [0], "trade": 0}}, r"'horizons\.bars\[0\]'"),
    ({"horizons": {"alpha": 0}}, r"'horizons\.alpha'"),
    ({"universe_screen": {"lookback": 5}}, "unknown key 'universe_screen.lookback'"),
    ({"universe_screen": {"min_price": 50, "max_price": 10}}, r"'universe_screen\.min_price': \(50\.0\) must not exceed 'max_price'"),
    ({"signal": {"volatility": "rv_60"}}, "unknown key 'signal.volatility'"),
    ({"strategy": {"risk": {"stop_volatility_multiple": -1}}}, r"'strategy\.risk\.stop_volatility_multiple'"),
    ({"strategy": {"risk": {"stop_min": 0.06, "stop_max": 0.05}}}, r"'strategy\.risk\.stop_min': \(0\.06\) must not exceed 'stop_max'"),
])
def test_a_bad_value_names_its_key(raw, message) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(raw)


def test_the_volatility_stop_is_tunable() -> None:
    """A tuning study may search the multiple (off in the base settings) and the clamp."""
    from backtests.tuning.space import build_space
    from strategies.settings import StrategySettings

    space = build_space({"risk.stop_volatility_multiple": {"low": 1.0, "high": 4.0},
                         "risk.stop_max": {"low": 0.02, "high": 0.05}}, StrategySettings(), "tune.yaml")

    class Middle:
        def suggest_float(self, name, low, high, *, log=False):
            return (low + high) / 2

    risk = space.settings(space.sample(Middle())).risk
    assert (risk.stop_volatility_multiple, risk.stop_max) == (2.5, 0.035)
    with pytest.raises(ConfigError, match="stop_volatility_multiple"):
        build_space({"risk.stop_volatility_multiple": {"low": 1.0, "high": 40.0}}, StrategySettings(), "tune.yaml")
