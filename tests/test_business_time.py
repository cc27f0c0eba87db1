"""shopbase.business_time: business hours, weekends, closed dates and DST changes, checked by
hand-computed cases and by properties over random instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shopbase.business_time import Schedule, add_business, business_seconds

NY = ZoneInfo("America/New_York")
H = 3600
OFFICE = {d: (9 * 60, 18 * 60) for d in range(5)}  # Monday–Friday 09:00–18:00


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


def office(closed: frozenset[date] = frozenset()) -> Schedule:
    return Schedule("America/New_York", OFFICE, closed)


def test_inside_the_hours_it_is_plain_time() -> None:
    assert add_business(office(), ny(2026, 11, 18, 10, 0), 2 * H) == ny(2026, 11, 18, 12, 0)
    assert add_business(office(), ny(2026, 11, 18, 17, 0), H) == ny(2026, 11, 18, 18, 0)


def test_the_rest_carries_over_the_night_and_the_weekend() -> None:
    # Friday 17:00 + 2 h: one hour on Friday, one on Monday morning
    assert add_business(office(), ny(2026, 11, 20, 17, 0), 2 * H) == ny(2026, 11, 23, 10, 0)
    # Saturday: nothing counts until Monday 09:00
    assert add_business(office(), ny(2026, 11, 21, 12, 0), 30 * 60) == ny(2026, 11, 23, 9, 30)
    # zero seconds outside the hours is the next opening
    assert add_business(office(), ny(2026, 11, 21, 12, 0), 0) == ny(2026, 11, 23, 9, 0)
    # before opening on a weekday
    assert add_business(office(), ny(2026, 11, 18, 7, 0), H) == ny(2026, 11, 18, 10, 0)
    assert business_seconds(office(), ny(2026, 11, 20, 17, 0), ny(2026, 11, 23, 10, 0)) == 2 * H


def test_closed_dates_are_skipped() -> None:
    thanksgiving = frozenset({date(2026, 11, 26), date(2026, 11, 27)})
    # Wednesday 17:00 + 2 h: Thursday and Friday are closed, then the weekend
    assert add_business(office(thanksgiving), ny(2026, 11, 25, 17, 0), 2 * H) == ny(2026, 11, 30, 10, 0)
    assert business_seconds(office(thanksgiving), ny(2026, 11, 25, 0, 0), ny(2026, 12, 1, 0, 0)) == 9 * H * 2


def test_spring_forward_day_is_23_hours_and_a_gap_opening_is_the_real_instant() -> None:
    always = Schedule.always("America/New_York")
    # 2026-03-08: 02:00 EST becomes 03:00 EDT
    assert add_business(always, ny(2026, 3, 8, 0, 0), 24 * H) == ny(2026, 3, 9, 1, 0)
    assert business_seconds(always, ny(2026, 3, 8, 0, 0), ny(2026, 3, 9, 0, 0)) == 23 * H
    # office hours that day are still 9 real hours
    sunday = Schedule("America/New_York", {6: (9 * 60, 18 * 60)})
    assert business_seconds(sunday, ny(2026, 3, 8, 0, 0), ny(2026, 3, 9, 0, 0)) == 9 * H
    # opening at 02:30, a time that does not exist that day: the instant 02:30 EST would be
    night = Schedule("America/New_York", {6: (2 * 60 + 30, 4 * 60)})
    opens = add_business(night, ny(2026, 3, 8, 0, 0), 0)
    assert opens == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    # ... and it closes at 04:00 EDT (08:00 UTC): half an hour of business time that night
    assert business_seconds(night, ny(2026, 3, 8, 0, 0), ny(2026, 3, 9, 0, 0)) == 30 * 60


def test_fall_back_day_is_25_hours() -> None:
    always = Schedule.always("America/New_York")
    # 2026-11-01: 02:00 EDT becomes 01:00 EST
    assert business_seconds(always, ny(2026, 11, 1, 0, 0), ny(2026, 11, 2, 0, 0)) == 25 * H
    assert add_business(always, ny(2026, 11, 1, 0, 0), 24 * H) == ny(2026, 11, 1, 23, 0)
    # 09:00–18:00 that day is 9 real hours, and a deadline across the change lands right
    sunday = Schedule("America/New_York", {6: (0, 4 * 60)})  # 00:00–04:00 local: 5 real hours
    assert business_seconds(sunday, ny(2026, 11, 1, 0, 0), ny(2026, 11, 2, 0, 0)) == 5 * H


def test_europe_changes_on_its_own_date() -> None:
    berlin = Schedule("Europe/Berlin", {d: (0, 24 * 60) for d in range(7)})
    start = datetime(2026, 3, 29, 0, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert business_seconds(berlin, start, start + timedelta(days=1)) == 23 * H  # an aware + 1 day is wall time


def test_bad_schedules_and_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        Schedule("UTC", {0: (600, 500)})
    with pytest.raises(ValueError):
        Schedule("UTC", {7: (0, 60)})
    with pytest.raises(KeyError):  # zoneinfo.ZoneInfoNotFoundError
        Schedule("Mars/Olympus", {0: (0, 60)})
    with pytest.raises(ValueError):
        add_business(office(), datetime(2026, 1, 1, 12, 0), 60)
    with pytest.raises(ValueError):
        add_business(office(), ny(2026, 1, 1, 12, 0), -1)


def test_a_schedule_with_no_open_day_in_reach_has_no_due_time() -> None:
    every_day = frozenset(date(2026, 1, 1) + timedelta(days=i) for i in range(4 * 366))
    assert add_business(Schedule("UTC", {0: (0, 60)}, every_day), datetime(2026, 1, 1, tzinfo=UTC), 60) is None


ZONES = st.sampled_from(["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"])
INSTANTS = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC))


@settings(max_examples=150, deadline=None)
@given(zone=ZONES, start=INSTANTS, seconds=st.integers(min_value=0, max_value=40 * 9 * H),
       opens=st.integers(0, 12 * 60), length=st.integers(15, 12 * 60))
def test_adding_then_measuring_gives_the_same_time_back(zone: str, start: datetime, seconds: int, opens: int,
                                                        length: int) -> None:
    assume(seconds <= length * 60 * 400)  # within the look-ahead (MAX_DAYS): 400 open weekdays
    schedule = Schedule(zone, {d: (opens, opens + length) for d in (0, 1, 2, 3, 4)})
    due = add_business(schedule, start, seconds)
    assert due is not None and due >= start
    assert business_seconds(schedule, start, due) == pytest.approx(seconds)
    # and it is the earliest such instant: a minute earlier is short of the target
    if seconds >= 60:
        assert business_seconds(schedule, start, due - timedelta(minutes=1)) < seconds


@settings(max_examples=100, deadline=None)
@given(zone=ZONES, a=INSTANTS, b=INSTANTS, c=INSTANTS)
def test_business_time_adds_up_over_consecutive_spans(zone: str, a: datetime, b: datetime, c: datetime) -> None:
    a, b, c = sorted((a, b, c))
    schedule = Schedule(zone, {0: (9 * 60, 17 * 60), 2: (0, 24 * 60), 5: (22 * 60, 24 * 60)})
    assert business_seconds(schedule, a, c) == pytest.approx(
        business_seconds(schedule, a, b) + business_seconds(schedule, b, c))
    assert business_seconds(schedule, c, a) == -business_seconds(schedule, a, c)
