"""Feature matrix: TA-Lib parity, causality, live-window equality and warm-up contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from models import features as F

COLUMNS = ("open", "high", "low", "close", "volume")


def make_bars(n_sessions: int = 13, seed: int = 0, drop_frac: float = 0.05) -> pd.DataFrame:
    """Random-walk 1-minute bars over NYSE-like sessions (09:31..16:00 New York closes).

    Starts 2024-03-04 so the sessions straddle the 2024-03-10 DST switch, and
    drops a fraction of minutes to mimic sparse trading.
    """
    rng = np.random.default_rng(seed)
    first_closes = [
        pd.Timestamp(f"{day.date()} 09:31", tz=F.NY_TZ)
        for day in pd.bdate_range("2024-03-04", periods=n_sessions)
    ]
    index = pd.DatetimeIndex(
        np.concatenate(
            [pd.date_range(t, periods=390, freq="1min").tz_convert("UTC") for t in first_closes]
        ),
        name="ts",
    )
    index = index[rng.random(len(index)) >= drop_frac]
    n = len(index)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, n)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0.0, 3e-4, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 5e-4, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 5e-4, n)))
    volume = np.round(rng.lognormal(8.0, 1.0, n))
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return make_bars()


@pytest.fixture(scope="module")
def arrays(bars: pd.DataFrame) -> tuple[np.ndarray, ...]:
    return (*(bars[c].to_numpy() for c in COLUMNS), bars.index.asi8)


@pytest.fixture(scope="module")
def full(arrays: tuple[np.ndarray, ...]) -> np.ndarray:
    return F.feature_matrix(*arrays)


def _talib_pairs(o, h, l, c, v):
    """(name, ours, TA-Lib) for every indicator the brief requires parity on."""
    yield "RSI", F.rsi(c, 14), talib.RSI(c, 14)
    for name, ours, ref in zip(
        ("line", "signal", "hist"), F.macd(c, 12, 26, 9), talib.MACD(c, 12, 26, 9)
    ):
        yield f"MACD.{name}", ours, ref
    for name, ours, ref in zip(
        ("upper", "middle", "lower"), F.bbands(c, 20, 2.0), talib.BBANDS(c, 20, 2.0, 2.0, 0)
    ):
        yield f"BBANDS.{name}", ours, ref
    yield "ATR", F.atr(h, l, c, 14), talib.ATR(h, l, c, 14)
    yield "OBV", F.obv(c, v), talib.OBV(c, v)
    for p in F.EMA_PERIODS:
        yield f"EMA{p}", F.ema(c, p), talib.EMA(c, p)


def test_indicators_match_talib(arrays: tuple[np.ndarray, ...]) -> None:
    # TA-Lib's seeding is reproduced exactly, so the whole series matches,
    # including where the first value appears (NaN positions must agree too).
    for name, ours, ref in _talib_pairs(*arrays[:5]):
        assert np.isnan(ref).sum() < len(ref) // 10, name
        np.testing.assert_allclose(ours, ref, rtol=1e-8, atol=1e-9, err_msg=name)


def test_feature_names_and_warmup_contract(full: np.ndarray) -> None:
    assert len(F.FEATURE_NAMES) >= 30
    assert len(set(F.FEATURE_NAMES)) == len(F.FEATURE_NAMES)
    assert full.shape[1] == len(F.FEATURE_NAMES)
    assert np.isnan(full[: F.WARMUP_BARS]).all()
    assert np.isfinite(full[F.WARMUP_BARS :]).all()
    assert F.LOOKBACK_BARS > F.WARMUP_BARS


def test_truncation_never_changes_past_rows(
    arrays: tuple[np.ndarray, ...], full: np.ndarray
) -> None:
    n = len(arrays[0])
    for t in (0, 1, 13, 34, F.WARMUP_BARS - 1, F.WARMUP_BARS, 777, 2048, n // 2, n - 2):
        cut = F.feature_matrix(*(a[: t + 1] for a in arrays))
        np.testing.assert_array_equal(cut, full[: t + 1], err_msg=f"cut at {t}")


def test_live_window_reproduces_full_history(
    arrays: tuple[np.ndarray, ...], full: np.ndarray
) -> None:
    n, lookback = len(arrays[0]), F.LOOKBACK_BARS
    for end in np.linspace(lookback - 1, n - 1, 12).astype(int):
        window = F.feature_matrix(*(a[end - lookback + 1 : end + 1] for a in arrays))
        np.testing.assert_allclose(
            window[-1], full[end], rtol=1e-9, atol=1e-13, err_msg=f"end={end}"
        )


def test_compute_features_wraps_feature_matrix(bars: pd.DataFrame, full: np.ndarray) -> None:
    frame = F.compute_features(bars)
    assert frame.index.equals(bars.index)
    assert tuple(frame.columns) == F.FEATURE_NAMES
    np.testing.assert_array_equal(frame.to_numpy(), full)
    with pytest.raises(ValueError, match="tz-aware"):
        F.compute_features(bars.tz_localize(None))


def test_calendar_features_follow_new_york_time_across_dst(bars: pd.DataFrame) -> None:
    frame = F.compute_features(bars).iloc[F.WARMUP_BARS :]
    local = frame.index.tz_convert(F.NY_TZ)
    minutes = (local.hour * 60 + local.minute - 570).to_numpy()
    np.testing.assert_allclose(frame["tod"], minutes / 390)
    np.testing.assert_array_equal(frame["dow"], local.dayofweek)
    # 09:31 New York is 14:31 UTC before 2024-03-10 and 13:31 UTC after.
    opens = frame[local.time == pd.Timestamp("09:31").time()]
    assert {t.hour for t in opens.index} == {13, 14}
    np.testing.assert_allclose(opens["tod"], 1 / 390)


def test_vwap_resets_each_session(bars: pd.DataFrame) -> None:
    frame = F.compute_features(bars)
    day = bars.index.tz_convert(F.NY_TZ).date
    first = np.r_[True, day[1:] != day[:-1]] & (np.arange(len(bars)) >= F.WARMUP_BARS)
    typical = bars[["high", "low", "close"]].mean(axis=1)
    expected = (bars["close"] / typical - 1.0)[first]
    np.testing.assert_allclose(frame["vwap_dev"][first], expected, rtol=1e-12)


def test_bounded_features_stay_in_range(full: np.ndarray) -> None:
    after = pd.DataFrame(full[F.WARMUP_BARS :], columns=F.FEATURE_NAMES)
    for name in ("rsi_14", "rsi_70", "rsi_210", "stoch_60"):
        assert after[name].between(0.0, 1.0).all(), name
    for name in ("obv_slope_15", "obv_slope_60"):
        assert after[name].between(-1.0, 1.0).all(), name


@pytest.mark.parametrize("w", [1, 2, 15, 60, 390])
def test_rolling_helpers_match_pandas(w: int) -> None:
    x = np.random.default_rng(w).normal(100.0, 5.0, 2000)
    rolling = pd.Series(x).rolling(w)
    np.testing.assert_allclose(F._rolling_sum(x, w), rolling.sum(), rtol=1e-12)
    np.testing.assert_array_equal(F._rolling_max(x, w), rolling.max())
    np.testing.assert_array_equal(F._rolling_min(x, w), rolling.min())
