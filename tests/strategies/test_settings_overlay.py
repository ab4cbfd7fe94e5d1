"""The settings overlay (a tuning study's best.yaml): which fields it replaces, that it is held
to StrategySettings' own bounds, and that its errors name the file and the key."""

from pathlib import Path

import pytest

from strategies.risk import RiskRules
from strategies.settings import StrategySettings, read_settings_overlay, write_settings_overlay
from strategies.settings_file import SettingsFileError

CONFIGURED = StrategySettings(
    weights={"lightgbm": 1.0, "xgboost": 1.0, "lstm": 1.0},
    entry_threshold=0.6,
    allow_short=False,
    risk=RiskRules(stop_loss=0.03, take_profit=0.05, max_positions=4),
)


def overlay_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "best.yaml"
    path.write_text(text)
    return path


def test_an_overlay_replaces_its_fields_and_keeps_the_others(tmp_path):
    path = overlay_file(tmp_path, "strategy:\n  weights: {lightgbm: 0.7, xgboost: 0.3}\n"
                                  "  entry_threshold: 0.72\n  risk: {stop_loss: 0.015}\n")
    settings = read_settings_overlay(path).apply(CONFIGURED)
    # weights are replaced whole: lstm no longer votes with its old weight
    assert settings.weights == {"lightgbm": 0.7, "xgboost": 0.3}
    assert settings.entry_threshold == 0.72
    # risk rules one by one: the config's other rules stay
    assert settings.risk == RiskRules(stop_loss=0.015, take_profit=0.05, max_positions=4)
    assert settings.allow_short is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("strategy:\n  entry_treshold: 0.7\n", "unknown key 'strategy.entry_treshold'", id="unknown-key"),
        pytest.param("strategy:\n  risk: {stop_los: 0.1}\n", "unknown key 'strategy.risk.stop_los'", id="unknown-risk-key"),
        pytest.param("strategy:\n  entry_threshold: 0.99\nstudy: wf\n", "unknown key 'study'", id="unknown-top-key"),
        pytest.param("weights: {lightgbm: 1}\n", "unknown key 'weights'", id="no-strategy-section"),
        pytest.param("", "missing required field `strategy`", id="empty-file"),
        pytest.param("strategy:\n  entry_threshold: 1.5\n", "'strategy.entry_threshold': expected `float` < 1.0", id="threshold-bound"),
        pytest.param("strategy:\n  risk: {stop_loss: 2.0}\n", "'strategy.risk.stop_loss': expected `float` <= 1.0", id="stop-bound"),
        pytest.param("strategy:\n  risk: {max_positions: 0}\n", "'strategy.risk.max_positions': expected `int` >= 1", id="positions-bound"),
        pytest.param("strategy:\n  weights: {lightgbm: -1}\n", "'strategy.weights.lightgbm': must be between 0", id="negative-weight"),
        pytest.param("strategy:\n  weights: {lightgbm: 0}\n", "'strategy.weights': needs at least one model", id="no-positive-weight"),
        pytest.param("strategy:\n  allow_short: 1\n", "'strategy.allow_short': expected `bool`, got `int`", id="wrong-type"),
        pytest.param("strategy:\n  risk: 3\n", "'strategy.risk': expected `object`, got `int`", id="risk-not-a-mapping"),
        pytest.param("strategy: [0.7]\n", "'strategy': expected `object`, got `array`", id="strategy-not-a-mapping"),
    ],
)
def test_a_bad_overlay_names_the_file_and_the_key(tmp_path, text, message):
    path = overlay_file(tmp_path, text)
    with pytest.raises(SettingsFileError) as error:
        read_settings_overlay(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_what_a_study_writes_reads_back_as_the_same_settings(tmp_path):
    path = tmp_path / "best.yaml"
    tuned = {"weights": {"lightgbm": 0.4, "xgboost": 0.35, "lstm": 0.25}, "entry_threshold": 0.7,
             "risk": {"stop_loss": 0.015, "take_profit": 0.05}}
    write_settings_overlay(path, tuned, comment="study wf-q1, trial 17\nin-study Sharpe 1.20")
    assert path.read_text().startswith("# study wf-q1, trial 17\n# in-study Sharpe 1.20\nstrategy:\n")
    settings = read_settings_overlay(path).apply(CONFIGURED)
    assert settings.weights == tuned["weights"] and settings.entry_threshold == 0.7
    assert settings.risk == RiskRules(stop_loss=0.015, take_profit=0.05, max_positions=4)


def test_a_study_cannot_write_an_overlay_that_would_not_read_back(tmp_path):
    path = tmp_path / "best.yaml"
    with pytest.raises(SettingsFileError, match="'strategy.entry_threshold': expected `float` > 0.5"):
        write_settings_overlay(path, {"entry_threshold": 0.4})
    assert not path.exists()
