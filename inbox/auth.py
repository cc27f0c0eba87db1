"""Agent accounts: argon2id password hashes, creating agents and checking a sign-in.

Hashing and verifying cost ~100 ms of CPU each, so they run in a worker thread and never
block the event loop. ``authenticate`` does the same amount of work for an unknown email
as for a wrong password (it verifies against a dummy hash), so its timing does not reveal
which emails are agents. Every check is awaited: an un-awaited coroutine is truthy, and a
truthy "password ok" is exactly the bug in Rocket.Chat CVE-2026-28514.
"""

from __future__ import annotations

import asyncio
import secrets
import unicodedata
from functools import lru_cache

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Agent

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "MAX_PASSWORD_LENGTH",
    "AgentError",
    "AgentExists",
    "normalize_email",
    "check_password",
    "check_email",
    "generate_password",
    "hash_password",
    "verify_password",
    "authenticate",
    "set_password",
]

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024

_hasher = PasswordHasher()


class AgentError(ValueError):
    """A bad email/password/name for an agent; ``str(exc)`` is one line for the user."""


class AgentExists(AgentError):
    """The email already belongs to an agent."""


def normalize_email(value: str) -> str:
    """Trimmed and case-folded, the one form agent emails are stored and compared in."""
    return unicodedata.normalize("NFKC", value or "").strip().lower()


def check_email(email: str) -> str:
    """The normalized email, or AgentError when it does not look like an address."""
    value = normalize_email(email)
    local, _, domain = value.partition("@")
    if not local or "." not in domain or len(value) > 320 or not value.isprintable() or any(c.isspace() for c in value):
        raise AgentError("enter a valid email address")
    return value


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AgentError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AgentError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")
    if "\x00" in password:
        raise AgentError("the password must not contain NUL characters")


def generate_password() -> str:
    """A random password an admin can hand over (about 128 bits)."""
    return secrets.token_urlsafe(16)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str, password: str) -> bool:
    return await asyncio.to_thread(_verify, password_hash, password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


async def set_password(session: AsyncSession, agent: Agent, password: str) -> None:
    """Replace the password and sign the agent out everywhere (the caller commits)."""
    check_password(password)
    agent.password_hash = await hash_password(password)
    agent.session_version += 1
    session.add(agent)
    await session.flush()


async def authenticate(session: AsyncSession, email: str, password: str) -> Agent | None:
    """The active agent with this email and password, else None. Reads only: the login itself
    (``last_login_at``, an upgraded hash) is the ``agent_login`` action.
    """
    address = normalize_email(email)
    # NUL and other control characters cannot be in a stored address (PostgreSQL refuses NUL outright)
    if not address or len(address) > 320 or not address.isprintable() or not password \
            or len(password) > MAX_PASSWORD_LENGTH:
        await verify_password(_dummy_hash(), "x")
        return None
    agent = (await session.exec(select(Agent).where(sa.func.lower(Agent.email) == address))).first()
    if agent is None:
        await verify_password(_dummy_hash(), password)
        return None
    ok = await verify_password(agent.password_hash, password)
    if ok is not True or not agent.is_active:
        return None
    return agent


def needs_rehash(password_hash: str) -> bool:
    """The stored hash was made with older parameters and should be replaced at the next login."""
    return bool(_hasher.check_needs_rehash(password_hash))
