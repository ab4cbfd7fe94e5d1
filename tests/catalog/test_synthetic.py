"""Synthetic market: bars-frame convention, realism, determinism and the planted signal."""

from __future__ import annotations

import msgspec
import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from catalog.sessions import in_regular_session, session_minutes, sessions_ending
from catalog.synthetic import (
    SIGNAL_STRENGTH_MAX,
    SIGNAL_STRENGTH_MIN,
    SyntheticMarket,
    generate_market,
)

COLUMNS = ["open", "high", "low", "close", "volume"]


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    # The last 30 sessions of 2024 include the half days 2024-11-29 and 2024-12-24.
    return generate_market(n_symbols=6, n_days=30, seed=7)


def stacked(market: SyntheticMarket) -> pd.DataFrame:
    return pd.concat(market.bars, names=["symbol", "ts"])


def test_frames_follow_the_bars_convention(market: SyntheticMarket) -> None:
    expected_index = session_minutes(sessions_ending("2024-12-31", 30))
    assert list(market.bars) == ["S000", "S001", "S002", "S003", "S004", "S005"]
    for frame in market.bars.values():
        assert list(frame.columns) == COLUMNS
        assert (frame.dtypes == np.float64).all()
        assert frame.index.name == "ts" and str(frame.index.tz) == "UTC"
        assert frame.index.equals(expected_index)
        assert frame.index.is_monotonic_increasing and frame.index.is_unique
        assert in_regular_session(frame.index).all()


def test_ohlc_invariants_cents_and_volume(market: SyntheticMarket) -> None:
    bars = stacked(market)
    prices = bars[["open", "high", "low", "close"]].to_numpy()
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (prices > 0).all()
    assert np.allclose(prices * 100, np.round(prices * 100), atol=1e-6)
    assert (bars["volume"] > 0).all()
    assert (bars["volume"] == np.round(bars["volume"])).all()
    first_opens = np.array([frame["open"].iloc[0] for frame in market.bars.values()])
    assert ((first_opens >= 20) & (first_opens <= 500)).all()


def test_half_days_have_210_bars(market: SyntheticMarket) -> None:
    frame = market.bars["S000"]
    per_day = frame.groupby(frame.index.tz_convert("America/New_York").date).size()
    assert per_day[pd.Timestamp("2024-11-29").date()] == 210
    assert per_day[pd.Timestamp("2024-12-24").date()] == 210
    assert per_day[pd.Timestamp("2024-12-23").date()] == 390


def test_sectors_are_named_and_correlate(market: SyntheticMarket) -> None:
    assert set(market.sectors) == set(market.bars)
    # Sectors are SIC divisions, the vocabulary the Polygon adapter derives from SIC codes.
    assert set(market.sectors.values()) == {"Agriculture", "Mining", "Construction", "Manufacturing"}
    returns = pd.DataFrame({s: np.log(f["close"]).diff() for s, f in market.bars.items()}).dropna()
    corr = returns.corr()
    assert market.sectors["S000"] == market.sectors["S004"]
    assert market.sectors["S000"] != market.sectors["S001"]
    assert corr.loc["S000", "S004"] > corr.loc["S000", "S001"] > 0.1


def test_same_seed_same_market_other_seed_differs(market: SyntheticMarket) -> None:
    again = generate_market(n_symbols=6, n_days=30, seed=7)
    for symbol, frame in market.bars.items():
        pd.testing.assert_frame_equal(frame, again.bars[symbol])
    other = generate_market(n_symbols=6, n_days=30, seed=8)
    assert not np.allclose(other.bars["S000"]["close"], market.bars["S000"]["close"])


def test_minute_vol_gaps_and_clustering(market: SyntheticMarket) -> None:
    for frame in market.bars.values():
        first_bar = frame.index.to_series().diff() != pd.Timedelta(minutes=1)
        log_close = np.log(frame["close"])
        intraday = log_close.diff()[~first_bar]
        assert 0.0004 < intraday.std() < 0.002
        # Inside a session each bar opens at the previous close; sessions open with a gap.
        assert (frame["open"][~first_bar] == frame["close"].shift()[~first_bar]).all()
        gaps = (frame["open"] - frame["close"].shift())[first_bar].iloc[1:]
        assert (gaps != 0).mean() > 0.8
        assert intraday.abs().autocorr() > 0.05  # volatility clusters


def test_volume_is_u_shaped(market: SyntheticMarket) -> None:
    for frame in market.bars.values():
        day = frame.groupby(frame.index.tz_convert("America/New_York").date)
        from_open = day.cumcount().to_numpy()
        to_close = day.cumcount(ascending=False).to_numpy()  # half days close early too
        volume = frame["volume"].to_numpy()
        midday = volume[(from_open >= 120) & (to_close >= 120)].mean()
        assert volume[from_open < 15].mean() > 1.5 * midday
        assert volume[to_close < 15].mean() > 1.5 * midday


def past_and_future_returns(
    market: SyntheticMarket, back: int = 30, ahead: int = 15
) -> tuple[np.ndarray, np.ndarray]:
    """Past-``back``-bar and next-``ahead``-bar log returns at every bar where both windows
    lie in the same session (overnight gaps would only add noise)."""
    past, future = [], []
    for frame in market.bars.values():
        log_close = np.log(frame["close"].to_numpy())
        day = pd.factorize(frame.index.tz_convert("America/New_York").normalize())[0]
        t = np.arange(back, len(log_close) - ahead)
        t = t[(day[t - back] == day[t]) & (day[t + ahead] == day[t])]
        past.append(log_close[t] - log_close[t - back])
        future.append(log_close[t + ahead] - log_close[t])
    return np.concatenate(past), np.concatenate(future)


def direction_auc(score: np.ndarray, future: np.ndarray) -> float:
    moved = future != 0
    score, up = score[moved], future[moved] > 0
    ranks = rankdata(score)
    n_up, n_down = up.sum(), (~up).sum()
    return float((ranks[up].sum() - n_up * (n_up + 1) / 2) / (n_up * n_down))


def test_no_signal_means_unpredictable_direction() -> None:
    past, future = past_and_future_returns(generate_market(10, 60, seed=11, signal_strength=0.0))
    assert abs(np.corrcoef(past, future)[0, 1]) < 0.04
    assert abs(direction_auc(past, future) - 0.5) < 0.02


def test_planted_signal_is_found_by_a_causal_feature() -> None:
    weak_past, weak_future = past_and_future_returns(
        generate_market(10, 60, seed=11, signal_strength=0.1)
    )
    past, future = past_and_future_returns(generate_market(10, 60, seed=11, signal_strength=0.25))
    weak_corr = np.corrcoef(weak_past, weak_future)[0, 1]
    assert weak_corr > 0.06
    assert np.corrcoef(past, future)[0, 1] > max(0.2, weak_corr)
    assert direction_auc(past, future) > 0.6


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="signal_strength"):
        generate_market(2, 2, seed=0, signal_strength=1.5)
    with pytest.raises(ValueError, match="positive"):
        generate_market(0, 2, seed=0)
    with pytest.raises(ValueError, match="n_sectors"):
        generate_market(2, 2, seed=0, n_sectors=0)


def test_generates_half_a_million_bars() -> None:
    """(How fast is ``sextant bench``'s catalog figure, not a test.)"""
    market = generate_market(12, 120, seed=1, signal_strength=0.2)
    assert sum(len(frame) for frame in market.bars.values()) > 550_000


@pytest.mark.parametrize("strength", [SIGNAL_STRENGTH_MIN, 0.995, SIGNAL_STRENGTH_MAX])
def test_one_signal_strength_rule_for_the_generator_and_the_config(strength: float) -> None:
    """The bounds stated once in catalog/synthetic.py; the CLI side is in tests/e2e/test_cli.py."""
    from backtests.config import GenerateConfig

    assert generate_market(1, 1, seed=0, signal_strength=strength).signal_strength == strength
    assert msgspec.convert({"signal_strength": strength}, GenerateConfig).signal_strength == strength


@pytest.mark.parametrize("strength", [SIGNAL_STRENGTH_MIN - 0.01, SIGNAL_STRENGTH_MAX + 0.01])
def test_signal_strength_outside_the_rule_is_refused_everywhere(strength: float) -> None:
    from backtests.config import GenerateConfig

    with pytest.raises(ValueError, match="signal_strength must be in \\[0, 1\\]"):
        generate_market(1, 1, seed=0, signal_strength=strength)
    with pytest.raises(msgspec.ValidationError, match="signal_strength"):
        msgspec.convert({"signal_strength": strength}, GenerateConfig)
