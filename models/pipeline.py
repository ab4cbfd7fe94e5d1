"""The feature pipeline: one function the walk-forward batch path and the live actor both call.

``compute_features`` turns 1-minute bars into the model's feature rows: the base set
(``models.features``), then the blocks a ``FeatureSpec`` switches on: multi-timeframe features
(``models.timeframes``) and risk features (``models.risk_features``). The default spec is the
base set alone.

Two risk blocks are FITTED: GARCH(1,1) parameters and the Student-t copula, per symbol, on a
walk-forward fold's training rows only (``fit_features``). A ``FittedFeatures`` is saved next to
each model of the fold (``features.json`` in the model's registry directory) and the live actor
loads it, so both paths apply the same fixed parameters. Until fitted, those columns are NaN.

Named columns the strategy side may rely on:
* ``garch_vol``: the GARCH one-step-ahead forecast of the next 1-minute log return's standard
  deviation (a return fraction, e.g. 0.0008), from returns up to and including the row.
* ``hist_var`` / ``hist_cvar``: historical VaR and CVaR of a 1-minute return at
  ``risk.var_level`` over the last ``risk.window`` returns (positive loss fractions).
* ``beta_mkt`` / ``corr_mkt``: beta and correlation to the market proxy over the last
  ``risk.window`` paired returns before the row; ``copula_tail_dep``: the fitted t copula's
  lower tail dependence with the proxy (constant within a fold).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated

import msgspec
import numpy as np
from msgspec import Meta

from models.dataset import Panel
from models.features import FEATURE_NAMES, LOOKBACK_BARS, feature_matrix
from models.risk_features import (
    GarchParams,
    TCopula,
    align,
    beta_corr,
    fit_garch,
    fit_t_copula,
    garch_volatility,
    intraday_returns,
    market_proxy,
    var_cvar,
)
from models.timeframes import Timeframe, timeframe_features, timeframe_lookback, timeframe_names

FEATURES_FILE = "features.json"
GARCH_VOL = "garch_vol"
COPULA_TAIL_DEP = "copula_tail_dep"
_BARS_PER_SESSION = 390

# (open, high, low, close, volume, ts_ns) of one symbol, oldest first: BarBuffer.columns().
BarColumns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class _Spec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class RiskSpec(_Spec):
    """Which risk blocks to compute; ``window`` is in 1-minute returns (390 = one session)."""

    garch: bool = False
    var: bool = False
    beta: bool = False
    copula: bool = False
    window: Annotated[int, Meta(ge=20, le=5000)] = 390
    var_level: Annotated[float, Meta(ge=0.5, le=0.999)] = 0.95
    # An index ETF in the universe to use as the market; None: the universe's equal-weight mean.
    market_proxy: str | None = None

    @property
    def needs_proxy(self) -> bool:
        return self.beta or self.copula


class FeatureSpec(_Spec):
    """The feature blocks a run computes (the ``features`` section of a walk-forward config)."""

    timeframes: tuple[Timeframe, ...] = ()
    risk: RiskSpec = RiskSpec()

    def __post_init__(self) -> None:
        repeated = sorted({tf for tf in self.timeframes if self.timeframes.count(tf) > 1})
        if repeated:
            raise ValueError(f"'timeframes' lists {', '.join(repeated)} more than once")


class FittedFeatures(_Spec):
    """What a fold fitted, per symbol, plus the spec and the universe (the equal-weight proxy's
    members) it was fitted with: everything live needs to compute the batch path's rows."""

    spec: FeatureSpec = FeatureSpec()
    universe: tuple[str, ...] = ()
    garch: dict[str, GarchParams] = {}
    copula: dict[str, TCopula] = {}

    def save(self, dir: Path) -> None:
        (Path(dir) / FEATURES_FILE).write_bytes(msgspec.json.encode(self))


def load_fitted(dir: Path) -> FittedFeatures:
    """The fitted features saved with a model; a model saved before feature specs existed
    used the base set, which is what an absent file means."""
    path = Path(dir) / FEATURES_FILE
    if not path.is_file():
        return FittedFeatures()
    return msgspec.json.decode(path.read_bytes(), type=FittedFeatures)


def feature_names(spec: FeatureSpec) -> tuple[str, ...]:
    """Column names of ``compute_features`` under ``spec``, in order."""
    risk = spec.risk
    return (
        *FEATURE_NAMES,
        *timeframe_names(spec.timeframes),
        *(("hist_var", "hist_cvar") if risk.var else ()),
        *(("beta_mkt", "corr_mkt") if risk.beta else ()),
        *((GARCH_VOL,) if risk.garch else ()),
        *((COPULA_TAIL_DEP,) if risk.copula else ()),
    )


def fitted_names(spec: FeatureSpec) -> tuple[str, ...]:
    """The columns that stay NaN until ``fit_features`` has run."""
    return (*((GARCH_VOL,) if spec.risk.garch else ()), *((COPULA_TAIL_DEP,) if spec.risk.copula else ()))


def lookback_bars(spec: FeatureSpec) -> int:
    """Bars a live buffer must hold for its last row to equal the full-history row: the base
    set's, the slowest timeframe's, and the risk window's (valid returns skip each session's
    first bar) plus the current session for the GARCH recursion."""
    risk_need = spec.risk.window + spec.risk.window // (_BARS_PER_SESSION - 1) + 2 + _BARS_PER_SESSION
    return max(LOOKBACK_BARS, timeframe_lookback(spec.timeframes),
               risk_need if spec.risk != RiskSpec() else 0)


def compute_features(
    bars: Mapping[str, BarColumns],
    spec: FeatureSpec,
    fitted: FittedFeatures | None = None,
    symbols: Iterable[str] | None = None,
    proxy: tuple[np.ndarray, np.ndarray] | None = None,
    last_rows: int | None = None,
) -> dict[str, np.ndarray]:
    """(n, len(feature_names(spec))) float64 features of each of ``symbols`` (default: all).

    ``bars`` holds every symbol of the universe: the market proxy is their cross-section
    (``proxy_returns``), unless ``proxy`` brings it precomputed. The fitted columns come from
    ``fitted`` (NaN without it). ``last_rows`` (the live actor: its models' history) computes
    the VaR and beta windows only for the last rows, NaN before: their window statistics do
    not depend on where the input starts, so those rows keep the full computation's bits.
    """
    wanted = list(bars) if symbols is None else list(symbols)
    if spec.risk.beta and proxy is None:
        proxy = proxy_returns(bars, spec.risk)
    out = {}
    for symbol in wanted:
        o, h, low, c, v, ts = bars[symbol]
        blocks = [feature_matrix(o, h, low, c, v, ts)]
        if spec.timeframes:
            blocks.append(timeframe_features(h, low, c, ts, spec.timeframes))
        returns = intraday_returns(c, ts)
        start = 0 if last_rows is None else _window_start(returns, spec.risk.window, last_rows)
        tail = returns[start:]
        if spec.risk.var:
            blocks.extend(_pad(b, start) for b in var_cvar(tail, spec.risk.window, spec.risk.var_level))
        if spec.risk.beta:
            market = align(*proxy, ts)
            # Beta's window counts pairs, which an index proxy's missing minutes make fewer
            # than the symbol's returns: its suffix starts at the pairs' own window start.
            paired = 0 if last_rows is None else _window_start(
                np.where(np.isfinite(market), returns, np.nan), spec.risk.window, last_rows)
            pairs = beta_corr(returns[paired:], market[paired:], spec.risk.window)
            blocks.extend(_pad(b, paired) for b in pairs)
        if fitted_names(spec):
            blocks.append(_fitted_columns(spec, fitted, symbol, returns, ts))
        out[symbol] = np.column_stack(blocks)
    return out


def _window_start(returns: np.ndarray, window: int, last_rows: int) -> int:
    """First row of a suffix holding every return the windows of the last ``last_rows`` rows
    reach: ``window`` valid returns before the earliest of them, and one more for the pairs
    that end strictly before a row."""
    valid = np.flatnonzero(np.isfinite(returns))
    return int(valid[max(0, len(valid) - window - last_rows - 1)]) if len(valid) else 0


def _pad(values: np.ndarray, start: int) -> np.ndarray:
    return np.r_[np.full(start, np.nan), values]


def fit_features(
    bars: Mapping[str, BarColumns], spec: FeatureSpec, train_rows: Mapping[str, np.ndarray]
) -> FittedFeatures:
    """Fit the GARCH and copula blocks per symbol on its ``train_rows`` (row indices into its
    bars) only: a return or proxy value outside them never reaches the parameters."""
    risk = spec.risk
    proxy = proxy_returns(bars, risk) if risk.copula else None
    garch, copula = {}, {}
    for symbol, rows in train_rows.items():
        _, _, _, close, _, ts = bars[symbol]
        returns = intraday_returns(close, ts)
        if risk.garch:
            garch[symbol] = fit_garch(returns[rows])
        if proxy is not None:
            copula[symbol] = fit_t_copula(returns[rows], align(*proxy, ts)[rows])
    return FittedFeatures(spec=spec, universe=tuple(bars), garch=garch, copula=copula)


def fit_fold(
    panel: Panel, bars: Mapping[str, BarColumns], spec: FeatureSpec, train: np.ndarray
) -> tuple[FittedFeatures, Panel]:
    """Fit on a fold's ``train`` rows of ``panel`` (one segment per symbol, its whole bar
    history, as ``compute_features`` built it) and return the panel with the fitted columns
    filled for every row: the train rows and the test rows after them alike."""
    codes = panel.symbol[train]
    rows = {panel.symbols[k]: train[codes == k] - panel.segment_start[train[codes == k]]
            for k in np.unique(codes)}
    fitted = fit_features(bars, spec, rows)
    return fitted, with_fitted(panel, bars, fitted)


def with_fitted(panel: Panel, bars: Mapping[str, BarColumns], fitted: FittedFeatures) -> Panel:
    """``panel`` with the fitted columns computed from ``fitted`` for every row: a fold's own
    fit (``fit_fold``), or a saved model's when it predicts later sessions (the nightly
    evaluation of a champion)."""
    spec = fitted.spec
    names = fitted_names(spec)
    if not names:
        return panel
    X = panel.X.copy()
    columns = [panel.feature_names.index(n) for n in names]
    for k, symbol in enumerate(panel.symbols):
        if symbol not in fitted.garch and symbol not in fitted.copula:
            continue  # no training rows: its fitted columns stay NaN, its rows unusable
        where = np.flatnonzero(panel.symbol == k)
        _, _, _, close, _, ts = bars[symbol]
        values = _fitted_columns(spec, fitted, symbol, intraday_returns(close, ts), ts)
        X[np.ix_(where, columns)] = values[where - panel.segment_start[where]]
    return dataclasses.replace(panel, X=X)  # every other field kept (labels' ends too)


def proxy_returns(bars: Mapping[str, BarColumns], risk: RiskSpec) -> tuple[np.ndarray, np.ndarray]:
    """(ts, return) of the market proxy: ``risk.market_proxy``'s intraday returns, or the
    equal-weight mean of every symbol's in ``bars``."""
    if risk.market_proxy is not None and risk.market_proxy not in bars:
        raise KeyError(f"market proxy {risk.market_proxy!r} is not among the symbols {sorted(bars)}")
    members = list(bars) if risk.market_proxy is None else [risk.market_proxy]
    returns = {s: (bars[s][5], intraday_returns(bars[s][3], bars[s][5])) for s in members}
    return market_proxy(returns, risk.market_proxy)


def _fitted_columns(
    spec: FeatureSpec, fitted: FittedFeatures | None, symbol: str, returns: np.ndarray, ts: np.ndarray
) -> np.ndarray:
    n = len(returns)
    out = np.full((n, len(fitted_names(spec))), np.nan)
    if fitted is None:
        return out
    j = 0
    if spec.risk.garch:
        out[:, j] = garch_volatility(fitted.garch[symbol], returns, ts)
        j += 1
    if spec.risk.copula:
        out[:, j] = fitted.copula[symbol].lower_tail_dependence
    return out

