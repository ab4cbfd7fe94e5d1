"""Risk features: GARCH(1,1) volatility forecasts, historical VaR/CVaR, beta and correlation to
a market proxy, and Student-t copula tail dependence with it.

Returns are intraday 1-minute log returns: a session's first bar has none (the overnight gap is
not a minute of risk), so every statistic below runs over the valid returns only.

What is FITTED (GARCH parameters, the copula) is fitted on a walk-forward fold's training rows
and then applied with fixed parameters to every row; what is not fitted (VaR, beta) is a trailing
window. Both are causal: a row's value uses no return after it. Cross-sectional statistics (beta,
correlation) pair a symbol's returns with the proxy's over the rows strictly BEFORE the current
one, because live, when one symbol's bar at t arrives, the other symbols' bars at t may not have
(the proxy at t is only complete once every symbol's bar at t is in).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import msgspec
import numpy as np
from scipy import stats
from scipy.signal import lfilter
from scipy.special import gammaln

from models.features import ny_day, window_sum

GARCH_SCALE = 100.0  # arch fits percent returns (arch#213: raw minute returns do not converge)
_MIN_FIT_RETURNS = 100  # fewer, or a constant series (arch#331 overflows), gets a flat forecast
_NU_GRID = np.geomspace(2.1, 200.0, 40)


class GarchParams(msgspec.Struct, frozen=True):
    """GARCH(1,1) on GARCH_SCALE-scaled returns; ``seed_var`` (the training returns' variance)
    starts each session's recursion."""

    omega: float
    alpha: float
    beta: float
    seed_var: float


class TCopula(msgspec.Struct, frozen=True):
    """Bivariate Student-t copula: correlation ``rho``, degrees of freedom ``nu``."""

    rho: float
    nu: float

    @property
    def lower_tail_dependence(self) -> float:
        """lambda_L = 2 t_{nu+1}(-sqrt((nu+1)(1-rho)/(1+rho))): the probability that one
        return is in its far lower tail given the other is (symmetric for the t copula)."""
        rho = min(self.rho, 1.0 - 1e-12)
        return float(2.0 * stats.t.cdf(-np.sqrt((self.nu + 1) * (1 - rho) / (1 + rho)), self.nu + 1))


# ------------------------------------------------------------------------------- returns


def intraday_returns(close: np.ndarray, ts_ns: np.ndarray) -> np.ndarray:
    """1-minute log returns within each New York session; NaN on a session's first bar."""
    out = np.full(len(close), np.nan)
    if len(close) > 1:
        day = ny_day(ts_ns)
        same = day[1:] == day[:-1]
        out[1:] = np.where(same, np.diff(np.log(close)), np.nan)
    return out


def market_proxy(
    returns: Mapping[str, tuple[np.ndarray, np.ndarray]], proxy: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(ts, return) of the market proxy from each symbol's (ts, intraday return).

    ``proxy`` names an index ETF among ``returns`` to use as it is; None takes the equal-weight
    mean of the symbols' valid returns at each timestamp, summed in symbol-name order so the
    batch path and a live actor (its own buffers, another dict order) get the same bits.
    """
    if proxy is not None:
        ts, r = returns[proxy]
        return ts, r
    stamps = np.unique(np.concatenate([ts for ts, _ in returns.values()]))
    total = np.zeros(len(stamps))
    count = np.zeros(len(stamps))
    for symbol in sorted(returns):
        ts, r = returns[symbol]
        at = np.searchsorted(stamps, ts)
        valid = np.isfinite(r)
        total[at[valid]] += r[valid]
        count[at[valid]] += 1
    with np.errstate(invalid="ignore"):
        return stamps, total / count  # 0/0 = NaN where no symbol has a return


def align(stamps: np.ndarray, values: np.ndarray, ts_ns: np.ndarray) -> np.ndarray:
    """``values`` at ``ts_ns`` (NaN where ``stamps`` has no such timestamp)."""
    out = np.full(len(ts_ns), np.nan)
    if len(stamps):
        at = np.minimum(np.searchsorted(stamps, ts_ns), len(stamps) - 1)
        hit = stamps[at] == ts_ns
        out[hit] = values[at[hit]]
    return out


# ---------------------------------------------------------------------- window statistics


def var_cvar(returns: np.ndarray, window: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Historical VaR and CVaR (as positive loss fractions) at ``level`` over the last
    ``window`` valid returns up to and including each row."""
    valid = np.flatnonzero(np.isfinite(returns))
    var, cvar = np.full(len(returns), np.nan), np.full(len(returns), np.nan)
    if len(valid) < window:
        return var, cvar
    window_var, window_cvar = tail_losses(
        np.lib.stride_tricks.sliding_window_view(returns[valid], window), level)
    # A row takes the statistic of the last valid return at or before it.
    k = np.cumsum(np.isfinite(returns)) - 1 - (window - 1)
    ok = k >= 0
    var[ok], cvar[ok] = window_var[k[ok]], window_cvar[k[ok]]
    return var, cvar


def tail_losses(windows: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """(VaR, CVaR) at ``level`` of each row of ``windows`` (m, window) of returns. Only the
    set of returns matters, not their order: the streaming engine passes ring buffers."""
    window = windows.shape[1]
    tail = max(1, int(np.ceil((1.0 - level) * window - 1e-9)))  # 0.05 * 200 is 10.000000000000002
    worst = np.sort(np.partition(windows, tail - 1, axis=1)[:, :tail], axis=1)
    return -worst[:, tail - 1], -worst.sum(axis=1) / tail


def beta_corr(returns: np.ndarray, proxy: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """OLS beta and Pearson correlation of ``returns`` on ``proxy`` over the last ``window``
    rows where both are valid, strictly before each row."""
    valid = np.isfinite(returns) & np.isfinite(proxy)
    beta, corr = np.full(len(returns), np.nan), np.full(len(returns), np.nan)
    if valid.sum() < window:
        return beta, corr
    x, y = proxy[valid], returns[valid]
    b, c = pair_statistics(window_sum(x, window), window_sum(y, window), window_sum(x * x, window),
                           window_sum(y * y, window), window_sum(x * y, window), window)
    # The last valid pair strictly before row t, as an index into the valid pairs.
    before = np.cumsum(valid) - valid - 1
    ok = before >= window - 1
    beta[ok], corr[ok] = b[before[ok]], c[before[ok]]
    return beta, corr


def pair_statistics(sx: np.ndarray, sy: np.ndarray, sxx: np.ndarray, syy: np.ndarray,
                    sxy: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(beta, correlation) of y on x from the sums over ``window`` pairs: one formula for the
    batch windows and the streaming engine's rings."""
    cov = sxy / window - (sx / window) * (sy / window)
    var_x = sxx / window - np.square(sx / window)
    var_y = syy / window - np.square(sy / window)
    with np.errstate(divide="ignore", invalid="ignore"):
        return cov / var_x, cov / np.sqrt(var_x * var_y)


# ------------------------------------------------------------------------------------ GARCH


def fit_garch(returns: np.ndarray) -> GarchParams:
    """GARCH(1,1), zero mean, normal errors, fitted with ``arch`` on the valid ``returns``
    (a fold's training rows only). Too few or constant returns get alpha = beta = 0: a flat
    forecast at the sample variance instead of an overflow."""
    r = returns[np.isfinite(returns)] * GARCH_SCALE
    seed_var = float(np.var(r)) if len(r) else 0.0
    if len(r) < _MIN_FIT_RETURNS or seed_var < 1e-12:
        return GarchParams(omega=seed_var, alpha=0.0, beta=0.0, seed_var=seed_var)
    from arch import arch_model  # imported here: the live actor without risk features skips it

    model = arch_model(r, mean="Zero", vol="GARCH", p=1, q=1, dist="normal", rescale=False)
    with warnings.catch_warnings():
        # A non-converged optimum is still the best point found; it is used as such.
        warnings.simplefilter("ignore")
        fitted = model.fit(disp="off", show_warning=False)
    p = fitted.params
    return GarchParams(omega=float(p["omega"]), alpha=float(p["alpha[1]"]),
                       beta=float(p["beta[1]"]), seed_var=seed_var)


def garch_variance_step(omega: np.ndarray, alpha: np.ndarray, beta: np.ndarray,
                        scaled_return: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """s2 = (omega + alpha r^2) + beta s2_prev, in the order ``garch_volatility``'s lfilter adds
    them, so a streaming recursion carries the batch path's bits."""
    return (omega + alpha * np.square(scaled_return)) + beta * previous


def garch_volatility(params: GarchParams, returns: np.ndarray, ts_ns: np.ndarray) -> np.ndarray:
    """One-step-ahead forecast of the next 1-minute return's volatility (a return fraction) at
    each row, from fixed ``params`` and the returns up to and including that row.

    s2[0] = seed_var on a session's first bar, s2[j] = omega + alpha r[j]^2 + beta s2[j-1]:
    restarting each session keeps the recursion's memory inside the session, so a live buffer
    holding the current session reproduces the batch row exactly.
    """
    return np.sqrt(garch_variance(params, returns, ts_ns)) / GARCH_SCALE


def garch_variance(params: GarchParams, returns: np.ndarray, ts_ns: np.ndarray) -> np.ndarray:
    """The recursion's s2 (of GARCH_SCALE-scaled returns) at each row: ``garch_volatility``
    before the square root, the state a streaming engine carries."""
    n = len(returns)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    day = ny_day(ts_ns)
    is_start = np.r_[True, day[1:] != day[:-1]]
    session = np.cumsum(is_start) - 1
    position = np.arange(n) - np.flatnonzero(is_start)[session]
    shock = np.zeros((session[-1] + 1, position.max() + 1))
    r = np.where(np.isfinite(returns), returns, 0.0) * GARCH_SCALE
    shock[session, position] = params.omega + params.alpha * np.square(r)
    s2 = np.empty_like(shock)
    s2[:, 0] = params.seed_var
    if shock.shape[1] > 1:
        zi = np.full((shock.shape[0], 1), params.beta * params.seed_var)
        s2[:, 1:], _ = lfilter([1.0], [1.0, -params.beta], shock[:, 1:], axis=1, zi=zi)
    out[:] = s2[session, position]
    return out


# ----------------------------------------------------------------------------------- copula


def fit_t_copula(x: np.ndarray, y: np.ndarray) -> TCopula:
    """Student-t copula of (x, y) over their jointly valid values (a fold's training rows).

    Margins are the pseudo-observations rank / (n + 1); rho comes from Kendall's tau
    (rho = sin(pi tau / 2), exact for elliptical copulas) and nu maximises the copula
    log-likelihood over a log-spaced grid. Degenerate input (fewer than 50 pairs, a constant
    series) gives the independence copula's limit: rho 0, nu at the grid's top.
    """
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 50 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return TCopula(rho=0.0, nu=float(_NU_GRID[-1]))
    tau = stats.kendalltau(x, y).statistic
    rho = float(np.clip(np.sin(np.pi * tau / 2.0), -0.999, 0.999))
    u = stats.rankdata(x) / (len(x) + 1)
    v = stats.rankdata(y) / (len(y) + 1)
    loglik = [_t_copula_loglik(u, v, rho, nu) for nu in _NU_GRID]
    return TCopula(rho=rho, nu=float(_NU_GRID[int(np.argmax(loglik))]))


def _t_copula_loglik(u: np.ndarray, v: np.ndarray, rho: float, nu: float) -> float:
    a, b = stats.t.ppf(u, nu), stats.t.ppf(v, nu)
    one = 1.0 - rho * rho
    joint = (gammaln((nu + 2) / 2) - gammaln(nu / 2) - np.log(nu * np.pi) - 0.5 * np.log(one)
             - (nu + 2) / 2 * np.log1p((a * a - 2 * rho * a * b + b * b) / (nu * one)))
    return float(np.sum(joint - stats.t.logpdf(a, nu) - stats.t.logpdf(b, nu)))
