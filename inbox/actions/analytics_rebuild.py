"""Rebuild the analytics rollup (``conversation_daily``) for the shop's time zone.

The triggers of migration 0020 keep the rollup exact on every write; a rebuild is needed only when
the shop's zone changes (its days start at other instants) or to repair a database restored
from elsewhere. One transaction: the zone's offsets, then every count recomputed from the
conversations, then the recorded zone. The app runs it at start when the configured zone differs
from the recorded one (:func:`ensure_analytics_rollup`); ``shopdesk analytics rebuild`` runs it by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.analytics.rollup import MEASURES, response_select, rollup_select, rollup_zone, zone_name
from inbox.models import AnalyticsRollupState, AnalyticsTzOffset, ConversationDaily, ResponseDaily
from shopbase.clock import utcnow
from shopbase.refusal import Refused
from shopbase.sqltime import offset_schedule

__all__ = ["analytics_rebuild", "ensure_analytics_rollup", "SCHEDULE_FROM", "SCHEDULE_UNTIL"]

#: the offsets are listed over these years (earlier and later instants take the first and last one)
SCHEDULE_FROM = datetime(2000, 1, 1, tzinfo=UTC)
SCHEDULE_UNTIL = datetime(2080, 1, 1, tzinfo=UTC)
_FIRST_EPOCH = -(2**40)


def _offsets(name: str) -> list[dict[str, int]]:
    schedule = offset_schedule(ZoneInfo(name), SCHEDULE_FROM, SCHEDULE_UNTIL)
    return [{"since_epoch": _FIRST_EPOCH if n == 0 else int(at.timestamp()), "offset_seconds": offset}
            for n, (at, offset) in enumerate(schedule)]


async def analytics_rebuild(session: AsyncSession, timezone: Any, *, actor: str = "system") -> int:
    """Recount ``conversation_daily`` in ``timezone`` (an IANA name or a ZoneInfo); the number of
    (day, channel, intent) rows written. Refused (400) for a zone we do not know. Never commits."""
    name = zone_name(timezone)
    try:
        offsets = _offsets(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Refused("unknown_timezone", "Unknown time zone. Use an IANA name such as Europe/Berlin.",
                      status=400) from None
    # the state row first: on PostgreSQL its lock makes concurrent rebuilds (two processes
    # starting together) wait for each other instead of interleaving
    state = (await session.exec(select(AnalyticsRollupState).where(col(AnalyticsRollupState.id) == 1)
                                .with_for_update())).first()
    await session.exec(sa.delete(AnalyticsTzOffset))
    await session.exec(sa.insert(AnalyticsTzOffset), params=offsets)
    await session.exec(sa.delete(ConversationDaily))
    d = ConversationDaily
    await session.exec(sa.insert(d).from_select(
        [col(d.day), col(d.channel), col(d.intent), col(d.conversations), col(d.automated)], rollup_select()))
    await session.exec(sa.delete(ResponseDaily))
    r = ResponseDaily
    for measure, _ in MEASURES:
        await session.exec(sa.insert(r).from_select(
            [col(r.day), col(r.channel), col(r.measure), col(r.seconds), col(r.conversations)],
            response_select(measure)))
    written = (await session.execute(sa.select(sa.func.count()).select_from(d))).one()
    if state is None:
        await session.exec(sa.insert(AnalyticsRollupState).values(
            id=1, timezone=name, rebuilt_at=utcnow()))
    else:
        await session.exec(sa.update(AnalyticsRollupState).where(
            col(AnalyticsRollupState.id) == 1).values(timezone=name, rebuilt_at=utcnow()))
    write_audit(session, None, "analytics.rebuilt", actor=actor, detail={"timezone": name, "rows": int(written[0])})
    return int(written[0])


async def ensure_analytics_rollup(session: AsyncSession, timezone: Any) -> bool:
    """Rebuild when the rollup counts in another zone than ``timezone``; whether it did. Never commits."""
    if await rollup_zone(session) == zone_name(timezone):
        return False
    await analytics_rebuild(session, timezone)
    return True
