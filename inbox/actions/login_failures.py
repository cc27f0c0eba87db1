"""The login throttle's bookkeeping: a failed sign-in is recorded per key, a successful one
clears its email's count. Keys arrive already hashed (``LoginThrottle``); nothing here sees an
email or an address."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import col, delete
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import LoginFailure

__all__ = ["login_failure_record", "login_failures_clear"]


async def login_failure_record(session: AsyncSession, keys: list[str], *, now: datetime,
                               window: timedelta) -> None:
    """One failure for each of ``keys`` at ``now``; failures older than ``window`` are dropped.
    The caller commits."""
    await session.exec(delete(LoginFailure).where(col(LoginFailure.at) < now - window))
    for key in keys:
        session.add(LoginFailure(key=key[:64], at=now))
    await session.flush()


async def login_failures_clear(session: AsyncSession, key: str) -> None:
    """Forget the failures of ``key`` (its owner has just signed in). The caller commits."""
    await session.exec(delete(LoginFailure).where(col(LoginFailure.key) == key[:64]))
