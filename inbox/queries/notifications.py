"""The agents' notifications: fired alerts, newest first, with an unread count.

An alert about a conversation is shown only to agents who may see that conversation
(``access``: the one visibility rule); shop-wide alerts (stock, returns, the digest) to everyone.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Agent, Conversation, FiredAlert, NotificationRead
from inbox.queries.access import access_condition

__all__ = ["last_read", "notifications", "unread_count"]


def _visible(agent: Agent) -> sa.ColumnElement[bool]:
    # per alert, its conversation by primary key (an IN over "every conversation the agent may
    # see" read all 100,000 conversation ids for each unread count, even with no alert at all)
    allowed = sa.exists().where(col(Conversation.id) == FiredAlert.conversation_id, access_condition(agent))
    return sa.or_(col(FiredAlert.conversation_id).is_(None), allowed)


async def last_read(session: AsyncSession, agent: Agent) -> int:
    row = await session.get(NotificationRead, agent.id) if agent.id is not None else None
    return row.last_read_id if row is not None else 0


async def notifications(session: AsyncSession, agent: Agent, *, limit: int = 50,
                        before_id: int | None = None) -> list[FiredAlert]:
    query = select(FiredAlert).where(_visible(agent))
    if before_id is not None:
        query = query.where(col(FiredAlert.id) < before_id)
    return list((await session.exec(query.order_by(col(FiredAlert.id).desc()).limit(limit))).all())


async def unread_count(session: AsyncSession, agent: Agent) -> int:
    mark = await last_read(session, agent)
    query = select(sa.func.count()).select_from(FiredAlert).where(col(FiredAlert.id) > mark, _visible(agent))
    return int((await session.exec(query)).one())
