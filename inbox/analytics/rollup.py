"""The daily rollup of conversations (``conversation_daily``, migration 0020): the read side.

The rollup holds, per shop-local day × channel × intent, the conversations opened and those the bot
resolved alone — the counts behind the page's per-day, per-channel, per-intent and automation
tables. Database triggers keep it in the transaction of every write that changes a conversation's
day, channel, intent or "automated" state (see the migration), so it is exact at all times;
:func:`rollup_cube` reads a period from it in one small GROUP BY (a few rows per day instead of
every conversation).

It counts days in the zone recorded in ``analytics_rollup_state``. When the shop's zone is another
one (``SHOPDESK_SHOP_TIMEZONE`` changed and the app has not rebuilt yet), :func:`rollup_cube`
answers None and the report counts the conversations themselves (exact, slower);
``inbox.actions.analytics_rebuild`` rebuilds it (at app start, or ``shopdesk analytics rebuild``).

:func:`fresh_counts` recomputes the same numbers from the conversations, with the same day
arithmetic (the offsets table), for ``shopdesk analytics check`` and the tests.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.analytics.period import Period, ReportQuery
from inbox.models import (
    AnalyticsRollupState,
    AnalyticsTzOffset,
    AuditEvent,
    Conversation,
    ConversationDaily,
    ResponseDaily,
)
from shopbase.sqltime import EPOCH_DAY, day_of, epoch_seconds, floor_days

__all__ = ["zone_name", "rollup_zone", "rollup_cube", "rollup_durations", "fresh_counts", "rollup_counts",
           "fresh_responses", "rollup_responses", "rollup_select", "response_select", "Counts", "ESCALATED",
           "MEASURES"]

ESCALATED = "conversation.escalated"
UNKNOWN_INTENT = "unknown"
#: the response-time measures and the conversation column each ends at
MEASURES = (("first_response", "first_response_at"), ("resolution", "resolved_at"))
#: {(day number, channel, intent): (conversations, automated)}
Counts = dict[tuple[int, str, str], tuple[int, int]]


async def _all(session: AsyncSession, stmt: Any) -> list[Any]:
    return list((await session.exec(stmt)).all())


def zone_name(tz: tzinfo | str | None) -> str:
    """The IANA name a zone is recorded under ("UTC" for UTC however it was given)."""
    if tz is None:
        return "UTC"
    if isinstance(tz, str):
        return tz.strip() or "UTC"
    return str(getattr(tz, "key", None) or tz)


async def rollup_zone(session: AsyncSession) -> str | None:
    """The zone ``conversation_daily`` counts days in (None: no rollup yet)."""
    found = await _all(session, sa.select(col(AnalyticsRollupState.timezone))
                       .where(col(AnalyticsRollupState.id) == 1))
    return str(found[0][0]) if found else None


def _day_number(period_day: Any) -> int:
    return (period_day - EPOCH_DAY).days


async def rollup_cube(session: AsyncSession, query: ReportQuery, period: Period) -> Any:
    """The ``metrics.Cube`` of ``period`` (per local day) from the rollup, or None when the rollup
    counts days in another zone than the period's."""
    from inbox.analytics.metrics import Cube

    if await rollup_zone(session) != zone_name(period.tz):
        return None
    d = ConversationDaily
    # (day, channel, intent) is the key: one row each, read in key order from the day range
    stmt = (sa.select(col(d.day), col(d.channel), col(d.intent), col(d.conversations), col(d.automated))
            .where(col(d.day) >= _day_number(period.first), col(d.day) <= _day_number(period.last),
                   sa.or_(col(d.conversations) != 0, col(d.automated) != 0)))
    if query.channel is not None:
        stmt = stmt.where(col(d.channel) == query.channel.value)
    days: dict[int, Any] = {}
    rows = []
    for day, channel, intent, n, a in await _all(session, stmt):
        date = days.get(day)
        if date is None:
            date = days[day] = day_of(day)
        rows.append((date, channel, intent, n, a))
    return Cube(rows)


def _offset_at(value: Any) -> Any:
    """The offset in force at ``value`` (a timestamp column), from ``analytics_tz_offset``."""
    o = AnalyticsTzOffset
    return (sa.select(col(o.offset_seconds)).where(col(o.since_epoch) <= epoch_seconds(value))
            .order_by(col(o.since_epoch).desc()).limit(1).scalar_subquery())


def rollup_select() -> Any:
    """SELECT day, channel, intent, conversations, automated counted from the conversations
    themselves, with the triggers' arithmetic (the rebuild inserts it)."""
    c = Conversation
    escalated = sa.exists().where(col(AuditEvent.conversation_id) == col(c.id), col(AuditEvent.action) == ESCALATED)
    automated = sa.case((sa.and_(col(c.resolved_at).is_not(None), col(c.first_response_at).is_(None),
                                 col(c.assignee_id).is_(None), sa.not_(escalated)), 1), else_=0)
    inner = sa.select(
        _day_of_opening().label("day"),
        col(c.channel).label("channel"),
        sa.func.coalesce(col(c.last_intent), UNKNOWN_INTENT).label("intent"),
        automated.label("automated"),
    ).subquery()
    return (sa.select(inner.c.day, inner.c.channel, inner.c.intent, sa.func.count(), sa.func.sum(inner.c.automated))
            .group_by(inner.c.day, inner.c.channel, inner.c.intent))


def _channel(value: Any) -> str:
    return str(getattr(value, "value", value))


async def fresh_counts(session: AsyncSession) -> Counts:
    """Every (day, channel, intent) count recomputed from the conversations now."""
    return {(int(d), _channel(ch), str(i)): (int(n), int(a or 0))
            for d, ch, i, n, a in await _all(session, rollup_select())}


async def rollup_counts(session: AsyncSession) -> Counts:
    """Every non-zero (day, channel, intent) count the rollup holds."""
    d = ConversationDaily
    rows = await _all(session, sa.select(col(d.day), col(d.channel), col(d.intent), col(d.conversations),
                                         col(d.automated)))
    return {(int(day), str(ch), str(i)): (int(n), int(a)) for day, ch, i, n, a in rows if n or a}


def _day_of_opening() -> Any:
    c = Conversation
    return floor_days(epoch_seconds(col(c.created_at)) + sa.func.coalesce(_offset_at(col(c.created_at)), 0))


def response_select(measure: str) -> Any:
    """SELECT day, channel, measure, seconds, conversations counted from the conversations (the
    rebuild inserts it): seconds as ``metrics.response_seconds`` counts them."""
    from inbox.analytics.metrics import response_seconds

    c = Conversation
    end = col(getattr(c, dict(MEASURES)[measure]))
    inner = (sa.select(_day_of_opening().label("day"), col(c.channel).label("channel"),
                       response_seconds(col(c.created_at), end).label("seconds"))
             .where(end.is_not(None)).subquery())
    return (sa.select(inner.c.day, inner.c.channel, sa.literal(measure).label("measure"), inner.c.seconds,
                      sa.func.count())
            .group_by(inner.c.day, inner.c.channel, inner.c.seconds))


#: {(measure, day number, channel, seconds): conversations}
Responses = dict[tuple[str, int, str, int], int]


async def fresh_responses(session: AsyncSession) -> Responses:
    found: Responses = {}
    for measure, _ in MEASURES:
        for day, ch, m, secs, n in await _all(session, response_select(measure)):
            found[(str(m), int(day), _channel(ch), int(secs))] = int(n)
    return found


async def rollup_responses(session: AsyncSession) -> Responses:
    r = ResponseDaily
    rows = await _all(session, sa.select(col(r.measure), col(r.day), col(r.channel), col(r.seconds),
                                         col(r.conversations)))
    return {(str(m), int(d), str(ch), int(secs)): int(n) for m, d, ch, secs, n in rows if n}


async def rollup_durations(session: AsyncSession, query: ReportQuery, ranks: tuple[int, ...]) -> Any:
    """``{(measure, "current" | "previous"): Durations}`` of the period and the one before from the
    histogram, or None when the rollup counts in another zone. Nearest-rank percentiles over the
    distinct durations (each with its count), as ``shopbase.sqltime.percentiles`` computes them
    over the conversations: exact, the same numbers."""
    from inbox.analytics.metrics import Durations

    period, previous = query.period, query.period.previous()
    if await rollup_zone(session) != zone_name(period.tz):
        return None
    r = ResponseDaily
    which = sa.case((col(r.day) >= _day_number(period.first), "current"), else_="previous").label("which")
    where = [col(r.day) >= _day_number(previous.first), col(r.day) <= _day_number(period.last)]
    if query.channel is not None:
        where.append(col(r.channel) == query.channel.value)
    counted = (sa.select(col(r.measure).label("measure"), which, col(r.seconds).label("v"),
                         sa.func.sum(col(r.conversations)).label("c"))
               .where(*where).group_by(col(r.measure), which, col(r.seconds))
               .having(sa.func.sum(col(r.conversations)) > 0).subquery())
    keys = [counted.c.measure, counted.c.which]
    ranked = sa.select(*keys, counted.c.v, counted.c.c,
                       sa.func.sum(counted.c.c).over(partition_by=keys, order_by=counted.c.v).label("cum"),
                       sa.func.sum(counted.c.c).over(partition_by=keys).label("n")).subquery()
    outer = [ranked.c.measure, ranked.c.which]
    picks = [sa.func.min(sa.case((ranked.c.cum * 100 >= ranked.c.n * rank, ranked.c.v))).label(f"p{rank}")
             for rank in ranks]
    total = sa.func.sum(ranked.c.c)
    mean = sa.cast(sa.func.sum(ranked.c.v * ranked.c.c), sa.Float) / sa.func.nullif(total, 0)
    stmt = sa.select(*outer, total.label("count"), mean.label("mean"), *picks).group_by(*outer)
    found = {(m, w): Durations(0, None, None, None) for m, _ in MEASURES for w in ("current", "previous")}
    for row in await _all(session, stmt):
        values = row._mapping
        found[(str(values["measure"]), str(values["which"]))] = Durations(
            int(values["count"]), None if values["mean"] is None else float(values["mean"]),
            *[None if values[f"p{rank}"] is None else int(values[f"p{rank}"]) for rank in ranks])
    return found
