"""The streaming feature engine against the batch path: synthetic bars fed minute by minute (with
missing minutes, a symbol missing a whole session, the 2024-11-29 half day, session boundaries,
a symbol that starts later) must give, at every close, the rows ``compute_features`` computes
over the full history; exact where the maths is the same sequence of operations."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from catalog.csv_import import read_minute_csv
from catalog.synthetic import generate_market
from models import pipeline as P
from models.features import FEATURE_NAMES
from models.streaming import StreamingFeatures
from models.timeframes import timeframe_names
from tests.real_data import real_csv
from tests.strategies.test_actor_parity import FEATURE_ATOL, FEATURE_RTOL

ALL_BLOCKS = P.FeatureSpec(timeframes=("5m", "30m", "1h", "1d"),
                           risk=P.RiskSpec(garch=True, var=True, beta=True, copula=True))
# Columns computed by the same operations in the same order as the batch path: bit-identical.
EXACT = (*timeframe_names(ALL_BLOCKS.timeframes), "hist_var", "hist_cvar", P.GARCH_VOL,
         P.COPULA_TAIL_DEP, "rsi_14", "macd", "macd_signal", "macd_hist", "bb_pctb", "bb_width",
         "atr_14", "close_ema_9", "close_ema_21", "close_ema_50", "ema_9_21", "vwap_dev",
         "hl_range", "bar_body", "range_60", "stoch_60", "tod", "tod_sin", "tod_cos", "dow")
HALF_DAY = date(2024, 11, 29)
STREAM_FROM = "2024-11-27 14:31"  # UTC: the 09:31 New York bar, the first of a session
HISTORY = 3


def _columns(frame) -> P.BarColumns:
    return (*(frame[c].to_numpy() for c in ("open", "high", "low", "close", "volume")), frame.index.asi8)


@pytest.fixture(scope="module")
def market() -> dict[str, P.BarColumns]:
    """Five symbols over eleven sessions ending 2024-12-02 (the half day inside): S1 misses 3%
    of its minutes, S2 the half day's last minute and every 10:30 bar (a TF bar completes on
    the next row), S3 the whole 2024-11-26 session and the half day, S4 starts at 10:00 on 2024-11-26 so it
    reaches the streamable length while streaming."""
    bars = generate_market(n_symbols=5, n_days=11, seed=5, signal_strength=0.1,
                           end=date(2024, 12, 2)).bars
    frames = dict(zip(("S0", "S1", "S2", "S3", "S4"), bars.values(), strict=True))
    rng = np.random.default_rng(0)
    frames["S1"] = frames["S1"][rng.random(len(frames["S1"])) > 0.03]
    local = frames["S2"].index.tz_convert("America/New_York")
    half_day_close = (local.date == HALF_DAY) & (local.hour == 13) & (local.minute == 0)
    frames["S2"] = frames["S2"][~half_day_close & ~((local.hour == 10) & (local.minute == 30))]
    local = frames["S3"].index.tz_convert("America/New_York")
    frames["S3"] = frames["S3"][(local.date != date(2024, 11, 26)) & (local.date != HALF_DAY)]
    frames["S4"] = frames["S4"][frames["S4"].index >= "2024-11-26 15:00"]
    return {s: _columns(f) for s, f in frames.items()}


@pytest.fixture(scope="module")
def fitted(market) -> P.FittedFeatures:
    end = np.datetime64("2024-11-22T21:00", "ns").astype(np.int64)
    return P.fit_features(market, ALL_BLOCKS, {s: np.flatnonzero(c[5] <= end) for s, c in market.items()})


def _stream(market, engine: StreamingFeatures, skip: dict[str, range] | None, buffer: int | None,
            stream_from: str):
    """Feed every close from ``stream_from`` on, each symbol's buffer its whole history or its
    last ``buffer`` bars (the actor's rolling buffer); yield (symbol, row index, returned rows)."""
    start = np.datetime64(stream_from, "ns").astype(np.int64)
    stamps = np.unique(np.concatenate([c[5] for c in market.values()]))
    for step, ts in enumerate(stamps[stamps >= start]):
        now = {}
        for s, cols in market.items():
            at = int(np.searchsorted(cols[5], ts))
            if at < len(cols[5]) and cols[5][at] == ts and step not in (skip or {}).get(s, ()):
                now[s] = tuple(c[max(0, at + 1 - (buffer or at + 1)) : at + 1] for c in cols)
        for s, rows in engine.update(now).items():
            yield s, int(np.searchsorted(market[s][5], ts)), rows


def _assert_streams_like_batch(market, spec, fitted, exact=(), skip=None, buffer=None,
                               stream_from=STREAM_FROM) -> StreamingFeatures:
    engine = StreamingFeatures(spec, fitted, list(market), history=HISTORY)
    batch = P.compute_features(market, spec, fitted)
    names = P.feature_names(spec)
    assert engine.feature_names == names
    got: dict[str, list] = {s: [] for s in market}
    want: dict[str, list] = {s: [] for s in market}
    for s, row, rows in _stream(market, engine, skip, buffer, stream_from):
        assert rows.shape == (HISTORY, len(names))
        got[s].append(rows)
        want[s].append(batch[s][row - HISTORY + 1 : row + 1])
    exact_columns = [names.index(n) for n in exact if n in names]
    for s in market:
        streamed, expected = np.stack(got[s]), np.stack(want[s])
        np.testing.assert_allclose(streamed, expected, rtol=FEATURE_RTOL, atol=FEATURE_ATOL, err_msg=s)
        np.testing.assert_array_equal(streamed[..., exact_columns], expected[..., exact_columns], err_msg=s)
        assert np.isfinite(streamed[:, -1]).mean() > 0.9  # real values were compared, not NaN
    return engine


def test_every_block_streams_like_the_full_history(market, fitted) -> None:
    engine = _assert_streams_like_batch(market, ALL_BLOCKS, fitted, exact=EXACT)
    assert engine.seeds["S0"] == 1 and len(market["S0"][5]) - np.searchsorted(
        market["S0"][5], np.datetime64(STREAM_FROM, "ns").astype(np.int64)) == 390 + 210 + 390
    # Seeded once each, S4 once it had a streamable buffer (before that: the batch path).
    assert engine.seeds == dict.fromkeys(market, 1)


def test_rolling_buffers_like_the_actors_stream_like_the_full_history(market, fitted) -> None:
    """Buffers of ``lookback_bars`` (already full at the first close): the smoothers are seeded
    on a buffer that forgot the history's start, so they agree to rounding; the finite-memory
    blocks stay exact."""
    start = np.datetime64(STREAM_FROM, "ns").astype(np.int64)
    assert np.searchsorted(market["S0"][5], start) > P.lookback_bars(ALL_BLOCKS)  # truncated from the start
    exact = (*timeframe_names(ALL_BLOCKS.timeframes), "hist_var", "hist_cvar", P.GARCH_VOL)
    _assert_streams_like_batch(market, ALL_BLOCKS, fitted, exact=exact, buffer=P.lookback_bars(ALL_BLOCKS))


def test_the_base_set_alone_streams_like_the_full_history(market) -> None:
    _assert_streams_like_batch(market, P.FeatureSpec(), None, exact=EXACT)


def test_an_index_proxy_and_a_gap_reseed_like_the_full_history(market, fitted) -> None:
    """S2 is not passed for 40 closes (its buffer then holds bars its state never saw: it is
    seeded again). S1 is the market proxy, so the others' beta does not need S2; its missing
    minutes make the jointly valid pairs fewer than a symbol's valid returns."""
    spec = P.FeatureSpec(timeframes=("5m", "1h"),
                         risk=P.RiskSpec(garch=True, var=True, beta=True, market_proxy="S1"))
    engine = _assert_streams_like_batch(market, spec, fitted, exact=EXACT, skip={"S2": range(100, 140)})
    assert engine.seeds == {**dict.fromkeys(market, 1), "S2": 2}


def test_unfitted_columns_stay_nan_and_misuse_is_refused_by_name(market) -> None:
    engine = StreamingFeatures(ALL_BLOCKS, None, list(market), history=2)
    cols = market["S0"]
    rows = engine.update({"S0": tuple(c[:1000] for c in cols)})["S0"]
    assert np.isnan(rows[:, -2:]).all() and np.isfinite(rows[:, : len(FEATURE_NAMES)]).all()
    with pytest.raises(ValueError, match="not newer"):
        engine.update({"S0": tuple(c[:1000] for c in cols)})
    with pytest.raises(ValueError, match="same newest bar time"):
        engine.update({"S0": tuple(c[:1001] for c in cols), "S1": tuple(c[:1002] for c in market["S1"])})
    index_proxy = P.FeatureSpec(risk=P.RiskSpec(beta=True, market_proxy="S0"))
    with pytest.raises(ValueError, match="first update must include the market proxy 'S0'"):
        StreamingFeatures(index_proxy, None, list(market), history=2).update(
            {"S1": tuple(c[:1000] for c in market["S1"])})


@pytest.mark.slow
def test_real_sparse_minute_bars_stream_like_the_full_history() -> None:
    """The three real ETFs over seven weeks of 2025: thin trading leaves most minutes empty
    (DBB trades ~70 of 390), so TF bars complete on later rows, windows span days and the index
    proxy (FXY) lacks many of the others' minutes."""
    frames = {name: read_minute_csv(real_csv(f"{name}_1min.csv")).loc["2025-02-18":"2025-04-08"]
              for name in ("DBB", "FXY", "INDA")}
    market = {s: _columns(f) for s, f in frames.items()}
    spec = P.FeatureSpec(timeframes=ALL_BLOCKS.timeframes, risk=P.RiskSpec(
        garch=True, var=True, beta=True, copula=True, market_proxy="FXY"))
    end = np.datetime64("2025-03-14T21:00", "ns").astype(np.int64)
    fitted = P.fit_features(market, spec, {s: np.flatnonzero(c[5] <= end) for s, c in market.items()})
    engine = _assert_streams_like_batch(market, spec, fitted, exact=EXACT, stream_from="2025-04-01 13:31")
    assert engine.seeds == dict.fromkeys(market, 1)
