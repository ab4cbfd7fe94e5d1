"""Overfitting statistics of a tuning study: the Deflated Sharpe Ratio and the PBO.

A study that tries N settings and keeps the best reports a maximum, and the maximum of N noisy
Sharpe ratios is high even when every setting is worthless. Two corrections answer the two
questions a user has about the winner:

- Is its Sharpe more than luck? The Deflated Sharpe Ratio (Bailey & Lopez de Prado, "The
  Deflated Sharpe Ratio", Journal of Portfolio Management 40(5), 2014) is the Probabilistic
  Sharpe Ratio (Bailey & Lopez de Prado, "The Sharpe Ratio Efficient Frontier", Journal of Risk
  15(2), 2012) measured against the Sharpe the best of N worthless trials would be expected to
  show, with the standard error widened by the returns' skew and fat tails.
- Does picking the in-sample best pick a good trial out of sample? The Probability of Backtest
  Overfitting by combinatorially symmetric cross-validation (Bailey, Borwein, Lopez de Prado &
  Zhu, "The Probability of Backtest Overfitting", Journal of Computational Finance 20(4), 2017).

Conventions: Sharpe ratios are per period (daily for daily returns), as the formulas need them;
annualising happens only in the verdict text. Kurtosis is NON-excess (Pearson's: 3 for a normal
distribution); scipy and pandas report excess kurtosis, which is 3 lower, and plugging it in
overstates the DSR (0.9018 instead of 0.9004 in the 2014 paper's example). Pure numpy/scipy: a
study calls this with the matrix of its trials' daily out-of-sample returns.
"""

import itertools
import math
import numbers
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

EULER_MASCHERONI = 0.5772156649015329
DSR_CONFIDENCE = 0.95  # a DSR below this does not reject "the best of N worthless trials"
PBO_LIMIT = 0.5  # above this, the in-sample best lands in the bottom half out of sample more often

# Pearson's bound kurtosis >= 1 + skew^2 holds with equality for a two-point series; round-off in
# the sample moments of such a series must not turn it into an error.
_KURTOSIS_BOUND_TOLERANCE = 1e-9


class OverfittingInputError(Exception):
    """Returns or moments the statistics cannot be computed from; the message says what is wrong."""


@dataclass(frozen=True)
class ReturnMoments:
    """What the Probabilistic Sharpe Ratio needs to know about a return series.

    ``kurtosis`` is non-excess (3 for a normal distribution). Build one from returns with
    ``ReturnMoments.of``, or from published figures directly.
    """

    sharpe: float  # per period, mean / standard deviation (ddof=1), as the study's Sharpe
    n_obs: int
    skew: float
    kurtosis: float

    def __post_init__(self) -> None:
        _require_int("n_obs", self.n_obs, minimum=2)
        for name in ("sharpe", "skew", "kurtosis"):
            _require_finite(name, getattr(self, name))
        bound = 1.0 + self.skew**2
        if self.kurtosis < bound * (1.0 - _KURTOSIS_BOUND_TOLERANCE):
            raise OverfittingInputError(
                f"kurtosis {self.kurtosis:g} is below 1 + skew^2 = {bound:g}, which no "
                "distribution has: pass the non-excess (Pearson) kurtosis, 3 for a normal one "
                "(scipy and pandas report excess kurtosis: add 3)"
            )

    @classmethod
    def of(cls, returns: ArrayLike) -> "ReturnMoments":
        """Sample moments of one return series.

        Skew and kurtosis are the plain (biased) sample moments: they are the moments of the
        observed distribution itself, so Pearson's bound holds for them, which scipy's
        bias-corrected estimates do not guarantee on short series.
        """
        series = np.asarray(returns, dtype=float)
        if series.ndim != 1:
            raise OverfittingInputError(f"returns must be one series, got shape {series.shape}")
        _require_all_finite("returns", series)
        if len(series) < 2:
            raise OverfittingInputError(f"returns need at least 2 values, got {len(series)}")
        if np.ptp(series) == 0:
            raise OverfittingInputError(
                "returns are constant (a trial that never traded?): their skew and kurtosis are "
                "undefined"
            )
        return cls(
            sharpe=float(_sharpe(series.mean(), series.std(ddof=1))),
            n_obs=len(series),
            skew=float(stats.skew(series)),
            kurtosis=float(stats.kurtosis(series)) + 3.0,  # scipy gives excess kurtosis
        )


def probabilistic_sharpe_ratio(
    observed: ReturnMoments | ArrayLike, sr_benchmark: float = 0.0
) -> float:
    """Probability that the true Sharpe exceeds ``sr_benchmark`` (per period), given the sample.

    A Sharpe estimated from T returns has a standard error that grows with negative skew and fat
    tails (Bailey & Lopez de Prado 2012, after Mertens 2002); a normal-theory test would call
    crash-prone strategies significant far too easily.
    """
    moments = observed if isinstance(observed, ReturnMoments) else ReturnMoments.of(observed)
    _require_finite("sr_benchmark", sr_benchmark)
    sr = moments.sharpe
    variance = 1.0 - moments.skew * sr + (moments.kurtosis - 1.0) / 4.0 * sr**2
    if variance <= 0.0:
        raise OverfittingInputError(
            f"the Sharpe ratio's standard error is zero for sharpe {sr:g}, skew {moments.skew:g}, "
            f"kurtosis {moments.kurtosis:g} (a two-point series at sharpe = 2 / skew)"
        )
    z = (sr - sr_benchmark) * math.sqrt(moments.n_obs - 1) / math.sqrt(variance)
    return float(stats.norm.cdf(z))


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """The Sharpe the best of ``n_trials`` worthless trials is expected to show.

    Extreme-value approximation of the expected maximum of N independent Sharpe estimates with
    true Sharpe 0 and variance ``sharpe_variance`` (Bailey & Lopez de Prado 2014, after the
    False Strategy theorem): the bar a study's winner has to clear before it means anything.
    Per period if the variance is per period; the factor alone is the value at variance 1.
    """
    _require_int("n_trials", n_trials, minimum=2)
    _require_finite("sharpe_variance", sharpe_variance)
    if sharpe_variance < 0:
        raise OverfittingInputError(f"sharpe_variance must be >= 0, got {sharpe_variance:g}")
    factor = (1.0 - EULER_MASCHERONI) * stats.norm.ppf(1.0 - 1.0 / n_trials) + (
        EULER_MASCHERONI * stats.norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    )
    return float(math.sqrt(sharpe_variance) * factor)


def deflated_sharpe_ratio(
    best: ReturnMoments | ArrayLike, n_trials: int, sharpe_variance: float
) -> float:
    """Probability that the best trial's true Sharpe beats the best of ``n_trials`` worthless ones.

    ``sharpe_variance`` is the variance of the trials' per-period Sharpe ratios: the more the
    trials disagree, the higher a lucky maximum climbs (Bailey & Lopez de Prado 2014).
    """
    return probabilistic_sharpe_ratio(best, expected_max_sharpe(n_trials, sharpe_variance))


@dataclass(frozen=True)
class DeflatedSharpe:
    """The DSR of a study's best trial, with what went into it (for the report)."""

    best_trial: int  # column of the trial-returns matrix
    best: ReturnMoments
    n_trials: int
    sharpe_variance: float  # of the trials' per-period Sharpe ratios
    expected_max_sharpe: float  # per period: the bar the best trial had to clear
    dsr: float


def deflated_sharpe_of_trials(trial_returns: ArrayLike, n_tried: int | None = None) -> DeflatedSharpe:
    """The DSR of the best column of a T x N matrix of per-period returns (time x trials).

    Every column counts in N and in the variance, including trials that never traded (Sharpe
    0): leaving tries out is exactly the selection bias the DSR corrects. ``n_tried`` (default:
    the columns) is the number of settings actually tried when some have no full return series
    (a study's pruned and failed trials): they deflate through N, since each was a chance to
    find a lucky maximum, while the variance comes from the complete series only.
    """
    matrix = _trial_matrix(trial_returns, min_rows=2)
    sharpes = _sharpe(matrix.mean(axis=0), matrix.std(axis=0, ddof=1))
    best_trial = int(np.argmax(sharpes))
    n_trials = matrix.shape[1] if n_tried is None else n_tried
    _require_int("n_tried", n_trials, minimum=matrix.shape[1])
    variance = float(np.var(sharpes, ddof=1))
    best = ReturnMoments.of(matrix[:, best_trial])
    bar = expected_max_sharpe(n_trials, variance)
    return DeflatedSharpe(
        best_trial=best_trial,
        best=best,
        n_trials=n_trials,
        sharpe_variance=variance,
        expected_max_sharpe=bar,
        dsr=probabilistic_sharpe_ratio(best, bar),
    )


@dataclass(frozen=True)
class ProbabilityOfOverfitting:
    """PBO and the logit of every split, for the report's histogram.

    A logit <= 0 is a split where the in-sample best trial ranked in the bottom half out of
    sample; PBO is their share.
    """

    pbo: float
    logits: tuple[float, ...]  # one per combination of n_blocks / 2 training blocks
    n_blocks: int


def pbo_cscv(trial_returns: ArrayLike, n_blocks: int = 16) -> ProbabilityOfOverfitting:
    """Probability of Backtest Overfitting by combinatorially symmetric cross-validation.

    The T x N matrix (time x trials) is cut into ``n_blocks`` contiguous blocks of equal length
    (the T mod n_blocks oldest rows are dropped, so that every training half and its testing
    half have the same length: the symmetry the method is named after). For every choice of
    half the blocks as training set, the trial with the best training Sharpe is ranked among all
    trials by its Sharpe on the other half. Using every combination, rather than one split,
    makes the estimate a property of the selection procedure, not of one lucky cut (Bailey,
    Borwein, Lopez de Prado & Zhu 2017); 16 blocks is the paper's choice.
    """
    matrix = _trial_matrix(trial_returns, min_rows=1)
    _require_int("n_blocks", n_blocks, minimum=2)
    if n_blocks % 2:
        raise OverfittingInputError(f"n_blocks must be even, got {n_blocks}")
    n_rows, n_trials = matrix.shape
    if n_rows < 2 * n_blocks:
        raise OverfittingInputError(
            f"pbo_cscv needs at least {2 * n_blocks} rows for {n_blocks} blocks (2 per block), "
            f"got {n_rows}"
        )
    block_rows = n_rows // n_blocks
    blocks = matrix[n_rows - block_rows * n_blocks :].reshape(n_blocks, block_rows, n_trials)
    # Sums per block let every half's Sharpe come from a matrix product instead of a pass over
    # the rows: C(16, 8) = 12,870 halves.
    block_sums = blocks.sum(axis=1)
    block_squares = (blocks**2).sum(axis=1)
    halves = list(itertools.combinations(range(n_blocks), n_blocks // 2))
    training = np.zeros((len(halves), n_blocks))
    training[np.repeat(np.arange(len(halves)), n_blocks // 2), np.ravel(halves)] = 1.0
    half_rows = block_rows * n_blocks // 2
    testing = 1.0 - training
    train_sharpe = _half_sharpe(training @ block_sums, training @ block_squares, half_rows)
    test_sharpe = _half_sharpe(testing @ block_sums, testing @ block_squares, half_rows)
    chosen = np.argmax(train_sharpe, axis=1)
    ranks = stats.rankdata(test_sharpe, axis=1)  # 1 = worst out of sample, ties share a rank
    relative_rank = ranks[np.arange(len(halves)), chosen] / (n_trials + 1)
    logits = np.log(relative_rank / (1.0 - relative_rank))
    return ProbabilityOfOverfitting(
        pbo=float(np.mean(logits <= 0.0)),
        logits=tuple(float(value) for value in logits),
        n_blocks=n_blocks,
    )


@dataclass(frozen=True)
class OverfittingReport:
    """A study's DSR and PBO, and the one line a user can act on."""

    deflated: DeflatedSharpe
    overfitting: ProbabilityOfOverfitting
    periods_per_year: int  # annualises the Sharpe ratios quoted in the verdict

    def __post_init__(self) -> None:
        _require_int("periods_per_year", self.periods_per_year, minimum=1)

    @property
    def verdict(self) -> str:
        """Luck first (DSR), then whether choosing the in-sample best carries over (PBO)."""
        annual = math.sqrt(self.periods_per_year)
        best = self.deflated.best.sharpe * annual
        bar = self.deflated.expected_max_sharpe * annual
        n_trials = self.deflated.n_trials
        dsr, pbo = self.deflated.dsr, self.overfitting.pbo
        sharpe = f"the best trial's Sharpe ({best:.2f} annualised)"
        odds = f"DSR {dsr:.2f}, PBO {pbo:.2f}"
        if dsr < DSR_CONFIDENCE:
            return (
                f"{sharpe} is not distinguishable from the best of {n_trials} random tries "
                f"(expected {bar:.2f}; {odds}): do not trade it on this evidence"
            )
        if pbo > PBO_LIMIT:
            return (
                f"{sharpe} beats the best of {n_trials} random tries ({odds}), but the in-sample "
                "best trial ranks in the bottom half out of sample in most splits: the choice "
                "among trials is overfit, trust the holdout, not the study's ranking"
            )
        return (
            f"{sharpe} beats the best of {n_trials} random tries and the in-sample best stays "
            f"in the top half out of sample ({odds}): confirm it on the holdout"
        )


def overfitting_report(
    trial_returns: ArrayLike, periods_per_year: int, n_blocks: int = 16, n_tried: int | None = None
) -> OverfittingReport:
    """DSR and PBO of a study from its T x N matrix of per-period out-of-sample returns;
    ``n_tried`` as in ``deflated_sharpe_of_trials`` (the PBO ranks the complete columns only)."""
    return OverfittingReport(
        deflated=deflated_sharpe_of_trials(trial_returns, n_tried),
        overfitting=pbo_cscv(trial_returns, n_blocks),
        periods_per_year=periods_per_year,
    )


def _sharpe(mean: np.ndarray | float, std: np.ndarray | float) -> np.ndarray:
    """Per-period Sharpe; a flat series (a trial that never traded) earned nothing: 0, not NaN."""
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    return np.divide(mean, std, out=np.zeros(np.broadcast(mean, std).shape), where=std > 0)


def _half_sharpe(sums: np.ndarray, squares: np.ndarray, n_rows: int) -> np.ndarray:
    """Sharpe (ddof=1) of each half from its column sums and sums of squares."""
    mean = sums / n_rows
    variance = np.maximum((squares - sums * mean) / (n_rows - 1), 0.0)  # round-off below 0
    return _sharpe(mean, np.sqrt(variance))


def _trial_matrix(trial_returns: ArrayLike, min_rows: int) -> np.ndarray:
    matrix = np.asarray(trial_returns, dtype=float)
    if matrix.ndim != 2:
        raise OverfittingInputError(
            f"trial returns must be a T x N matrix (time x trials), got shape {matrix.shape}"
        )
    if matrix.shape[1] < 2:
        raise OverfittingInputError(
            f"trial returns need at least 2 trials (columns), got {matrix.shape[1]}"
        )
    if matrix.shape[0] < min_rows:
        raise OverfittingInputError(
            f"trial returns need at least {min_rows} rows, got {matrix.shape[0]}"
        )
    _require_all_finite("trial returns", matrix)
    return matrix


def _require_all_finite(name: str, values: np.ndarray) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise OverfittingInputError(
            f"{name} hold {int(bad.sum())} NaN or infinite value(s), the first at index {first}: "
            "every trial needs a return for every period (0 for a day without trading)"
        )


def _require_finite(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise OverfittingInputError(f"{name} must be a finite number, got {value!r}")


def _require_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise OverfittingInputError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise OverfittingInputError(f"{name} must be >= {minimum}, got {value}")
