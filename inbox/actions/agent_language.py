"""An agent picks the language of their inbox (or clears it: the browser's language then decides)."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.models import Agent
from inbox.replies import SUPPORTED_LANGUAGES as UI_LANGUAGES
from shopbase.refusal import Refused

__all__ = ["UI_LANGUAGES", "agent_language"]


def agent_language(session: AsyncSession, agent: Agent, language: str | None) -> None:
    """Set ``agent.language`` to one of :data:`UI_LANGUAGES`, or None ("as my browser").
    Refused for any other value."""
    value = (language or "").strip() or None
    if value is not None and value not in UI_LANGUAGES:
        raise Refused("bad_language", "choose one of the offered languages", status=400)
    agent.language = value
    session.add(agent)
    write_audit(session, None, "agent.language", agent=agent, detail={"agent_id": agent.id, "language": value})
