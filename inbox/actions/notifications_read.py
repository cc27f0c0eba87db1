"""An agent has seen their notifications up to a given alert."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.events import Event, EventType, collect
from inbox.models import Agent, NotificationRead
from shopbase.clock import utcnow

__all__ = ["notifications_read"]


async def notifications_read(session: AsyncSession, agent: Agent, up_to_id: int) -> int:
    """Move the agent's read mark forward to ``up_to_id`` (never back); returns the mark. After
    the commit every open tab of the agent gets the new unread count (``inbox.web.live``)."""
    assert agent.id is not None
    row = await session.get(NotificationRead, agent.id) or NotificationRead(agent_id=agent.id)
    before = row.last_read_id or 0
    row.last_read_id = max(before, max(0, int(up_to_id)))
    if row.last_read_id != before:
        collect(session, Event(EventType.notifications_read.value, None, {"agent_id": agent.id}))
    row.updated_at = utcnow()
    session.add(row)
    await session.flush()
    return row.last_read_id
