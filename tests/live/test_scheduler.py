"""The runner (live.scheduler) on a simulated clock: when each phase runs over a week with a
half day and a holiday, what a restart resumes, the ledger, and one scheduler at a time."""

import os
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from catalog.sessions import trading_sessions
from live.schedule import NEW_YORK, DayPlan, Phase, ScheduleSection
from live.scheduler import (
    FileLedger,
    PhaseEvent,
    Scheduler,
    SchedulerLock,
    SchedulerLockedError,
    SimulatedClock,
    WallClock,
)

FLATTEN = 5


class RecordingPhases:
    """Phases that log when the clock says they ran; the session holds the clock until its
    end like the live node's does. ``crash_during`` raises in that phase (a killed process)."""

    def __init__(self, clock: SimulatedClock, crash_during: tuple[date, Phase] | None = None) -> None:
        self.clock = clock
        self.log: list[tuple[str, str, str]] = []
        self.crash_during = crash_during

    def _ran(self, plan: DayPlan, phase: Phase) -> None:
        self.log.append((str(plan.day), str(phase), self.clock.now().tz_convert(NEW_YORK).strftime("%H:%M")))
        if self.crash_during == (plan.day, phase):
            raise KeyboardInterrupt

    def pre_open(self, plan: DayPlan) -> dict:
        self._ran(plan, Phase.PRE_OPEN)
        return {"ingested": 1}

    def session(self, plan: DayPlan, until: pd.Timestamp) -> dict:
        self._ran(plan, Phase.SESSION)
        self.clock.advance_to(pd.Timestamp(f"{plan.day} 12:00", tz=NEW_YORK))
        if self.crash_during == (plan.day, "mid-session"):
            raise KeyboardInterrupt
        self.clock.sleep_until(until)
        return {}

    def close(self, plan: DayPlan) -> dict:
        self._ran(plan, Phase.CLOSE)
        return {"flat": True}

    def post_close(self, plan: DayPlan) -> dict:
        self._ran(plan, Phase.POST_CLOSE)
        return {"retrain": "none configured"}


def scheduler(phases: RecordingPhases, ledger: FileLedger, events: list | None = None) -> Scheduler:
    return Scheduler(phases, ScheduleSection(), FLATTEN, phases.clock, ledger,
                     on_event=(events.append if events is not None else lambda _e: None))


def test_thanksgiving_week_runs_each_phase_at_its_new_york_time(tmp_path: Path):
    """2024-11-25..29: Thanksgiving (28th) closed, the 29th closes at 13:00."""
    clock = SimulatedClock(pd.Timestamp("2024-11-25 00:00", tz=NEW_YORK))
    phases, idle = RecordingPhases(clock), []
    Scheduler(phases, ScheduleSection(), FLATTEN, clock, FileLedger(tmp_path / "ledger.jsonl"),
              on_idle=lambda d: idle.append((d, clock.now()))).run(date(2024, 11, 25), date(2024, 11, 29))

    sessions = trading_sessions("2024-11-25", "2024-11-29")
    expected = []
    for day, row in sessions.iterrows():
        close = row["close"].tz_convert(NEW_YORK)
        hhmm = lambda ts: ts.strftime("%H:%M")
        expected += [(str(day.date()), "pre-open", "09:00"), (str(day.date()), "session", "09:30"),
                     (str(day.date()), "close", hhmm(close - pd.Timedelta(minutes=FLATTEN))),
                     (str(day.date()), "post-close", hhmm(close + pd.Timedelta(minutes=15)))]
    assert phases.log == expected
    assert not any(day == "2024-11-28" for day, _, _ in phases.log)  # nothing on the holiday
    assert idle == [(date(2024, 11, 28), pd.Timestamp("2024-11-28 00:00", tz=NEW_YORK))]  # idle from its midnight
    assert clock.now() == pd.Timestamp("2024-11-29 13:15", tz=NEW_YORK)  # the week ends with the half day's post-close
    half_day_close = [t for day, phase, t in phases.log if day == "2024-11-29" and phase == "close"]
    assert half_day_close == ["12:55"]  # the flatten-and-verify before the early 13:00 close


def test_a_restart_mid_session_resumes_the_session_without_rerunning_pre_open(tmp_path: Path):
    ledger = FileLedger(tmp_path / "ledger.jsonl")
    clock = SimulatedClock(pd.Timestamp("2024-11-26 08:00", tz=NEW_YORK))
    first = RecordingPhases(clock, crash_during=(date(2024, 11, 26), "mid-session"))
    with pytest.raises(KeyboardInterrupt):
        scheduler(first, ledger).run(date(2024, 11, 26), date(2024, 11, 26))
    assert [p for _, p, _ in first.log] == ["pre-open", "session"]
    assert ledger.completed(date(2024, 11, 26)) == {Phase.PRE_OPEN}  # the session never finished

    clock.advance_to(pd.Timestamp("2024-11-26 13:07", tz=NEW_YORK))  # the process is back at 13:07
    second, events = RecordingPhases(clock), []
    scheduler(second, ledger, events).run(date(2024, 11, 26), date(2024, 11, 26))
    assert second.log == [("2024-11-26", "session", "13:07"), ("2024-11-26", "close", "15:55"),
                          ("2024-11-26", "post-close", "16:15")]
    assert [(str(e.slot.phase), e.outcome) for e in events] == [
        ("pre-open", "skipped"), ("session", "done"), ("close", "done"), ("post-close", "done")]
    assert [e["phase"] for e in ledger.entries()].count("pre-open") == 1  # ingest ran once


def test_a_start_during_the_session_with_nothing_done_runs_pre_open_late_then_trades(tmp_path: Path):
    clock = SimulatedClock(pd.Timestamp("2024-11-26 11:00", tz=NEW_YORK))
    phases = RecordingPhases(clock)
    scheduler(phases, FileLedger(tmp_path / "ledger.jsonl")).run(date(2024, 11, 26), date(2024, 11, 26))
    assert [(p, t) for _, p, t in phases.log][:2] == [("pre-open", "11:00"), ("session", "11:00")]


def test_a_start_after_the_session_misses_it_but_still_verifies_the_close(tmp_path: Path):
    ledger = FileLedger(tmp_path / "ledger.jsonl")
    clock = SimulatedClock(pd.Timestamp("2024-11-26 16:05", tz=NEW_YORK))
    phases = RecordingPhases(clock)
    scheduler(phases, ledger).run(date(2024, 11, 26), date(2024, 11, 26))
    assert phases.log == [("2024-11-26", "close", "16:05"), ("2024-11-26", "post-close", "16:15")]
    assert [(e["phase"], e["outcome"]) for e in ledger.entries()] == [
        ("pre-open", "missed"), ("session", "missed"), ("close", "done"), ("post-close", "done")]


def test_a_day_already_done_runs_nothing_again(tmp_path: Path):
    ledger = FileLedger(tmp_path / "ledger.jsonl")
    clock = SimulatedClock(pd.Timestamp("2024-11-26 00:00", tz=NEW_YORK))
    scheduler(RecordingPhases(clock), ledger).run(date(2024, 11, 26), date(2024, 11, 26))
    again: list[PhaseEvent] = []
    repeat = RecordingPhases(clock)
    scheduler(repeat, ledger, again).run(date(2024, 11, 26), date(2024, 11, 26))
    assert repeat.log == [] and {e.outcome for e in again} == {"skipped"}


def test_a_second_scheduler_is_refused_with_the_pid_of_the_first(tmp_path: Path):
    lock = tmp_path / "scheduler.lock"
    with SchedulerLock(lock), pytest.raises(SchedulerLockedError, match=f"another scheduler \\(pid {os.getpid()},"):
        SchedulerLock(lock).__enter__()
    with SchedulerLock(lock):  # released on exit: the next one gets it
        pass


def test_the_lock_of_a_killed_scheduler_does_not_block_the_next(tmp_path: Path):
    """kill -9 leaves the file with the dead pid; the kernel dropped the lock with the process."""
    lock = tmp_path / "scheduler.lock"
    holder = textwrap.dedent(f"""
        import os, sys, time
        from pathlib import Path
        from live.scheduler import SchedulerLock
        held = SchedulerLock(Path({str(lock)!r})).__enter__()  # kept: a collected lock closes its file
        print("locked", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(SchedulerLockedError, match=f"pid {proc.pid}"):
            SchedulerLock(lock).__enter__()
    finally:
        proc.kill()
        proc.wait()
    assert f"(pid {proc.pid}," in lock.read_text()  # the stale holder is still written
    with SchedulerLock(lock):
        assert f"(pid {os.getpid()}," in lock.read_text()


def test_a_ledger_line_cut_short_by_a_kill_counts_as_not_done(tmp_path: Path):
    ledger = FileLedger(tmp_path / "ledger.jsonl")
    ledger.record(date(2024, 11, 26), Phase.PRE_OPEN, "done", {"ingested": 1})
    with ledger.path.open("a") as f:
        f.write('{"day": "2024-11-26", "phase": "sess')  # the process died mid-write
    assert ledger.completed(date(2024, 11, 26)) == {Phase.PRE_OPEN}


def test_the_wall_clock_wakes_at_or_after_the_time_asked():
    clock = WallClock()
    wake = clock.now() + pd.Timedelta(milliseconds=30)
    clock.sleep_until(wake)
    assert clock.now() >= wake
    clock.sleep_until(wake - pd.Timedelta(hours=1))  # a time already passed returns at once
