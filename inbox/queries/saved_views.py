"""An agent's saved views (their own filter sets for the inbox list) and notification switches."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Agent, AgentPreference, SavedView

__all__ = ["Preferences", "saved_views_of", "preferences_of"]


@dataclass(frozen=True)
class Preferences:
    """An agent's notification switches."""

    sound: bool = False
    desktop: bool = False


async def saved_views_of(session: AsyncSession, agent: Agent) -> list[SavedView]:
    """The agent's saved views, by name."""
    if agent.id is None:
        return []
    stmt = select(SavedView).where(col(SavedView.agent_id) == agent.id).order_by(col(SavedView.name))
    return list((await session.exec(stmt)).all())


async def preferences_of(session: AsyncSession, agent: Agent) -> Preferences:
    """The agent's notification switches (everything off without a stored row)."""
    found = await session.get(AgentPreference, agent.id) if agent.id is not None else None
    return Preferences() if found is None else Preferences(sound=found.notify_sound, desktop=found.notify_desktop)
