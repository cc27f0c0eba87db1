"""An agent's saved views (their own filter sets for the inbox list) and notification switches."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Agent, AgentPreference, SavedView

__all__ = ["saved_views_of", "preferences_of"]


async def saved_views_of(session: AsyncSession, agent: Agent) -> list[SavedView]:
    """The agent's saved views, by name."""
    if agent.id is None:
        return []
    stmt = select(SavedView).where(col(SavedView.agent_id) == agent.id).order_by(col(SavedView.name))
    return list((await session.exec(stmt)).all())


async def preferences_of(session: AsyncSession, agent: Agent) -> AgentPreference:
    """The agent's notification switches (a fresh, unsaved row with everything off if none)."""
    found = await session.get(AgentPreference, agent.id) if agent.id is not None else None
    return found or AgentPreference(agent_id=agent.id or 0)
