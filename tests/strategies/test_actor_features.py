"""The SignalActor loads the feature spec and fits saved with its models and refuses what it
could not compute as the batch path did."""

import pytest

from models.pipeline import FeatureSpec, FittedFeatures, RiskSpec, lookback_bars
from models.risk_features import GarchParams
from strategies.actor import SignalActor, SignalActorConfig

GARCH = GarchParams(omega=0.001, alpha=0.05, beta=0.9, seed_var=0.01)
SPEC = FeatureSpec(timeframes=("1d",), risk=RiskSpec(garch=True, beta=True))


def _fit(universe=("AAA", "BBB"), seed_var=0.01) -> FittedFeatures:
    garch = {s: GarchParams(omega=0.001, alpha=0.05, beta=0.9, seed_var=seed_var) for s in universe}
    return FittedFeatures(spec=SPEC, universe=universe, garch=garch)


def _actor(tmp_path, fits: dict[str, FittedFeatures], symbols=("AAA", "BBB")) -> SignalActor:
    dirs = {}
    for name, fit in fits.items():
        (tmp_path / name).mkdir()
        fit.save(tmp_path / name)
        dirs[name] = str(tmp_path / name)
    return SignalActor(SignalActorConfig(instrument_ids=[f"{s}.ALPACA" for s in symbols], model_dirs=dirs))


def test_buffers_grow_to_what_the_blocks_need(tmp_path) -> None:
    actor = _actor(tmp_path, {"a": _fit(), "b": _fit()})
    actor._load_features()
    assert actor.features == _fit()
    assert {b.capacity for b in actor.buffers.values()} == {lookback_bars(SPEC)} == {7 * 390}


@pytest.mark.parametrize(("fits", "symbols", "message"), [
    ({"a": _fit(), "b": _fit(seed_var=0.02)}, ("AAA", "BBB"), "different feature fits"),
    ({"a": _fit()}, ("AAA",), "equal-weight mean of the training universe"),
    ({"a": _fit(universe=("AAA", "CCC"))}, ("AAA", "BBB", "CCC"), "training universe"),
])
def test_what_live_could_not_reproduce_is_refused(tmp_path, fits, symbols, message) -> None:
    actor = _actor(tmp_path, fits, symbols)
    with pytest.raises(ValueError, match=message):
        actor._load_features()


def test_a_symbol_without_a_fitted_garch_is_refused(tmp_path) -> None:
    fit = FittedFeatures(spec=FeatureSpec(risk=RiskSpec(garch=True)), universe=("AAA",), garch={"AAA": GARCH})
    actor = _actor(tmp_path, {"a": fit}, ("AAA", "BBB"))
    with pytest.raises(ValueError, match=r"no fitted garch for \['BBB'\]"):
        actor._load_features()
