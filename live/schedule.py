"""The trading day as phases with UTC start times, from the NYSE (XNYS) calendar.

Pure: a date in, its plan out; nothing here sleeps, trades or reads a clock. The runner
(``live.scheduler``) walks these plans with a real or simulated clock, and a restarted
runner asks ``DayPlan.slot_at`` which phase the clock is in.

A session day runs, in New York time (13:00 closes on half days shift the last two):
- pre-open  open - ``pre_open_minutes``: ingest the missing sessions, load the models,
  start the node (it reconciles with the broker), warm up;
- session   open .. the flatten time: the node trades;
- close     close - the strategy's ``flatten_minutes_before_close`` (the minute the strategy
  flattens): stop the node (cancel, flatten), verify flat at the broker, daily summary;
- post-close close + ``post_close_minutes`` until New York midnight: retrain and evaluate.
Weekends and holidays have no phase: the scheduler idles through them.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Annotated

import msgspec
import pandas as pd
from msgspec import Meta

from catalog.sessions import trading_sessions

NEW_YORK = "America/New_York"
_REGULAR_CLOSE = pd.Timedelta(hours=16)  # after New York midnight; earlier closes are half days


class ScheduleSection(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """The ``schedule:`` section of a live config. ``catalog``: where pre-open ingests the
    last ``ingest_sessions`` sessions it misses (Polygon REST), the data the nightly retrain
    reads; none, no ingest."""

    pre_open_minutes: Annotated[int, Meta(ge=5, le=240)] = 30
    post_close_minutes: Annotated[int, Meta(ge=0, le=360)] = 15
    catalog: str | None = None
    ingest_sessions: Annotated[int, Meta(ge=1, le=60)] = 5


class Phase(StrEnum):
    PRE_OPEN = "pre-open"
    SESSION = "session"
    CLOSE = "close"
    POST_CLOSE = "post-close"


@dataclass(frozen=True)
class PhaseSlot:
    """``phase`` of ``day`` runs from ``start`` (UTC) and is over at ``end``."""

    day: date
    phase: Phase
    start: pd.Timestamp
    end: pd.Timestamp


@dataclass(frozen=True)
class DayPlan:
    """One New York date: its session bounds (None on a weekend or holiday) and its phases
    in order (none on a weekend or holiday)."""

    day: date
    open: pd.Timestamp | None
    close: pd.Timestamp | None
    slots: tuple[PhaseSlot, ...]

    @property
    def is_session(self) -> bool:
        return bool(self.slots)

    @property
    def early_close(self) -> bool:
        """A half day: the session closes before 16:00 New York time."""
        if self.close is None:
            return False
        local = self.close.tz_convert(NEW_YORK)
        return local - local.normalize() < _REGULAR_CLOSE

    def slot(self, phase: Phase) -> PhaseSlot:
        return next(s for s in self.slots if s.phase == phase)

    def slot_at(self, ts: pd.Timestamp) -> PhaseSlot | None:
        """The phase running at ``ts``; None before pre-open, after the day, or on a day
        without a session."""
        return next((s for s in self.slots if s.start <= ts < s.end), None)


def day_plan(day: date, schedule: ScheduleSection, flatten_minutes_before_close: int) -> DayPlan:
    """``day``'s phases. ``flatten_minutes_before_close`` is the strategy's (its risk rules):
    the close phase starts the minute the strategy flattens, one value for both."""
    sessions = trading_sessions(day, day)
    if sessions.empty:
        return DayPlan(day=day, open=None, close=None, slots=())
    opens, closes = sessions["open"].iloc[0], sessions["close"].iloc[0]
    minute = pd.Timedelta(minutes=1)
    pre_open = opens - schedule.pre_open_minutes * minute
    flatten = closes - flatten_minutes_before_close * minute
    post_close = closes + schedule.post_close_minutes * minute
    midnight = pd.Timestamp(day + timedelta(days=1), tz=NEW_YORK).tz_convert("UTC")
    bounds = [(Phase.PRE_OPEN, pre_open, opens), (Phase.SESSION, opens, flatten),
              (Phase.CLOSE, flatten, post_close), (Phase.POST_CLOSE, post_close, midnight)]
    return DayPlan(day=day, open=opens, close=closes,
                   slots=tuple(PhaseSlot(day, phase, start, end) for phase, start, end in bounds))


def new_york_date(ts: pd.Timestamp) -> date:
    return ts.tz_convert(NEW_YORK).date()
