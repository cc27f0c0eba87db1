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


async def conversations_by_day(session: AsyncSession, query: ReportQuery) -> list[tuple[date, str, int]]:
    """(local day, channel, conversations opened) for the days with any, in day order."""
    day = _day(col(Conversation.created_at), query.period)
    stmt = (sa.select(day, col(Conversation.channel), sa.func.count()).where(*_opened(query, query.period))
            .group_by(day, col(Conversation.channel)).order_by(day, col(Conversation.channel)))
    return [(day_of(d), getattr(c, "value", str(c)), int(n)) for d, c, n in await _rows(session, stmt)]


async def conversations_by_intent(session: AsyncSession, query: ReportQuery, period: Period) -> dict[str, int]:
    intent = _intent()
    stmt = sa.select(intent, sa.func.count()).where(*_opened(query, period)).group_by(intent)
    return {str(i): int(n) for i, n in await _rows(session, stmt)}


@dataclass(frozen=True)
class IntentAutomation:
    intent: str
    conversations: int
    automated: int

    @property
    def rate(self) -> float | None:
        return self.automated / self.conversations if self.conversations else None


async def automation_by_intent(session: AsyncSession, query: ReportQuery, period: Period) -> list[IntentAutomation]:
    """Per intent: conversations opened and those the bot resolved alone, most conversations first."""
    intent = _intent()
    stmt = (sa.select(intent, sa.func.count(), sa.func.count().filter(_automated()))
            .where(*_opened(query, period)).group_by(intent))
    found = [IntentAutomation(str(i), int(n), int(a or 0)) for i, n, a in await _rows(session, stmt)]
    return sorted(found, key=lambda r: (-r.conversations, r.intent))


async def automation_by_day(session: AsyncSession, query: ReportQuery) -> list[tuple[date, int, int]]:
    """(local day, conversations opened, automated) per day with any."""
    day = _day(col(Conversation.created_at), query.period)
    stmt = (sa.select(day, sa.func.count(), sa.func.count().filter(_automated()))
            .where(*_opened(query, query.period)).group_by(day).order_by(day))
    return [(day_of(d), int(n), int(a or 0)) for d, n, a in await _rows(session, stmt)]


@dataclass(frozen=True)
class Durations:
    count: int
    mean: float | None
    p50: int | None
    p90: int | None


async def _durations(session: AsyncSession, query: ReportQuery, period: Period, end: Any) -> Durations:
    base = (sa.select(response_seconds(col(Conversation.created_at), end).label("took"))
            .where(*_opened(query, period), end.is_not(None)).subquery())
    row = (await session.exec(percentiles(base, "took", RANKS))).one()  # type: ignore[call-overload]
    return Durations(int(row.count), None if row.mean is None else float(row.mean),
                     None if row.p50 is None else int(row.p50), None if row.p90 is None else int(row.p90))


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
    day = _day(col(Conversation.created_at), query.period)
    stmt = (sa.select(day, sa.func.count())
            .where(*_opened(query, query.period), col(Conversation.last_intent) == WISMO_INTENT).group_by(day))
    return {day_of(d): int(n) for d, n in await _rows(session, stmt)}


def schedule_of(period: Period) -> list[tuple[datetime, int]]:
    return offset_schedule(period.tz, period.since, period.until)
