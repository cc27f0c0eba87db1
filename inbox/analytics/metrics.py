"""The inbox's KPIs, each one SQL statement (aggregates and window functions) that reads the
same on SQLite and PostgreSQL. Every function takes the report's query (period, channel) and
reads only.

Which conversations: those *opened* in the period (``created_at``), on the channel when one is
chosen; ratings: those *given* in the period. The intent of a conversation is its
``last_intent`` (``unknown`` when the bot never classified one).

* **Automated** (bot automation rate): resolved, and no person took part — never assigned, no
  agent reply (``first_response_at`` is set by the first agent reply only), never escalated.
* **First response**: opened → first agent reply; **resolution**: opened → resolved. Both in
  wall-clock seconds through :func:`response_seconds`, the one place to switch to business hours
  once SLA settings exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.analytics.period import Period, ReportQuery
from inbox.models import Agent, AuditEvent, Conversation, CsatSurvey
from shopbase.sqltime import day_of, local_day, offset_schedule, percentiles, seconds_between

__all__ = [
    "UNKNOWN_INTENT",
    "WISMO_INTENT",
    "Durations",
    "IntentAutomation",
    "Cube",
    "conversation_cube",
    "conversation_cubes",
    "response_durations",
    "CsatRow",
    "response_seconds",
    "conversations_by_day",
    "conversations_by_intent",
    "automation_by_intent",
    "automation_by_day",
    "first_response",
    "resolution",
    "csat_by_agent",
    "csat_by_intent",
    "wismo_by_day",
]

UNKNOWN_INTENT = "unknown"
WISMO_INTENT = "track_order"
RANKS = (50, 90)


def response_seconds(start: Any, end: Any) -> Any:
    """Seconds from ``start`` to ``end`` as the response-time KPIs count them: wall-clock today.
    Switch here to business hours when the SLA settings exist (one SQL expression)."""
    return seconds_between(start, end)


def _intent() -> Any:
    return sa.func.coalesce(col(Conversation.last_intent), UNKNOWN_INTENT)


def _opened(query: ReportQuery, period: Period) -> list[Any]:
    where = [col(Conversation.created_at) >= period.since, col(Conversation.created_at) < period.until]
    if query.channel is not None:
        where.append(col(Conversation.channel) == query.channel)
    return where


def _automated() -> Any:
    escalated = sa.exists().where(col(AuditEvent.conversation_id) == col(Conversation.id),
                                  col(AuditEvent.action) == "conversation.escalated")
    return sa.and_(col(Conversation.resolved_at).is_not(None), col(Conversation.first_response_at).is_(None),
                   col(Conversation.assignee_id).is_(None), sa.not_(escalated))


def _day(value: Any, period: Period) -> Any:
    return local_day(value, offset_schedule(period.tz, period.since, period.until))


async def _rows(session: AsyncSession, stmt: Any) -> list[Any]:
    return list((await session.exec(stmt)).all())


@dataclass(frozen=True)
class IntentAutomation:
    intent: str
    conversations: int
    automated: int

    @property
    def rate(self) -> float | None:
        return self.automated / self.conversations if self.conversations else None


@dataclass(frozen=True)
class Cube:
    """Conversations opened, and those automated, per (local day, channel, intent): one GROUP BY
    over the period (one index range scan), from which the per-day, per-channel and per-intent
    tables are added up. ``day`` is None when the cube was asked without days."""

    rows: list[tuple[date | None, str, str, int, int]]

    def by_day_channel(self) -> list[tuple[date, str, int]]:
        found: dict[tuple[date, str], int] = {}
        for day, channel, _, n, _ in self.rows:
            if day is not None:
                found[(day, channel)] = found.get((day, channel), 0) + n
        return sorted((d, c, n) for (d, c), n in found.items())

    def by_intent(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for _, _, intent, n, _ in self.rows:
            found[intent] = found.get(intent, 0) + n
        return found

    def automation_by_intent(self) -> list[IntentAutomation]:
        found: dict[str, tuple[int, int]] = {}
        for _, _, intent, n, a in self.rows:
            total, automated = found.get(intent, (0, 0))
            found[intent] = (total + n, automated + a)
        return sorted((IntentAutomation(i, n, a) for i, (n, a) in found.items()),
                      key=lambda r: (-r.conversations, r.intent))

    def automation_by_day(self) -> list[tuple[date, int, int]]:
        found: dict[date, tuple[int, int]] = {}
        for day, _, _, n, a in self.rows:
            if day is not None:
                total, automated = found.get(day, (0, 0))
                found[day] = (total + n, automated + a)
        return [(d, n, a) for d, (n, a) in sorted(found.items())]

    def without_days(self) -> Cube:
        found: dict[tuple[str, str], tuple[int, int]] = {}
        for _, channel, intent, n, a in self.rows:
            total, automated = found.get((channel, intent), (0, 0))
            found[(channel, intent)] = (total + n, automated + a)
        return Cube([(None, c, i, n, a) for (c, i), (n, a) in sorted(found.items())])

    def intent_by_day(self, intent: str) -> dict[date, int]:
        found: dict[date, int] = {}
        for day, _, i, n, _ in self.rows:
            if day is not None and i == intent:
                found[day] = found.get(day, 0) + n
        return found


async def conversation_cube(session: AsyncSession, query: ReportQuery, period: Period, *,
                            daily: bool = True, live: bool = False) -> Cube:
    """The :class:`Cube` of ``period`` (per day only when ``daily``): from the daily rollup
    (``inbox.analytics.rollup``) when it counts days in the period's zone, else (or ``live``)
    from the conversations themselves."""
    if not live:
        from inbox.analytics.rollup import rollup_cube

        rolled = await rollup_cube(session, query, period)
        if rolled is not None:
            return rolled if daily else rolled.without_days()
    # the day is computed once per row in a subquery and grouped by its column (grouping by the
    # expression made SQLite evaluate it twice: the SELECT's and the GROUP BY's binds differ)
    inner = sa.select(
        *([_day(col(Conversation.created_at), period).label("day")] if daily else []),
        col(Conversation.channel).label("channel"), _intent().label("intent"),
        sa.case((_automated(), 1), else_=0).label("automated"),
    ).where(*_opened(query, period)).subquery()
    keys: list[Any] = ([inner.c.day] if daily else []) + [inner.c.channel, inner.c.intent]
    stmt = sa.select(*keys, sa.func.count(), sa.func.sum(inner.c.automated)).group_by(*keys)
    rows = []
    for row in await _rows(session, stmt):
        values = list(row)
        day = day_of(values.pop(0)) if daily else None
        c, i, n, a = values
        rows.append((day, getattr(c, "value", str(c)), str(i), int(n), int(a or 0)))
    return Cube(rows)


async def conversation_cubes(session: AsyncSession, query: ReportQuery, *,
                             live: bool = False) -> tuple[Cube, Cube]:
    """The daily cubes of the period and of the one before, read in ONE statement (the rollup's
    rows of both periods, or one index range scan over their conversations)."""
    period, previous = query.period, query.period.previous()
    both = Period(previous.first, period.last, period.tz)
    cube = await conversation_cube(session, query, both, live=live)
    current = Cube([r for r in cube.rows if r[0] is not None and r[0] >= period.first])
    before = Cube([r for r in cube.rows if r[0] is not None and r[0] < period.first])
    return current, before


async def conversations_by_day(session: AsyncSession, query: ReportQuery) -> list[tuple[date, str, int]]:
    """(local day, channel, conversations opened) for the days with any, in day order."""
    return (await conversation_cube(session, query, query.period)).by_day_channel()


async def conversations_by_intent(session: AsyncSession, query: ReportQuery, period: Period) -> dict[str, int]:
    return (await conversation_cube(session, query, period, daily=False)).by_intent()


async def automation_by_intent(session: AsyncSession, query: ReportQuery, period: Period) -> list[IntentAutomation]:
    """Per intent: conversations opened and those the bot resolved alone, most conversations first."""
    return (await conversation_cube(session, query, period, daily=False)).automation_by_intent()


async def automation_by_day(session: AsyncSession, query: ReportQuery) -> list[tuple[date, int, int]]:
    """(local day, conversations opened, automated) per day with any."""
    return (await conversation_cube(session, query, query.period)).automation_by_day()


@dataclass(frozen=True)
class Durations:
    count: int
    mean: float | None
    p50: int | None
    p90: int | None


async def _durations(session: AsyncSession, query: ReportQuery, period: Period, end: Any) -> Durations:
    base = (sa.select(response_seconds(col(Conversation.created_at), end).label("took"))
            .where(*_opened(query, period), end.is_not(None)).subquery())
    row = (await session.exec(percentiles(base, "took", RANKS))).one()
    return Durations(int(row.count), None if row.mean is None else float(row.mean),
                     None if row.p50 is None else int(row.p50), None if row.p90 is None else int(row.p90))


async def response_durations(session: AsyncSession, query: ReportQuery, *,
                             live: bool = False) -> dict[tuple[str, str], Durations]:
    """First response and resolution times of the period ("current") and the one before
    ("previous"): {(measure, which): Durations}, measure "first_response" or "resolution". From
    the rollup's histogram of durations (one statement) when it counts days in the period's zone,
    else (or ``live``) one statement per measure over the conversations of both periods."""
    if not live:
        from inbox.analytics.rollup import rollup_durations

        rolled = await rollup_durations(session, query, RANKS)
        if rolled is not None:
            return rolled
    period, previous = query.period, query.period.previous()
    both = Period(previous.first, period.last, period.tz)
    which = sa.case((col(Conversation.created_at) >= period.since, "current"), else_="previous")
    found = {(m, w): Durations(0, None, None, None) for m in ("first_response", "resolution")
             for w in ("current", "previous")}
    for measure, end in (("first_response", col(Conversation.first_response_at)),
                         ("resolution", col(Conversation.resolved_at))):
        base = (sa.select(which.label("which"), response_seconds(col(Conversation.created_at), end).label("took"))
                .where(*_opened(query, both), end.is_not(None)).subquery())
        for row in await _rows(session, percentiles(base, "took", RANKS, group=("which",))):
            found[(measure, str(row.which))] = Durations(
                int(row.count), None if row.mean is None else float(row.mean),
                None if row.p50 is None else int(row.p50), None if row.p90 is None else int(row.p90))
    return found


async def first_response(session: AsyncSession, query: ReportQuery, period: Period) -> Durations:
    return await _durations(session, query, period, col(Conversation.first_response_at))


async def resolution(session: AsyncSession, query: ReportQuery, period: Period) -> Durations:
    return await _durations(session, query, period, col(Conversation.resolved_at))


@dataclass(frozen=True)
class CsatRow:
    key: str  # agent id, "bot", or the intent
    name: str
    counts: tuple[int, int, int, int, int] = field(default=(0, 0, 0, 0, 0))  # ratings 1..5
    mean: float | None = None

    @property
    def count(self) -> int:
        return sum(self.counts)

    @property
    def satisfied(self) -> float | None:
        """Share of 4 and 5 ratings (the usual CSAT score)."""
        return (self.counts[3] + self.counts[4]) / self.count if self.count else None


def _csat(query: ReportQuery, period: Period, *keys: Any) -> Any:
    rating = col(CsatSurvey.rating)
    stmt = (
        sa.select(*keys, *[sa.func.count().filter(rating == k) for k in range(1, 6)], sa.func.avg(rating))
        .select_from(CsatSurvey)
        .join(Conversation, col(Conversation.id) == col(CsatSurvey.conversation_id))
        .where(rating.is_not(None), col(CsatSurvey.rated_at) >= period.since, col(CsatSurvey.rated_at) < period.until)
        .group_by(*keys)
    )
    if query.channel is not None:
        stmt = stmt.where(col(Conversation.channel) == query.channel)
    return stmt


def _csat_row(key: str, name: str, values: Any) -> CsatRow:
    counts = tuple(int(v or 0) for v in values[:5])
    return CsatRow(key, name, counts, None if values[5] is None else float(values[5]))  # type: ignore[arg-type]


async def csat_by_agent(session: AsyncSession, query: ReportQuery, period: Period) -> list[CsatRow]:
    """Ratings per agent (the bot when no agent was on the conversation), most ratings first."""
    stmt = _csat(query, period, col(CsatSurvey.agent_id), col(Agent.name)).outerjoin(
        Agent, col(Agent.id) == col(CsatSurvey.agent_id))
    rows = [_csat_row("bot" if a is None else str(a), "" if a is None else str(name or ""), rest)
            for a, name, *rest in await _rows(session, stmt)]
    return sorted(rows, key=lambda r: (-r.count, r.key))


async def csat_by_intent(session: AsyncSession, query: ReportQuery, period: Period) -> list[CsatRow]:
    intent = sa.func.coalesce(col(CsatSurvey.intent), UNKNOWN_INTENT)
    rows = [_csat_row(str(i), str(i), rest) for i, *rest in await _rows(session, _csat(query, period, intent))]
    return sorted(rows, key=lambda r: (-r.count, r.key))


async def wismo_by_day(session: AsyncSession, query: ReportQuery) -> dict[date, int]:
    """"Where is my order?" conversations opened per local day."""
    return (await conversation_cube(session, query, query.period)).intent_by_day(WISMO_INTENT)


@lru_cache(maxsize=64)
def _schedule(period: Period) -> tuple[tuple[datetime, int], ...]:
    return tuple(offset_schedule(period.tz, period.since, period.until))


def schedule_of(period: Period) -> list[tuple[datetime, int]]:
    """The zone's offsets over the period (remembered: the page asks for the same few periods)."""
    return list(_schedule(period))
