"""DSR and PBO against the check values of ../shared/reference/tuning-and-operations.md.

The DSR example is Bailey & Lopez de Prado's (2014): N = 100 trials, annualised variance of
the trials' Sharpe ratios 0.5, annualised Sharpe 2.5, T = 1,250 daily returns (250 a year),
skew -3, kurtosis 10 -> daily SR 0.158114, SR0 = 0.113172, DSR = 0.9004 (0.9018 if the excess
kurtosis 7 is used where the non-excess 10 belongs).
"""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from backtests.overfitting import (
    DeflatedSharpe,
    OverfittingInputError,
    OverfittingReport,
    ProbabilityOfOverfitting,
    ReturnMoments,
    deflated_sharpe_of_trials,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    overfitting_report,
    pbo_cscv,
    probabilistic_sharpe_ratio,
)

PAPER_DAYS_PER_YEAR = 250
PAPER_T = 1250
PAPER_DAILY_SR = 2.5 / math.sqrt(PAPER_DAYS_PER_YEAR)
PAPER_DAILY_SHARPE_VARIANCE = 0.5 / PAPER_DAYS_PER_YEAR


def two_point_returns(n_obs: int, n_losses: int, sharpe: float) -> np.ndarray:
    """Rare large losses among small gains: the distribution with skew -3 has kurtosis 10.

    A two-point series has kurtosis exactly 1 + skew^2; with a share q of losses its skew is
    -(1 - 2q) / sqrt(q (1 - q)), which is -3 at q = 0.08397, so 105 losses in 1,250 days give
    skew -2.9995 and kurtosis 9.997. The level is set so that mean / std(ddof=1) = ``sharpe``.
    """
    q = n_losses / n_obs
    standard = np.full(n_obs, math.sqrt(q / (1 - q)))  # population mean 0, std 1
    standard[:: n_obs // n_losses][:n_losses] = -math.sqrt((1 - q) / q)
    sigma = 0.01
    return sharpe * sigma * math.sqrt(n_obs / (n_obs - 1)) + sigma * standard


def noise(seed: int, rows: int, trials: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.01, size=(rows, trials))


# -- expected maximum and the paper's DSR --------------------------------------------------------


@pytest.mark.parametrize(("n_trials", "factor"), [(10, 1.5746), (100, 2.5306), (1000, 3.2551)])
def test_expected_max_factor_matches_reference(n_trials, factor):
    assert expected_max_sharpe(n_trials, 1.0) == pytest.approx(factor, abs=5e-5)


def test_paper_example_sr0_and_dsr_from_published_moments():
    assert PAPER_DAILY_SR == pytest.approx(0.158114, abs=5e-7)
    sr0 = expected_max_sharpe(100, PAPER_DAILY_SHARPE_VARIANCE)
    assert sr0 == pytest.approx(0.113172, abs=5e-7)
    paper = ReturnMoments(sharpe=PAPER_DAILY_SR, n_obs=PAPER_T, skew=-3.0, kurtosis=10.0)
    dsr = deflated_sharpe_ratio(paper, n_trials=100, sharpe_variance=PAPER_DAILY_SHARPE_VARIANCE)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_expected_max_scales_with_the_sharpe_unit():
    # the same study in annualised units: SR0 annualised / sqrt(250) is the daily SR0
    annual = expected_max_sharpe(100, 0.5)
    assert annual / math.sqrt(PAPER_DAYS_PER_YEAR) == pytest.approx(0.113172, abs=5e-7)


def test_dsr_from_a_return_series_uses_non_excess_kurtosis():
    # scipy reports this series' excess kurtosis (about 7); plugging that in gives 0.9018
    returns = two_point_returns(PAPER_T, 105, PAPER_DAILY_SR)
    assert stats.kurtosis(returns) == pytest.approx(7.0, abs=0.01)
    moments = ReturnMoments.of(returns)
    assert moments.sharpe == pytest.approx(0.158114, abs=5e-7)
    assert moments.skew == pytest.approx(-3.0, abs=1e-3)
    assert moments.kurtosis == pytest.approx(10.0, abs=0.01)
    dsr = deflated_sharpe_ratio(returns, n_trials=100, sharpe_variance=PAPER_DAILY_SHARPE_VARIANCE)
    assert dsr == pytest.approx(0.9004, abs=5e-5)
    assert abs(dsr - 0.9018) > 1e-3


def test_excess_kurtosis_passed_as_kurtosis_is_refused():
    # kurtosis 7 with skew -3 is the 0.9018 mistake, and below Pearson's bound 1 + skew^2 = 10
    with pytest.raises(OverfittingInputError, match=r"non-excess \(Pearson\) kurtosis"):
        ReturnMoments(sharpe=PAPER_DAILY_SR, n_obs=PAPER_T, skew=-3.0, kurtosis=7.0)


def test_kurtosis_of_normal_returns_is_about_three():
    moments = ReturnMoments.of(np.random.default_rng(1).normal(size=100_000))
    assert moments.kurtosis == pytest.approx(3.0, abs=0.05)


# -- probabilistic Sharpe ------------------------------------------------------------------------


def test_psr_is_one_half_at_the_observed_sharpe_and_grows_with_history():
    short = ReturnMoments(sharpe=0.1, n_obs=100, skew=0.0, kurtosis=3.0)
    long = ReturnMoments(sharpe=0.1, n_obs=1000, skew=0.0, kurtosis=3.0)
    assert probabilistic_sharpe_ratio(short, sr_benchmark=0.1) == pytest.approx(0.5)
    # normal returns: z = 0.1 * sqrt(T - 1) / sqrt(1 - 0 * 0.1 + (3 - 1) / 4 * 0.1^2)
    z = 0.1 * math.sqrt(99) / math.sqrt(1.005)
    assert probabilistic_sharpe_ratio(short) == pytest.approx(stats.norm.cdf(z))
    assert probabilistic_sharpe_ratio(long) > probabilistic_sharpe_ratio(short)


def test_negative_skew_and_fat_tails_lower_the_psr():
    normal = ReturnMoments(sharpe=0.1, n_obs=250, skew=0.0, kurtosis=3.0)
    crashy = ReturnMoments(sharpe=0.1, n_obs=250, skew=-3.0, kurtosis=20.0)
    assert probabilistic_sharpe_ratio(crashy) < probabilistic_sharpe_ratio(normal)


# -- DSR of a study's matrix ---------------------------------------------------------------------


def test_dsr_of_trials_picks_the_best_column_and_counts_every_trial():
    matrix = noise(2, 250, 30)
    matrix[:, 11] += 0.003
    matrix[:, 4] = 0.0  # a trial that never traded still counts, with Sharpe 0
    result = deflated_sharpe_of_trials(matrix)
    std = matrix.std(axis=0, ddof=1)
    sharpes = np.divide(matrix.mean(axis=0), std, out=np.zeros(30), where=std > 0)
    assert result.best_trial == 11
    assert result.n_trials == 30
    assert result.sharpe_variance == pytest.approx(np.var(sharpes, ddof=1))
    assert result.dsr == pytest.approx(
        deflated_sharpe_ratio(matrix[:, 11], 30, float(np.var(sharpes, ddof=1)))
    )


def test_trials_without_a_full_series_deflate_through_n_but_not_the_variance():
    """A study's pruned and failed trials: tried (so they raise the bar), no complete series."""
    matrix = noise(5, 250, 10)
    matrix[:, 3] += 0.002
    complete = deflated_sharpe_of_trials(matrix)
    tried = deflated_sharpe_of_trials(matrix, n_tried=40)
    assert tried.n_trials == 40 and tried.sharpe_variance == complete.sharpe_variance
    assert tried.expected_max_sharpe == pytest.approx(expected_max_sharpe(40, complete.sharpe_variance))
    assert tried.expected_max_sharpe > complete.expected_max_sharpe and tried.dsr < complete.dsr
    with pytest.raises(OverfittingInputError, match="n_tried must be >= 10, got 9"):
        deflated_sharpe_of_trials(matrix, n_tried=9)


def test_best_of_pure_noise_is_rarely_called_significant():
    dsr = np.array([deflated_sharpe_of_trials(noise(seed, 250, 100)).dsr for seed in range(100)])
    assert np.mean(dsr >= 0.95) <= 0.05


def test_a_genuine_edge_survives_deflation():
    matrix = noise(3, 250, 100)
    matrix[:, 0] += 0.005  # daily Sharpe about 0.5, 8 annualised
    assert deflated_sharpe_of_trials(matrix).dsr > 0.95


# -- PBO by CSCV ---------------------------------------------------------------------------------


def brute_force_logits(matrix: np.ndarray, n_blocks: int) -> list[float]:
    """The definition, row by row: drop the oldest T mod S rows, split, pick, rank, logit."""
    rows = len(matrix) // n_blocks * n_blocks
    blocks = np.split(matrix[len(matrix) - rows :], n_blocks)
    logits = []
    for train in itertools.combinations(range(n_blocks), n_blocks // 2):
        test = [b for b in range(n_blocks) if b not in train]
        in_sample = np.vstack([blocks[b] for b in train])
        out_sample = np.vstack([blocks[b] for b in test])
        best = np.argmax(in_sample.mean(axis=0) / in_sample.std(axis=0, ddof=1))
        oos = out_sample.mean(axis=0) / out_sample.std(axis=0, ddof=1)
        w = stats.rankdata(oos)[best] / (matrix.shape[1] + 1)
        logits.append(math.log(w / (1 - w)))
    return logits


def test_pbo_logits_match_the_definition():
    matrix = noise(4, 53, 7)  # 53 rows, 6 blocks: the oldest 5 rows are dropped
    result = pbo_cscv(matrix, n_blocks=6)
    expected = brute_force_logits(matrix, 6)
    assert len(result.logits) == math.comb(6, 3)
    np.testing.assert_allclose(result.logits, expected, rtol=1e-9)
    assert result.pbo == pytest.approx(np.mean(np.array(expected) <= 0))


def test_pbo_is_near_zero_with_one_genuinely_better_strategy():
    matrix = noise(5, 320, 20)
    matrix[:, 9] += 0.004
    result = pbo_cscv(matrix)  # the paper's 16 blocks: 12,870 splits
    assert len(result.logits) == math.comb(16, 8)
    assert result.pbo < 0.02


def test_pbo_of_pure_noise_is_one_half_on_average():
    # one matrix can give anything from ~0.1 to ~0.9; the mean over 400 is within 0.5 +- 0.05
    # (N = 20 even, so the chosen trial's out-of-sample rank is <= 10 with probability 1/2)
    pbos = [pbo_cscv(noise(seed, 64, 20), n_blocks=8).pbo for seed in range(400)]
    assert np.mean(pbos) == pytest.approx(0.5, abs=0.05)


def test_pbo_tolerates_trials_that_never_traded():
    matrix = noise(6, 64, 10)
    matrix[:, 3] = 0.0
    result = pbo_cscv(matrix, n_blocks=8)
    assert np.all(np.isfinite(result.logits))


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: pbo_cscv(noise(0, 64, 5), n_blocks=7), "n_blocks must be even, got 7"),
        (lambda: pbo_cscv(noise(0, 64, 5), n_blocks=0), "n_blocks must be >= 2, got 0"),
        (lambda: pbo_cscv(noise(0, 31, 5), n_blocks=16), "at least 32 rows for 16 blocks"),
        (lambda: pbo_cscv(noise(0, 64, 1), n_blocks=8), "at least 2 trials"),
        (lambda: pbo_cscv(noise(0, 64, 5)[:, 0], n_blocks=8), r"T x N matrix.*shape \(64,\)"),
        (lambda: deflated_sharpe_of_trials(noise(0, 64, 1)), "at least 2 trials"),
        (lambda: deflated_sharpe_of_trials(noise(0, 1, 5)), "at least 2 rows"),
        (lambda: expected_max_sharpe(1, 0.5), "n_trials must be >= 2, got 1"),
        (lambda: expected_max_sharpe(100, -0.1), "sharpe_variance must be >= 0"),
        (lambda: expected_max_sharpe(True, 0.5), "n_trials must be an integer"),
        (lambda: ReturnMoments.of(np.zeros(50)), "returns are constant"),
        (lambda: ReturnMoments.of([0.01]), "at least 2 values"),
        (lambda: probabilistic_sharpe_ratio([0.01, 0.02], float("nan")), "sr_benchmark must be"),
        (  # 1 - (-3)(-2/3) + (10 - 1) / 4 * (4/9) = 0: the two-point edge case
            lambda: probabilistic_sharpe_ratio(ReturnMoments(-2 / 3, 100, -3.0, 10.0)),
            "standard error is zero",
        ),
    ],
)
def test_bad_input_raises_a_clear_error(call, message):
    with pytest.raises(OverfittingInputError, match=message):
        call()


def test_nan_returns_are_refused_with_their_position():
    matrix = noise(0, 64, 5)
    matrix[10, 2] = np.nan
    matrix[20, 1] = np.nan
    for call in (lambda: pbo_cscv(matrix, n_blocks=8), lambda: deflated_sharpe_of_trials(matrix)):
        with pytest.raises(OverfittingInputError, match=r"2 NaN .* the first at index \(10, 2\)"):
            call()


# -- the verdict ---------------------------------------------------------------------------------


def report(dsr: float, pbo: float) -> OverfittingReport:
    best = ReturnMoments(sharpe=0.1, n_obs=250, skew=0.0, kurtosis=3.0)
    deflated = DeflatedSharpe(
        best_trial=0,
        best=best,
        n_trials=100,
        sharpe_variance=0.004,
        expected_max_sharpe=0.16,
        dsr=dsr,
    )
    overfitting = ProbabilityOfOverfitting(pbo=pbo, logits=(), n_blocks=16)
    return OverfittingReport(deflated, overfitting, periods_per_year=252)


def test_verdict_says_when_the_best_is_no_better_than_luck():
    verdict = report(dsr=0.40, pbo=0.10).verdict
    assert verdict.startswith(
        "the best trial's Sharpe (1.59 annualised) is not distinguishable from the best of 100 "
        "random tries"
    )
    assert "expected 2.54" in verdict and "DSR 0.40" in verdict


def test_verdict_flags_an_overfit_selection_even_when_the_dsr_passes():
    verdict = report(dsr=0.99, pbo=0.70).verdict
    assert "beats the best of 100 random tries" in verdict
    assert "overfit" in verdict and "PBO 0.70" in verdict


def test_verdict_of_a_robust_study_points_to_the_holdout():
    verdict = report(dsr=0.99, pbo=0.10).verdict
    assert "beats the best of 100 random tries" in verdict
    assert "overfit" not in verdict and "holdout" in verdict


def test_report_of_a_noise_study_says_not_distinguishable():
    result = overfitting_report(noise(7, 250, 100), periods_per_year=252)
    assert result.deflated.n_trials == 100
    assert "is not distinguishable from the best of 100 random tries" in result.verdict
