"""Which session Alpaca's ``last_equity`` starts, from the clock read after the account: the
session in progress, or later that day's before the open; after a close (and overnight) the
real service may not have moved it yet, so no session is claimed."""

from decimal import Decimal

import msgspec
import pandas as pd
import pytest

from adapters.alpaca.day_start import day_start_message, day_start_session
from adapters.alpaca.sandbox.hours import clock_json

OPEN = pd.Timestamp("2024-12-30 09:30", tz="America/New_York")  # a Monday; closes 16:00


def at(new_york: str) -> str:
    """GET /v2/clock's timestamp at that New York time, as the sandbox (like Alpaca) states it."""
    return clock_json(pd.Timestamp(new_york, tz="America/New_York").value)["timestamp"]


@pytest.mark.parametrize("when", ["2024-12-30 09:30", "2024-12-30 12:00", "2024-12-30 15:59:59",
                                  "2024-12-30 08:00", "2024-12-30 00:00:01"])
def test_in_the_session_or_before_it_that_day_it_is_that_sessions_start(when: str):
    assert day_start_session(at(when)) == OPEN.value


@pytest.mark.parametrize("when", ["2024-12-30 16:00", "2024-12-30 20:00", "2024-12-28 10:00",
                                  "2024-12-25 10:00"])  # the close, the evening, a Saturday, a holiday
def test_after_a_close_no_session_is_claimed(when: str):
    assert day_start_session(at(when)) is None
    assert day_start_message(Decimal("100000.00"), at(when)) is None


def test_the_message_carries_the_session_and_the_equity():
    message = msgspec.json.decode(day_start_message(Decimal("98765.43"), at("2024-12-30 12:00")))
    assert message == {"session_open_ns": OPEN.value, "last_equity": 98765.43}
