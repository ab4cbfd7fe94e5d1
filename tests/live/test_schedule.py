"""The day plan (live.schedule): phase times from the XNYS calendar, half days and holidays."""

from datetime import date

import msgspec
import pandas as pd
import pytest

from live.schedule import NEW_YORK, DayPlan, Phase, ScheduleSection, day_plan
from live.settings import LiveConfig


def ny_times(plan: DayPlan) -> list[tuple[str, str, str]]:
    return [(str(s.phase), s.start.tz_convert(NEW_YORK).strftime("%H:%M"), s.end.tz_convert(NEW_YORK).strftime("%H:%M"))
            for s in plan.slots]


def test_a_regular_session_day_runs_every_phase_at_its_new_york_time():
    plan = day_plan(date(2024, 11, 26), ScheduleSection(), flatten_minutes_before_close=5)
    assert ny_times(plan) == [("pre-open", "09:00", "09:30"), ("session", "09:30", "15:55"),
                              ("close", "15:55", "16:15"), ("post-close", "16:15", "00:00")]
    assert plan.open == pd.Timestamp("2024-11-26 14:30", tz="UTC")  # EST: UTC-5
    assert not plan.early_close


def test_a_half_day_moves_the_flatten_and_the_close_before_its_1300_close():
    plan = day_plan(date(2024, 11, 29), ScheduleSection(), flatten_minutes_before_close=5)
    assert plan.early_close and plan.close == pd.Timestamp("2024-11-29 18:00", tz="UTC")
    assert ny_times(plan) == [("pre-open", "09:00", "09:30"), ("session", "09:30", "12:55"),
                              ("close", "12:55", "13:15"), ("post-close", "13:15", "00:00")]


@pytest.mark.parametrize("day", [date(2024, 11, 28), date(2024, 12, 25), date(2024, 11, 30), date(2024, 12, 1)])
def test_holidays_and_weekends_have_no_phase(day: date):
    plan = day_plan(day, ScheduleSection(), flatten_minutes_before_close=5)
    assert not plan.is_session and plan.slots == () and plan.open is None


def test_the_offsets_come_from_the_schedule_section_and_daylight_saving_is_new_york_time():
    plan = day_plan(date(2024, 7, 1), ScheduleSection(pre_open_minutes=60, post_close_minutes=0),
                    flatten_minutes_before_close=10)
    assert ny_times(plan)[:3] == [("pre-open", "08:30", "09:30"), ("session", "09:30", "15:50"),
                                  ("close", "15:50", "16:00")]
    assert plan.slot(Phase.PRE_OPEN).start == pd.Timestamp("2024-07-01 12:30", tz="UTC")  # EDT: UTC-4


def test_slot_at_finds_the_running_phase():
    plan = day_plan(date(2024, 11, 26), ScheduleSection(), flatten_minutes_before_close=5)
    at = lambda hhmm: plan.slot_at(pd.Timestamp(f"2024-11-26 {hhmm}", tz=NEW_YORK).tz_convert("UTC"))
    assert at("08:59") is None
    assert at("09:00").phase == Phase.PRE_OPEN
    assert at("12:00").phase == Phase.SESSION
    assert at("15:55").phase == Phase.CLOSE
    assert at("23:59").phase == Phase.POST_CLOSE


@pytest.mark.parametrize(("field", "value", "message"), [
    ("pre_open_minutes", 2, "Expected `int` >= 5 - at `$.schedule.pre_open_minutes`"),
    ("post_close_minutes", -1, "Expected `int` >= 0 - at `$.schedule.post_close_minutes`"),
    ("ingest_sessions", 0, "Expected `int` >= 1 - at `$.schedule.ingest_sessions`"),
    ("pre_opne_minutes", 30, "unknown field `pre_opne_minutes`"),
])
def test_a_bad_schedule_value_names_its_key(field: str, value: int, message: str):
    raw = {"models": {"registry": "runs/latest/models"}, "schedule": {field: value}}
    with pytest.raises(msgspec.ValidationError, match=message.replace("$", r"\$").replace("`", ".")):
        msgspec.convert(raw, LiveConfig)
