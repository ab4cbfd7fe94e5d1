"""1m catalog bars -> Polygon 5m/15m/1h/1d aggregates: the pure functions and the same
numbers served through massive.RESTClient."""

from pathlib import Path

import massive
import numpy as np
import pandas as pd
import pytest

from adapters.polygon.common import TIMEFRAMES
from adapters.polygon.sandbox import PolygonSandbox
from adapters.polygon.sandbox.aggregation import minute_aggregates, resample, session_running
from catalog.store import MarketCatalog

NY = "America/New_York"


def tiny_bars() -> pd.DataFrame:
    """A half day (2024-11-29, EST, 13:00 ET close) with holes, and a few bars of a summer
    (EDT) day, so New-York alignment and sparse minutes both show."""
    half_day = pd.date_range("2024-11-29 14:31", "2024-11-29 18:00", freq="1min", tz="UTC")
    holes = pd.DatetimeIndex(["2024-11-29 14:45"], tz="UTC").append(
        pd.date_range("2024-11-29 14:36", "2024-11-29 14:40", freq="1min", tz="UTC")
    )
    summer = pd.DatetimeIndex(
        ["2024-07-01 13:31", "2024-07-01 13:59", "2024-07-01 14:00", "2024-07-01 14:01"], tz="UTC"
    )
    index = summer.append(half_day.difference(holes)).rename("ts")
    step = np.arange(len(index), dtype=np.float64)
    close = 100.0 + np.round(np.sin(step / 7.0) * 3.0, 2)
    return pd.DataFrame(
        {
            "open": np.round(close - 0.05, 2),
            "high": np.round(close + 0.25 + (step % 3) / 10, 2),
            "low": np.round(close - 0.30, 2),
            "close": close,
            "volume": 100.0 + (step * 37) % 500,
        },
        index=index,
    )


def expected(bars: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Reference aggregation with pandas: window of the New York minute starting at C - 1min."""
    starts = (bars.index - pd.Timedelta(minutes=1)).tz_convert(NY)
    key = starts.normalize() if rule == "1D" else starts.floor(rule)
    typical = (bars["high"] + bars["low"] + bars["close"]) / 3
    grouped = bars.assign(pv=typical * bars["volume"]).groupby(key)
    frame = pd.DataFrame(
        {
            "o": grouped["open"].first(),
            "h": grouped["high"].max(),
            "l": grouped["low"].min(),
            "c": grouped["close"].last(),
            "v": grouped["volume"].sum(),
            "n": grouped.size(),
        }
    )
    frame["vw"] = (grouped["pv"].sum() / frame["v"]).round(4)
    frame["t"] = [ts.value // 1_000_000 for ts in frame.index]
    return frame.reset_index(drop=True)


@pytest.mark.parametrize(
    ("name", "rule"), [("5m", "5min"), ("15m", "15min"), ("1h", "1h"), ("1d", "1D")]
)
def test_resample_matches_a_pandas_reference(name: str, rule: str) -> None:
    bars = tiny_bars()
    series = resample(minute_aggregates(bars), TIMEFRAMES[name])
    reference = expected(bars, rule)
    got = pd.DataFrame(
        {
            "o": series.open,
            "h": series.high,
            "l": series.low,
            "c": series.close,
            "v": series.volume,
            "n": series.trades,
            "vw": series.vwap,
            "t": series.start_ms,
        }
    )
    pd.testing.assert_frame_equal(got[reference.columns], reference, check_dtype=False)


def test_windows_are_new_york_aligned_and_sparse() -> None:
    bars = tiny_bars()
    hours = resample(minute_aggregates(bars), TIMEFRAMES["1h"])
    # EDT: the 09:00-10:00 ET hour (13:00 UTC) holds the 09:31, 09:59 and 10:00 closes
    assert hours.start_ms[0] == pd.Timestamp("2024-07-01 09:00", tz=NY).value // 1_000_000
    assert hours.trades[:2].tolist() == [3, 1]
    fives = resample(minute_aggregates(bars), TIMEFRAMES["5m"])
    starts = [pd.Timestamp(t, unit="ms", tz="UTC") for t in fives.start_ms]
    assert (
        pd.Timestamp("2024-11-29 14:35", tz="UTC") not in starts
    )  # all five minutes missing: no bar
    window = starts.index(pd.Timestamp("2024-11-29 14:40", tz="UTC"))
    assert fives.trades[window] == 4  # 14:45 missing: the 14:41..14:44 closes only
    assert np.array_equal(fives.end_ns, fives.start_ms * 1_000_000 + 5 * 60_000_000_000)


def test_half_day_daily_bar() -> None:
    bars = tiny_bars()
    days = resample(minute_aggregates(bars), TIMEFRAMES["1d"])
    assert len(days) == 2
    half = bars.loc["2024-11-29"]
    assert days.start_ms[1] == pd.Timestamp("2024-11-29 00:00", tz=NY).value // 1_000_000
    assert days.trades[1] == len(half) == 210 - 6
    assert (days.open[1], days.close[1]) == (half["open"].iloc[0], half["close"].iloc[-1])
    assert days.end_ns[1] == pd.Timestamp("2024-11-29 13:00", tz=NY).value  # the early close
    assert days.end_ns[0] == pd.Timestamp("2024-07-01 16:00", tz=NY).value


def test_minute_aggregates_are_stamped_at_window_start() -> None:
    bars = tiny_bars()
    minutes = minute_aggregates(bars)
    assert np.array_equal(minutes.start_ms + 60_000, bars.index.as_unit("ms").asi8)
    assert np.array_equal(
        minutes.vwap, ((bars["high"] + bars["low"] + bars["close"]) / 3).round(4).to_numpy()
    )
    assert minutes.integral_volume


def test_session_running_totals_restart_each_day() -> None:
    bars = tiny_bars()
    accumulated, session_open, vwap = session_running(minute_aggregates(bars))
    summer = bars.loc["2024-07-01"]
    assert accumulated[:4].tolist() == summer["volume"].cumsum().tolist()
    assert accumulated[4] == bars["volume"].iloc[4]
    assert session_open[:4].tolist() == [summer["open"].iloc[0]] * 4
    assert session_open[4:].tolist() == [bars["open"].iloc[4]] * (len(bars) - 4)
    typical = (summer["high"] + summer["low"] + summer["close"]) / 3
    assert vwap[3] == round((typical * summer["volume"]).sum() / summer["volume"].sum(), 4)


@pytest.fixture(scope="module")
def tiny_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny-catalog")
    MarketCatalog(path).write_bars("TINY", tiny_bars(), sector="Manufacturing")
    return path


@pytest.mark.parametrize(
    ("size", "rule"),
    [((5, "minute"), "5min"), ((15, "minute"), "15min"), ((1, "hour"), "1h"), ((1, "day"), "1D")],
)
def test_aggregates_served_through_the_sdk(
    tiny_catalog: Path, size: tuple[int, str], rule: str
) -> None:
    reference = expected(tiny_bars(), rule)
    with PolygonSandbox(tiny_catalog) as sandbox:
        rest = massive.RESTClient(api_key="test-key", base=sandbox.base_url)
        rows = list(rest.list_aggs("TINY", *size, "2024-07-01", "2024-11-29", limit=7))
    got = pd.DataFrame(
        {
            "o": [r.open for r in rows],
            "h": [r.high for r in rows],
            "l": [r.low for r in rows],
            "c": [r.close for r in rows],
            "v": [r.volume for r in rows],
            "n": [r.transactions for r in rows],
            "vw": [r.vwap for r in rows],
            "t": [r.timestamp for r in rows],
        }
    )
    pd.testing.assert_frame_equal(got[reference.columns], reference, check_dtype=False)
