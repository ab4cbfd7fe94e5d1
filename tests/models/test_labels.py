"""Direction labels: cost dead-band, horizon end, and no label across the overnight gap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.labels import direction_labels


def ny_minutes(day: str, first: str, count: int) -> np.ndarray:
    """UTC ns of `count` consecutive 1-minute bar closes starting at New York time `first`."""
    start = pd.Timestamp(f"{day} {first}", tz="America/New_York")
    return pd.date_range(start, periods=count, freq="1min").tz_convert("UTC").asi8


def test_small_example_one_bar_horizon() -> None:
    ts = ny_minutes("2024-03-12", "10:00", 5)
    close = np.array([100.0, 101.0, 100.0, 100.05, 99.0])
    y, end = direction_labels(close, ts, horizon=1, cost=0.001)
    # +1%, -0.99%, +0.05% (inside the cost band), -1.05%, no future bar.
    np.testing.assert_array_equal(y, [1.0, 0.0, np.nan, 0.0, np.nan])
    np.testing.assert_array_equal(end, np.r_[ts[1:], ts[-1]])


def test_multi_bar_horizon_uses_close_at_t_plus_horizon() -> None:
    ts = ny_minutes("2024-03-12", "10:00", 6)
    close = np.array([100.0, 90.0, 90.0, 102.0, 98.0, 97.0])
    y, end = direction_labels(close, ts, horizon=3, cost=0.0)
    np.testing.assert_array_equal(y, [1.0, 1.0, 1.0, np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(end[:3], ts[3:])
    np.testing.assert_array_equal(end[3:], ts[3:])


def test_return_equal_to_cost_is_not_tradeable() -> None:
    ts = ny_minutes("2024-03-12", "10:00", 3)
    close = np.array([100.0, 101.0, 100.0])
    up = 101.0 / 100.0 - 1.0
    y, _ = direction_labels(close, ts, horizon=1, cost=up)
    assert np.isnan(y[0])  # |r| == cost exactly
    assert np.isnan(y[1])  # |r| = 0.99% < cost
    y_tight, _ = direction_labels(close, ts, horizon=1, cost=np.nextafter(up, 0.0))
    assert y_tight[0] == 1.0


def test_labels_never_span_the_overnight_gap() -> None:
    # Friday in EST and Monday in EDT: the DST switch must not confuse sessions.
    friday, monday = ny_minutes("2024-03-08", "15:57", 4), ny_minutes("2024-03-11", "09:31", 4)
    ts = np.r_[friday, monday]
    close = 100.0 + np.arange(8.0)  # every forward return is positive
    y, end = direction_labels(close, ts, horizon=2, cost=0.0)
    np.testing.assert_array_equal(y, [1.0, 1.0, np.nan, np.nan, 1.0, 1.0, np.nan, np.nan])
    np.testing.assert_array_equal(end, [ts[2], ts[3], ts[2], ts[3], ts[6], ts[7], ts[6], ts[7]])


def test_horizon_beyond_data_and_invalid_arguments() -> None:
    ts = ny_minutes("2024-03-12", "10:00", 3)
    y, end = direction_labels(np.ones(3), ts, horizon=3, cost=0.0)
    assert np.isnan(y).all()
    np.testing.assert_array_equal(end, ts)
    with pytest.raises(ValueError, match="horizon"):
        direction_labels(np.ones(3), ts, horizon=0, cost=0.0)
    with pytest.raises(ValueError, match="cost"):
        direction_labels(np.ones(3), ts, horizon=1, cost=-0.1)
