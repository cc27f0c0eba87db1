"""A PostgreSQL connection is checked before use only when it sat idle.

SQLAlchemy's ``pool_pre_ping`` checks every connection at every checkout; with asyncpg that
check is ``BEGIN; ; ROLLBACK`` — three round trips before each of the dozen or so transactions
a customer's message takes (recording it, the bot's turn, the outbox's claim and "sent"), which
the database pays for in CPU that several server processes share. A connection that was in use
a moment ago is known to be alive; one that sat idle (the database may have restarted, a
firewall may have dropped it) is pinged, and replaced when the ping fails. A connection that
breaks while in use is still detected as a disconnect, and the pool then replaces all of its
older connections (SQLAlchemy's invalidation), so a database restart is survived as before.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["IDLE_PING_SECONDS", "ping_when_idle"]

#: a connection idle longer than this is pinged before it is used again
IDLE_PING_SECONDS = 2.0
_IDLE_SINCE = "shopdesk.idle_since"


def ping_when_idle(engine: AsyncEngine, idle_seconds: float = IDLE_PING_SECONDS) -> None:
    """Ping ``engine``'s pooled connections at checkout only after ``idle_seconds`` unused."""
    sync = engine.sync_engine
    dialect = sync.dialect

    def checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < idle_seconds:
            return  # new, or in use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool discards it and checks out another
            raise DisconnectionError("an idle database connection did not answer") from exc

    event.listen(sync, "checkin", checkin)
    event.listen(sync, "checkout", checkout)
