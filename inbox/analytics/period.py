"""The period and filters of a report, checked once for the page and the CLI.

Dates are whole days in the shop's time zone, both ends included: ``--from 2026-11-01 --to
2026-11-30`` covers [Nov 1 00:00, Dec 1 00:00) local time. The comparison period is the same
number of days right before. A bad value is a :class:`~shopbase.refusal.Refused` (status 400)
with a plain message: reversed, in the future, longer than :data:`MAX_DAYS`, unreadable, or a
filter we do not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from inbox.models import Channel
from shopbase.formatting import zone
from shopbase.refusal import Refused

__all__ = ["MAX_DAYS", "DEFAULT_DAYS", "FILTERS", "Period", "ReportQuery", "parse_query"]

MAX_DAYS = 366
DEFAULT_DAYS = 30
#: the query parameters a report understands (the page adds ``table`` for a CSV download)
FILTERS = ("from", "to", "channel")


@dataclass(frozen=True)
class Period:
    first: date  # the first local day
    last: date  # the last local day (included)
    tz: tzinfo

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, time(), self.tz)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), self.tz)

    def previous(self) -> Period:
        """The same number of days right before this period."""
        return Period(self.first - timedelta(days=self.days), self.first - timedelta(days=1), self.tz)

    def day_list(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range(self.days)]


@dataclass(frozen=True)
class ReportQuery:
    period: Period
    channel: Channel | None = None


def _date(raw: str, which: str) -> date:
    text = raw.strip()
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        if which == "from":
            raise Refused("bad_date", "The start date must be a date like 2026-11-30.", status=400,
                          fields={"from": "date"}) from None
        raise Refused("bad_date", "The end date must be a date like 2026-11-30.", status=400,
                      fields={"to": "date"}) from None


def parse_query(params: Mapping[str, str], *, now: datetime, timezone: str | tzinfo | None,
                allowed: tuple[str, ...] = FILTERS) -> ReportQuery:
    """The report's period and channel from ``params`` (strings; missing ones take defaults: the
    last 30 days up to today, every channel). Raises ``Refused`` (400) on bad input."""
    unknown = sorted(k for k in params if k not in allowed)
    if unknown:
        raise Refused("unknown_filter", "Unknown filter. Use from, to and channel.", status=400,
                      fields={name[:40]: "unknown" for name in unknown[:5]})
    tz = zone(timezone)
    today = now.astimezone(tz).date()
    last = _date(params["to"], "to") if params.get("to", "").strip() else today
    first = (_date(params["from"], "from") if params.get("from", "").strip()
             else last - timedelta(days=DEFAULT_DAYS - 1))
    if last > today or first > today:
        raise Refused("range_future", "The period ends in the future.", status=400)
    if first > last:
        raise Refused("range_reversed", "The start date is after the end date.", status=400)
    if (last - first).days + 1 > MAX_DAYS:
        raise Refused("range_too_long", "The period is longer than 366 days. Choose a shorter one.", status=400)
    if first.year < 2000:
        raise Refused("range_too_old", "The period starts before the year 2000.", status=400)
    channel = None
    raw_channel = params.get("channel", "").strip()
    if raw_channel and raw_channel != "all":
        try:
            channel = Channel(raw_channel)
        except ValueError:
            raise Refused("unknown_channel", "Unknown channel. Use webchat, telegram, slack or terminal.",
                          status=400) from None
    return ReportQuery(Period(first, last, tz), channel)
