"""The market-hours runner: walks the day plans of ``live.schedule`` on a clock, one phase
after another, day after day.

The clock is replaceable: ``WallClock`` live, ``SimulatedClock`` for rehearsals and tests,
whose sleeps return at once, so the same schedule runs as fast as the phases keep up.

What a phase does is not this module's: it calls a ``DayPhases`` (the live node's phases,
``live.trading_day``, or a rehearsal's). What was done is a ``PhaseLedger``'s (a JSON-lines
file here; the journal can hold it instead), so a runner restarted mid-day resumes where the
clock and the ledger say it is: a done phase is never repeated (pre-open's ingest is not
re-run), a session still in progress is resumed (the node reconciles with the broker when it
starts, so the orders already placed are not placed again), a phase whose time has passed
without it is recorded as missed, except the close, which runs whenever it has not (a
restart after the close still verifies the broker is flat). One runner at a time:
``SchedulerLock``.
"""

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal, Protocol

import pandas as pd

from catalog.file_lock import FileLock, LockHeldError
from live.schedule import (
    NEW_YORK,
    DayPlan,
    Phase,
    PhaseSlot,
    ScheduleSection,
    day_plan,
    new_york_date,
)

_WALL_SLEEP_STEP_SECS = 1.0


class Clock(Protocol):
    def now(self) -> pd.Timestamp:
        """The current time, UTC."""
        ...

    def sleep_until(self, ts: pd.Timestamp) -> None:
        """Return once ``now() >= ts`` (at once when it already is)."""
        ...


class WallClock:
    """Real time. Sleeps in short steps, so Ctrl-C and SIGTERM are taken within a second and a
    suspended machine does not oversleep a phase."""

    def now(self) -> pd.Timestamp:
        return pd.Timestamp.now(tz="UTC")

    def sleep_until(self, ts: pd.Timestamp) -> None:
        while (remaining := (ts - self.now()).total_seconds()) > 0:
            time.sleep(min(remaining, _WALL_SLEEP_STEP_SECS))


class SimulatedClock:
    """Time that moves only when the runner sleeps (it jumps to the wake-up time) or a test
    moves it."""

    def __init__(self, start: pd.Timestamp) -> None:
        self._now = pd.Timestamp(start).tz_convert("UTC")

    def now(self) -> pd.Timestamp:
        return self._now

    def sleep_until(self, ts: pd.Timestamp) -> None:
        self._now = max(self._now, ts)

    def advance_to(self, ts: pd.Timestamp) -> None:
        self.sleep_until(ts)


class DayPhases(Protocol):
    """What each phase does; the runner decides when. ``session`` returns at ``until`` (it
    may be called in a process whose ``pre_open`` ran in an earlier one: it then starts and
    reconciles the node itself). Each returns a JSON-able record for the ledger."""

    def pre_open(self, plan: DayPlan) -> dict: ...

    def session(self, plan: DayPlan, until: pd.Timestamp) -> dict: ...

    def close(self, plan: DayPlan) -> dict: ...

    def post_close(self, plan: DayPlan) -> dict: ...


# The nightly retrain and guarded promotion (post-close): given the day, fit and evaluate the
# challengers, promote or not, return the decision's record (``live.retrain`` runs it and
# journals the decision). None: the post-close only records that no retrain is configured.
RetrainHook = Callable[[DayPlan], dict]


class PhaseLedger(Protocol):
    """What was done: the runner asks before each phase and records after it."""

    def completed(self, day: date) -> set[Phase]: ...

    def record(self, day: date, phase: Phase, outcome: str, detail: dict) -> None: ...


class FileLedger:
    """An append-only JSON-lines file: one line per phase done or missed, written when the
    phase ends (a crash mid-phase leaves it not done, so it is resumed)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self) -> list[dict]:
        """Every complete line; a last line without its newline is a write a kill cut short,
        and its phase counts as not done."""
        if not self.path.exists():
            return []
        *complete, _torn = self.path.read_text().split("\n")
        return [json.loads(line) for line in complete if line.strip()]

    def completed(self, day: date) -> set[Phase]:
        return {Phase(e["phase"]) for e in self.entries() if e["day"] == day.isoformat()}

    def record(self, day: date, phase: Phase, outcome: str, detail: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"day": day.isoformat(), "phase": str(phase), "outcome": outcome, **detail}, default=str)
        with self.path.open("a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


class SchedulerLockedError(LockHeldError):
    """Another scheduler holds the lock; the message names its pid and the lock file."""


class SchedulerLock(FileLock):
    """One scheduler at a time per state directory (``catalog.file_lock``: a killed one
    never blocks its restart)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "another scheduler", busy=SchedulerLockedError,
                         remedy="stop it first (one scheduler at a time)")


Outcome = Literal["done", "missed", "skipped"]


@dataclass(frozen=True)
class PhaseEvent:
    """What the runner did with a slot: "done", "missed" (its time passed without it) or
    "skipped" (done before, by an earlier process); ``detail`` is the phase's record."""

    slot: PhaseSlot
    outcome: Outcome
    detail: dict


class Scheduler:
    """Runs ``phases`` at the times of the day plans, on ``clock``. ``on_event`` sees every
    phase (done, missed, skipped) and ``on_idle`` every day without a session."""

    def __init__(
        self,
        phases: DayPhases,
        schedule: ScheduleSection,
        flatten_minutes_before_close: int,
        clock: Clock,
        ledger: PhaseLedger,
        on_event: Callable[[PhaseEvent], None] = lambda _e: None,
        on_idle: Callable[[date], None] = lambda _d: None,
    ) -> None:
        self.phases = phases
        self.schedule = schedule
        self.flatten_minutes = flatten_minutes_before_close
        self.clock = clock
        self.ledger = ledger
        self.on_event = on_event
        self.on_idle = on_idle

    def run(self, first: date | None = None, last: date | None = None) -> None:
        """Days ``first`` (default: the clock's New York date) to ``last`` (default: forever)."""
        for day in _days(first or new_york_date(self.clock.now()), last):
            self.clock.sleep_until(pd.Timestamp(day, tz=NEW_YORK).tz_convert("UTC"))  # a day starts at midnight
            plan = day_plan(day, self.schedule, self.flatten_minutes)
            if plan.is_session:
                self.run_day(plan)
            else:
                self.on_idle(day)

    def run_day(self, plan: DayPlan) -> None:
        done = self.ledger.completed(plan.day)
        for slot in plan.slots:
            if slot.phase in done:
                self.on_event(PhaseEvent(slot, "skipped", {}))
                continue
            if self.clock.now() >= self._deadline(plan, slot):
                self._finish(slot, "missed", {"at": str(self.clock.now())})
                continue
            self.clock.sleep_until(slot.start)
            self._finish(slot, "done", self._call(plan, slot))

    @staticmethod
    def _deadline(plan: DayPlan, slot: PhaseSlot) -> pd.Timestamp:
        """Until when a phase not yet done still runs: pre-open as long as there is a session
        left to trade (a start during the session still ingests, loads and starts the node),
        the close until the day is over, the others until their slot ends."""
        if slot.phase == Phase.PRE_OPEN:
            return plan.slot(Phase.SESSION).end
        if slot.phase == Phase.CLOSE:
            return plan.slot(Phase.POST_CLOSE).end
        return slot.end

    def _call(self, plan: DayPlan, slot: PhaseSlot) -> dict:
        match slot.phase:
            case Phase.PRE_OPEN:
                return self.phases.pre_open(plan)
            case Phase.SESSION:
                return self.phases.session(plan, until=slot.end)
            case Phase.CLOSE:
                return self.phases.close(plan)
            case Phase.POST_CLOSE:
                return self.phases.post_close(plan)

    def _finish(self, slot: PhaseSlot, outcome: Outcome, detail: dict) -> None:
        self.ledger.record(slot.day, slot.phase, outcome, detail)
        self.on_event(PhaseEvent(slot, outcome, detail))


def _days(first: date, last: date | None) -> Iterator[date]:
    day = first
    while last is None or day <= last:
        yield day
        day += timedelta(days=1)
