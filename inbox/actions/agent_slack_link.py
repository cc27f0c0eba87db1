"""Set (or clear) the Slack user an agent acts as in Slack."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.models import Agent

__all__ = ["agent_slack_link"]


async def agent_slack_link(session: AsyncSession, agent: Agent, slack_user_id: str | None, *,
                           actor: str = "admin") -> Agent:
    """Link ``agent`` to ``slack_user_id`` (None or blank unlinks); audited; the caller commits."""
    agent.slack_user_id = (slack_user_id or "").strip()[:32] or None
    session.add(agent)
    write_audit(session, None, "agent.slack_linked", actor=actor,
                detail={"agent_id": agent.id, "linked": agent.slack_user_id is not None})
    return agent
