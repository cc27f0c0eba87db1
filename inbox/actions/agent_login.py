"""An agent logs in: the password is checked (constant cost whether or not the email exists),
the login time is recorded and a hash made with older parameters is replaced."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.auth import authenticate, hash_password, needs_rehash
from inbox.models import Agent
from shopbase.clock import utcnow

__all__ = ["agent_login"]


async def agent_login(session: AsyncSession, email: str, password: str) -> Agent | None:
    """The active agent with this email and password (their login recorded), else None.
    The caller commits."""
    agent = await authenticate(session, email, password)
    if agent is None:
        return None
    if needs_rehash(agent.password_hash):
        agent.password_hash = await hash_password(password)
    agent.last_login_at = utcnow()
    session.add(agent)
    await session.flush()
    return agent
