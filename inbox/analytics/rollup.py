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
from inbox.models import AnalyticsRollupState, AnalyticsTzOffset, AuditEvent, Conversation, ConversationDaily
from shopbase.sqltime import EPOCH_DAY, day_of, epoch_seconds, floor_days

__all__ = ["zone_name", "rollup_zone", "rollup_cube", "fresh_counts", "rollup_counts", "Counts", "ESCALATED"]

ESCALATED = "conversation.escalated"
UNKNOWN_INTENT = "unknown"
#: {(day number, channel, intent): (conversations, automated)}
Counts = dict[tuple[int, str, str], tuple[int, int]]


def zone_name(tz: tzinfo | str | None) -> str:
    """The IANA name a zone is recorded under ("UTC" for UTC however it was given)."""
    if tz is None:
        return "UTC"
    if isinstance(tz, str):
        return tz.strip() or "UTC"
    return str(getattr(tz, "key", None) or tz)


async def rollup_zone(session: AsyncSession) -> str | None:
    """The zone ``conversation_daily`` counts days in (None: no rollup yet)."""
    state = (await session.exec(sa.select(col(AnalyticsRollupState.timezone))
                                .where(col(AnalyticsRollupState.id) == 1))).first()
    return None if state is None else str(state[0])


def _day_number(period_day: Any) -> int:
    return (period_day - EPOCH_DAY).days


async def rollup_cube(session: AsyncSession, query: ReportQuery, period: Period) -> Any:
    """The ``metrics.Cube`` of ``period`` (per local day) from the rollup, or None when the rollup
    counts days in another zone than the period's."""
    from inbox.analytics.metrics import Cube

    if await rollup_zone(session) != zone_name(period.tz):
        return None
    d = ConversationDaily
    stmt = (sa.select(col(d.day), col(d.channel), col(d.intent), sa.func.sum(col(d.conversations)),
                      sa.func.sum(col(d.automated)))
            .where(col(d.day) >= _day_number(period.first), col(d.day) <= _day_number(period.last))
            .group_by(col(d.day), col(d.channel), col(d.intent)))
    if query.channel is not None:
        stmt = stmt.where(col(d.channel) == query.channel.value)
    rows = []
    for day, channel, intent, n, a in (await session.exec(stmt)).all():
        if int(n or 0) or int(a or 0):
            rows.append((day_of(int(day)), str(channel), str(intent), int(n or 0), int(a or 0)))
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
        floor_days(epoch_seconds(col(c.created_at)) + sa.func.coalesce(_offset_at(col(c.created_at)), 0)).label("day"),
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
            for d, ch, i, n, a in (await session.exec(rollup_select())).all()}


async def rollup_counts(session: AsyncSession) -> Counts:
    """Every non-zero (day, channel, intent) count the rollup holds."""
    d = ConversationDaily
    rows = (await session.exec(sa.select(col(d.day), col(d.channel), col(d.intent), col(d.conversations),
                                         col(d.automated)))).all()
    return {(int(day), str(ch), str(i)): (int(n), int(a)) for day, ch, i, n, a in rows if n or a}
