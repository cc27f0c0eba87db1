"""An agent switches their notifications (a sound, desktop notifications) on or off."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Agent, AgentPreference
from shopbase.clock import utcnow
from shopbase.refusal import Refused

__all__ = ["agent_preferences_save"]


async def agent_preferences_save(
    session: AsyncSession, agent: Agent, *, notify_sound: bool | None = None, notify_desktop: bool | None = None
) -> AgentPreference:
    """Change the switches given (None: unchanged); returns the stored row."""
    if agent.id is None or not agent.is_active:
        raise Refused("no_access", "you cannot change preferences", status=403)
    row = await session.get(AgentPreference, agent.id) or AgentPreference(agent_id=agent.id)
    if notify_sound is not None:
        row.notify_sound = bool(notify_sound)
    if notify_desktop is not None:
        row.notify_desktop = bool(notify_desktop)
    row.updated_at = utcnow()
    session.add(row)
    await session.flush()
    return row
