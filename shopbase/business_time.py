"""Business-time arithmetic: "9 business hours after this moment" in a shop's time zone.

A :class:`Schedule` is opening hours per weekday (local wall-clock minutes, ``close`` may be
24:00) plus closed dates (holidays), in an IANA zone. Business time is real elapsed time inside
the open intervals: every interval is turned into two UTC instants with :mod:`zoneinfo`, so a day
of 00:00–24:00 on which clocks spring forward lasts 23 hours and one on which they fall back 25,
and an opening time inside a spring-forward gap (02:30 that does not exist) opens at the instant
the wall clock would have shown it (fold 0, the offset before the change).

Everything takes and returns timezone-aware datetimes (returned in UTC); nothing reads the clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["Schedule", "add_business", "business_seconds", "open_intervals", "MAX_DAYS"]

#: how far the arithmetic looks ahead for open hours before it gives up (a schedule closed for
#: longer has no due time)
MAX_DAYS = 3 * 366
_DAY_MINUTES = 24 * 60


@dataclass(frozen=True)
class Schedule:
    """Opening hours: ``hours[weekday] = (open_minute, close_minute)`` with Monday = 0, minutes
    since local midnight, ``0 <= open < close <= 1440``; a weekday missing is closed. ``closed``
    holds local dates on which the shop is closed all day."""

    timezone: str
    hours: dict[int, tuple[int, int]]
    closed: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # an unknown zone fails here, not in the middle of a computation
        for weekday, (opens, closes) in self.hours.items():
            if not (0 <= weekday <= 6 and 0 <= opens < closes <= _DAY_MINUTES):
                raise ValueError(f"bad opening hours for weekday {weekday}: {opens}-{closes}")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def always(cls, timezone: str = "UTC") -> Schedule:
        """Open around the clock (business time is plain elapsed time)."""
        return cls(timezone, {d: (0, _DAY_MINUTES) for d in range(7)})

    def interval(self, day: date) -> tuple[datetime, datetime] | None:
        """The open interval of one local date, as UTC instants; None when closed that day."""
        if day in self.closed or day.weekday() not in self.hours:
            return None
        opens, closes = self.hours[day.weekday()]
        return _instant(day, opens, self.zone), _instant(day, closes, self.zone)


def _instant(day: date, minute: int, zone: ZoneInfo) -> datetime:
    if minute >= _DAY_MINUTES:
        day, minute = day + timedelta(days=1), minute - _DAY_MINUTES
    return datetime.combine(day, time(minute // 60, minute % 60), zone).astimezone(UTC)


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware")
    return value.astimezone(UTC)


def open_intervals(schedule: Schedule, start: datetime, *, days: int = MAX_DAYS) -> Iterator[tuple[datetime, datetime]]:
    """The open intervals that end after ``start`` (clipped to begin at ``start``), in order."""
    start = _aware(start, "start")
    day = start.astimezone(schedule.zone).date() - timedelta(days=1)  # an interval of yesterday may run past midnight
    for _ in range(days + 2):
        found = schedule.interval(day)
        day += timedelta(days=1)
        if found is None:
            continue
        opens, closes = found
        if closes <= start:
            continue
        yield max(opens, start), closes


def add_business(schedule: Schedule, start: datetime, seconds: float) -> datetime | None:
    """The instant ``seconds`` of business time after ``start`` (UTC); None when the schedule has
    no open hours within :data:`MAX_DAYS`. Zero seconds outside the hours gives the next opening."""
    if seconds < 0:
        raise ValueError("seconds must not be negative")
    left = timedelta(seconds=seconds)
    for opens, closes in open_intervals(schedule, start):
        length = closes - opens
        if left <= length:
            return opens + left
        left -= length
    return None


def business_seconds(schedule: Schedule, start: datetime, end: datetime) -> float:
    """Business time between two instants, in seconds (negative when ``end`` is before ``start``)."""
    start, end = _aware(start, "start"), _aware(end, "end")
    if end < start:
        return -business_seconds(schedule, end, start)
    total = timedelta(0)
    span_days = (end - start).days + 2
    for opens, closes in open_intervals(schedule, start, days=span_days):
        if opens >= end:
            break
        total += min(closes, end) - opens
    return total.total_seconds()
