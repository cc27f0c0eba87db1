"""The login throttle's reading side: recent failures per (hashed) key."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import LoginFailure

__all__ = ["recent_failures"]


async def recent_failures(session: AsyncSession, keys: list[str], since: datetime) -> dict[str, list[datetime]]:
    """Failure times after ``since`` for each of ``keys``, newest first."""
    rows = (
        await session.exec(
            select(LoginFailure.key, LoginFailure.at)
            .where(col(LoginFailure.key).in_(keys), col(LoginFailure.at) > since)
            .order_by(col(LoginFailure.at).desc())
        )
    ).all()
    found: dict[str, list[datetime]] = {}
    for key, at in rows:
        found.setdefault(key, []).append(at)
    return found
