"""A new agent account (the admin page, ``shopdesk agents add``, the demo)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.auth import AgentExists, check_email, check_password, hash_password
from inbox.models import Agent, Role

__all__ = ["agent_create"]


async def agent_create(
    session: AsyncSession,
    email: str,
    password: str,
    name: str = "",
    admin: bool = False,
    *,
    team_id: int | None = None,
    slack_user_id: str | None = None,
    by: Agent | None = None,
) -> Agent:
    """Add an agent and flush it (the caller commits). Raises ``AgentError`` for bad input
    and ``AgentExists`` for a taken email. With ``by`` (an admin), the creation is audited."""
    address = check_email(email)
    check_password(password)
    display = " ".join((name or "").split())[:120] or address.split("@", 1)[0]
    taken = (await session.exec(select(Agent.id).where(sa.func.lower(Agent.email) == address))).first()
    if taken is not None:
        raise AgentExists("an agent with this email already exists")
    agent = Agent(
        email=address,
        name=display,
        password_hash=await hash_password(password),
        role=Role.admin if admin else Role.agent,
        team_id=team_id,
        slack_user_id=(slack_user_id or None),
    )
    session.add(agent)
    await session.flush()
    if by is not None:
        write_audit(session, None, "agent.created", agent=by, detail={"agent_id": agent.id, "role": agent.role.value})
    return agent
