"""API tokens for ``/api/v1``: created once, stored only as a SHA-256 hash.

A token looks like ``sdk_`` + 43 url-safe characters. The database keeps its hash and an
8-character prefix (to tell tokens apart in listings); the raw token is shown once. A
lookup goes by hash (an equality search on a unique index, so no timing leak about
partial matches), and a final ``hmac.compare_digest`` guards against a sloppy database
collation. Functions flush but do not commit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import ApiToken
from shopbase.clock import utcnow

__all__ = [
    "TOKEN_PREFIX",
    "hash_token",
    "create_token",
    "list_tokens",
    "revoke_token",
    "authenticate",
]

TOKEN_PREFIX = "sdk_"
_PREFIX_LENGTH = 8
_MAX_TOKEN_LENGTH = 128
_LAST_USED_EVERY = timedelta(minutes=1)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


async def create_token(session: AsyncSession, name: str) -> str:
    """Create a token named ``name`` and return the raw token (it is not stored)."""
    name = " ".join((name or "").split())
    if not name:
        raise ValueError("a token needs a name")
    if len(name) > 120:
        raise ValueError("a token name has at most 120 characters")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, prefix=raw[:_PREFIX_LENGTH], token_hash=hash_token(raw)))
    await session.flush()
    return raw


async def list_tokens(session: AsyncSession) -> list[ApiToken]:
    return list((await session.exec(select(ApiToken).order_by(col(ApiToken.id)))).all())


async def revoke_token(session: AsyncSession, token_id: int) -> bool:
    """Revoke the token; ``False`` if there is no such token. Revoking twice is fine."""
    token = await session.get(ApiToken, token_id)
    if token is None:
        return False
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        await session.flush()
    return True


async def authenticate(session: AsyncSession, raw: str, *, now: datetime | None = None) -> ApiToken | None:
    """The active token whose value is ``raw``, or ``None``.

    Marks it used (``last_used_at``) at most once a minute; the caller commits.
    """
    if not isinstance(raw, str) or not raw.startswith(TOKEN_PREFIX) or len(raw) > _MAX_TOKEN_LENGTH:
        return None
    digest = hash_token(raw)
    token = (await session.exec(select(ApiToken).where(ApiToken.token_hash == digest))).first()
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return None
    if token.revoked_at is not None:
        return None
    now = now or utcnow()
    if token.last_used_at is None or now - token.last_used_at >= _LAST_USED_EVERY:
        token.last_used_at = now
        await session.flush()
    return token
