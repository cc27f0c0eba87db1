"""The one way to make database sessions: async, sqlmodel's ``exec``, and objects that stay
readable after commit (events are built from them after the commit).

Sessions of an engine whose statements run on the event loop's own thread (SQLite through
``shopdesk.sqlite_inline``, marked with :func:`closes_in_place`) close in place when their
``async with`` block ends. SQLAlchemy's ``AsyncSession.__aexit__`` runs ``close()`` in a task of its
own behind ``asyncio.shield`` so that a caller cancelled meanwhile cannot abandon the close
halfway; on such an engine ``close()`` never suspends (the rollback and the pool's check-in
are plain calls), so no cancellation can reach it, and the task, the shield and the loop turns
they take (about 50 µs of CPU per session, measured; seven sessions per message answered alone)
buy nothing. ``tests/test_sessions_inline.py`` checks that such a close finishes without
suspending, so a SQLAlchemy upgrade that changes it fails there.
"""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

__all__ = ["InPlaceSession", "closes_in_place", "session_maker"]

#: engines (their sync ``Engine``) whose sessions close in place
_IN_PLACE: weakref.WeakSet[Any] = weakref.WeakSet()


def closes_in_place(engine: AsyncEngine) -> None:
    """Mark ``engine`` as one whose connections never suspend the loop (``shopdesk.sqlite_inline``):
    :func:`session_maker` gives it sessions that close in place."""
    _IN_PLACE.add(engine.sync_engine)


class InPlaceSession(AsyncSession):
    """An ``AsyncSession`` whose ``async with`` exit awaits ``close()`` directly (see the module
    docstring); only for engines marked with :func:`closes_in_place`."""

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        await self.close()


def session_maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    kind = InPlaceSession if engine.sync_engine in _IN_PLACE else AsyncSession
    return async_sessionmaker(engine, class_=kind, expire_on_commit=False)
