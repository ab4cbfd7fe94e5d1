"""Risk features and the pipeline that carries every block: causal, fitted on train rows only,
and the same for a live window as for the full history."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models import pipeline as P
from models import risk_features as R
from models.dataset import Panel
from tests.models.test_features import make_bars

ALL_BLOCKS = P.FeatureSpec(
    timeframes=("5m", "30m", "1h", "1d"),
    risk=P.RiskSpec(garch=True, var=True, beta=True, copula=True),
)


def _columns(frame) -> P.BarColumns:
    return (*(frame[c].to_numpy() for c in ("open", "high", "low", "close", "volume")), frame.index.asi8)


@pytest.fixture(scope="module")
def universe() -> dict[str, P.BarColumns]:
    return {f"S{i}": _columns(make_bars(n_sessions=9, seed=10 + i)) for i in range(3)}


def _train_rows(universe, n: int = 1500) -> dict[str, np.ndarray]:
    """A training window as walk-forward folds cut it: in time (S0's first ``n`` bars)."""
    end = universe["S0"][5][n - 1]
    return {s: np.flatnonzero(cols[5] <= end) for s, cols in universe.items()}


@pytest.fixture(scope="module")
def fitted(universe) -> P.FittedFeatures:
    return P.fit_features(universe, ALL_BLOCKS, _train_rows(universe))


# ------------------------------------------------------------------------------------ GARCH


def _simulate_garch(n: int, omega: float, alpha: float, beta: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r, s2 = np.empty(n), omega / (1 - alpha - beta)
    for t in range(n):
        r[t] = np.sqrt(s2) * rng.standard_normal()
        s2 = omega + alpha * r[t] ** 2 + beta * s2
    return r / 100.0  # GARCH on percent returns, as fit_garch scales them


def test_garch_fit_recovers_known_parameters() -> None:
    params = R.fit_garch(_simulate_garch(8000, 0.02, 0.10, 0.85))
    assert params.alpha == pytest.approx(0.10, abs=0.04)
    assert params.beta == pytest.approx(0.85, abs=0.06)


@pytest.mark.parametrize("returns", [np.zeros(500), np.full(500, np.nan), np.zeros(3), np.array([])])
def test_garch_on_a_constant_or_tiny_series_gives_a_flat_forecast(returns: np.ndarray) -> None:
    params = R.fit_garch(returns)
    assert (params.alpha, params.beta) == (0.0, 0.0)
    ts = np.arange(len(returns), dtype=np.int64) * 60_000_000_000 + 1_700_000_000_000_000_000
    vol = R.garch_volatility(params, returns, ts)
    assert np.isfinite(vol).all()


def test_garch_forecast_at_t_uses_no_return_after_t() -> None:
    bars = make_bars(n_sessions=4, seed=2)
    ts, returns = bars.index.asi8, R.intraday_returns(bars["close"].to_numpy(), bars.index.asi8)
    params = R.GarchParams(omega=0.001, alpha=0.08, beta=0.9, seed_var=0.01)
    full = R.garch_volatility(params, returns, ts)
    for t in (0, 1, 200, 389, 390, 800, len(ts) - 2):
        np.testing.assert_array_equal(R.garch_volatility(params, returns[: t + 1], ts[: t + 1]), full[: t + 1])
        shocked = returns.copy()
        shocked[t + 1 :] *= 50.0
        after = R.garch_volatility(params, shocked, ts)
        np.testing.assert_array_equal(after[: t + 1], full[: t + 1])
        if np.isfinite(returns[t + 1]) and returns[t + 1] != 0:
            assert after[t + 1] != full[t + 1]  # ... and the next row does react


# ----------------------------------------------------------------------------------- copula


def _t_copula_sample(rho: float, nu: float, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], n)
    w = np.sqrt(nu / rng.chisquare(nu, n))[:, None]
    x = z * w
    return x[:, 0] * 0.01, np.exp(x[:, 1])  # monotone margins do not change the copula


def test_t_copula_fit_recovers_rho_nu_and_tail_dependence() -> None:
    copula = R.fit_t_copula(*_t_copula_sample(0.6, 4.0, 6000))
    assert copula.rho == pytest.approx(0.6, abs=0.04)
    assert 2.5 <= copula.nu <= 7.0
    expected = 2 * stats.t.cdf(-np.sqrt(5 * 0.4 / 1.6), 5)
    assert copula.lower_tail_dependence == pytest.approx(expected, abs=0.06)
    independent = R.fit_t_copula(*_t_copula_sample(0.0, 200.0, 6000, seed=1))
    assert abs(independent.rho) < 0.05 and independent.lower_tail_dependence < 0.02


def test_t_copula_on_degenerate_input_is_the_independence_limit() -> None:
    copula = R.fit_t_copula(np.zeros(500), np.arange(500.0))
    assert copula.rho == 0.0 and copula.lower_tail_dependence < 1e-6


# ------------------------------------------------------------------ windows and the proxy


def test_var_cvar_match_a_direct_computation() -> None:
    rng = np.random.default_rng(4)
    returns = rng.standard_t(4, 2000) * 1e-3
    returns[::97] = np.nan  # session starts
    var, cvar = R.var_cvar(returns, 200, 0.95)
    valid = np.flatnonzero(np.isfinite(returns))
    for t in (valid[199], 1000, 1999):
        window = returns[valid[valid <= t][-200:]]
        worst = np.sort(window)[:10]
        assert var[t] == -worst[-1] and cvar[t] == pytest.approx(-worst.mean(), rel=1e-12)
    assert np.isnan(var[: valid[199]]).all()


def test_beta_and_correlation_use_only_earlier_pairs() -> None:
    rng = np.random.default_rng(6)
    proxy = rng.normal(0, 1e-3, 3000)
    returns = 2.0 * proxy + rng.normal(0, 5e-4, 3000)
    beta, corr = R.beta_corr(returns, proxy, 390)
    assert beta[-1] == pytest.approx(2.0, abs=0.1) and 0.9 < corr[-1] < 1.0
    assert np.isnan(beta[:390]).all() and np.isfinite(beta[390:]).all()
    shocked = returns.copy()
    shocked[2000] = 1.0
    after, _ = R.beta_corr(shocked, proxy, 390)
    np.testing.assert_array_equal(after[:2001], beta[:2001])  # row 2000 itself excludes it
    assert after[2001] != beta[2001]


def test_equal_weight_proxy_is_the_same_in_any_symbol_order(universe) -> None:
    returns = {s: (c[5], R.intraday_returns(c[3], c[5])) for s, c in universe.items()}
    ts, proxy = R.market_proxy(returns)
    ts_rev, proxy_rev = R.market_proxy(dict(reversed(returns.items())))
    np.testing.assert_array_equal(ts, ts_rev)
    np.testing.assert_array_equal(proxy, proxy_rev)
    one = returns["S0"]
    np.testing.assert_array_equal(R.market_proxy(returns, "S0")[1], one[1])


# ---------------------------------------------------------------------------- the pipeline


def test_fitted_parameters_see_only_the_training_rows(universe, fitted) -> None:
    # Rewrite every bar after the training rows (prices x3 with noise): nothing fitted moves.
    rng = np.random.default_rng(9)
    perturbed = {}
    for symbol, cols in universe.items():
        new = [c.copy() for c in cols]
        after = cols[5] > universe["S0"][5][1499]
        for j in range(4):
            new[j][after] *= 3.0 * np.exp(rng.normal(0, 1e-2, after.sum()))
        perturbed[symbol] = tuple(new)
    assert P.fit_features(perturbed, ALL_BLOCKS, _train_rows(universe)) == fitted
    assert P.fit_features(perturbed, ALL_BLOCKS, _train_rows(universe, 2500)) != fitted


def test_every_block_is_causal_under_truncation(universe, fitted) -> None:
    full = P.compute_features(universe, ALL_BLOCKS, fitted)
    names = P.feature_names(ALL_BLOCKS)
    assert full["S0"].shape[1] == len(names) == len(set(names))
    assert np.isfinite(full["S0"][-1]).all()
    cut_ts = universe["S0"][5][[400, 2000, 3000]]
    for cut in cut_ts:
        truncated = {s: tuple(c[cols[5] <= cut] for c in cols)
                     for s, cols in universe.items()}
        part = P.compute_features(truncated, ALL_BLOCKS, fitted)
        for symbol, values in part.items():
            np.testing.assert_array_equal(values, full[symbol][: len(values)], err_msg=f"{symbol} cut {cut}")


def test_a_live_window_gives_the_full_history_row(universe, fitted) -> None:
    lookback = P.lookback_bars(ALL_BLOCKS)
    assert lookback == 7 * 390  # the daily block's 5-session window sets it
    full = P.compute_features(universe, ALL_BLOCKS, fitted)
    window = {s: tuple(c[-lookback:] for c in cols) for s, cols in universe.items()}
    live = P.compute_features(window, ALL_BLOCKS, fitted, symbols=["S1"])
    assert list(live) == ["S1"]
    np.testing.assert_allclose(live["S1"][-1], full["S1"][-1], rtol=1e-9, atol=1e-12)
    # What the actor asks for: only its models' history of rows, the risk windows' bits intact.
    history = 60
    last = P.compute_features(window, ALL_BLOCKS, fitted, symbols=["S1"], last_rows=history)["S1"]
    np.testing.assert_array_equal(last[-history:], live["S1"][-history:])
    names = P.feature_names(ALL_BLOCKS)
    assert np.isnan(last[0, names.index("hist_var")]) and np.isfinite(live["S1"][0]).any()


def test_the_last_rows_of_an_index_proxy_missing_minutes_keep_the_full_beta(universe) -> None:
    """Beta's window counts jointly valid pairs: where the index misses minutes the symbol
    traded, those pairs reach further back than the symbol's own last returns."""
    thin = np.random.default_rng(3).random(len(universe["S0"][5])) > 0.2
    bars = {**universe, "S0": tuple(c[thin] for c in universe["S0"])}
    spec = P.FeatureSpec(risk=P.RiskSpec(beta=True, market_proxy="S0"))
    full = P.compute_features(bars, spec, symbols=["S1"])["S1"]
    last = P.compute_features(bars, spec, symbols=["S1"], last_rows=60)["S1"]
    assert np.isfinite(full[-60:, -2:]).all()
    np.testing.assert_array_equal(last[-60:], full[-60:])


def test_unfitted_columns_are_nan_and_the_default_spec_is_the_base_set(universe) -> None:
    values = P.compute_features(universe, ALL_BLOCKS)["S0"]
    names = P.feature_names(ALL_BLOCKS)
    for name in P.fitted_names(ALL_BLOCKS):
        assert np.isnan(values[:, names.index(name)]).all()
    from models.features import FEATURE_NAMES, feature_matrix

    assert P.feature_names(P.FeatureSpec()) == FEATURE_NAMES
    np.testing.assert_array_equal(P.compute_features(universe, P.FeatureSpec())["S2"],
                                  feature_matrix(*universe["S2"]))


def test_fitted_features_round_trip_through_a_model_directory(tmp_path, fitted) -> None:
    assert P.load_fitted(tmp_path) == P.FittedFeatures()  # a model saved before feature specs
    fitted.save(tmp_path)
    assert P.load_fitted(tmp_path) == fitted


def test_a_named_index_proxy_replaces_the_equal_weight_mean(universe) -> None:
    spec = P.FeatureSpec(risk=P.RiskSpec(beta=True, market_proxy="S2"))
    values = P.compute_features(universe, spec)
    beta = P.feature_names(spec).index("beta_mkt")
    assert values["S2"][-1, beta] == pytest.approx(1.0, rel=1e-9)  # the index against itself
    equal_weight = P.compute_features(universe, P.FeatureSpec(risk=P.RiskSpec(beta=True)))
    assert values["S0"][-1, beta] != equal_weight["S0"][-1, beta]


def test_fitting_a_fold_keeps_every_panel_field_but_the_fitted_columns(universe) -> None:
    """The models of a fold train on the panel fit_fold returns: losing the labels' ends there
    would silently turn off the purge of their validation tails."""
    spec = P.FeatureSpec(risk=P.RiskSpec(garch=True))
    X, names = P.compute_features(universe, spec), P.feature_names(spec)
    panel = Panel.concat([
        Panel(X=X[s], y=np.full(len(c[5]), np.nan), ts_ns=c[5], symbol=np.zeros(len(c[5]), np.int32),
              segment_start=np.zeros(len(c[5]), np.int64), feature_names=names, symbols=(s,),
              label_end_ns=c[5] + 15 * 60_000_000_000)
        for s, c in universe.items()])
    train = np.flatnonzero(panel.ts_ns <= universe["S0"][5][1499])
    _, fitted_panel = P.fit_fold(panel, universe, spec, train)
    assert np.array_equal(fitted_panel.label_end_ns, panel.label_end_ns)
    assert np.array_equal(fitted_panel.ts_ns, panel.ts_ns) and fitted_panel.symbols == panel.symbols
    assert np.isnan(panel.X[:, names.index("garch_vol")]).all()
    assert np.isfinite(fitted_panel.X[:, names.index("garch_vol")]).any()
