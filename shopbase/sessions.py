"""The one way to make database sessions: async, sqlmodel's ``exec``, and objects that stay
readable after commit (events are built from them after the commit)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

__all__ = ["session_maker"]


def session_maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
