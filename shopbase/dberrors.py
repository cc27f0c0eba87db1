"""Which database errors mean "try again later" rather than "this message is broken".

A lost connection, a server shutting down or restarting, too many connections, a timeout, a
serialization failure or deadlock (PostgreSQL), a locked SQLite file: the same work succeeds
once the database is back. Callers retry such work later and never treat it as a fault of the
data (the bot does not apologise and hand a conversation over because PostgreSQL restarted).
"""

from __future__ import annotations

import errno

from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout

__all__ = ["is_database_unavailable"]

#: SQLSTATE classes and codes that clear up by themselves
_TRANSIENT_CLASSES = ("08",)  # connection exception
_TRANSIENT_CODES = frozenset({
    "40001", "40P01",  # serialization failure, deadlock
    "53300",  # too many connections
    "57P01", "57P02", "57P03",  # admin shutdown, crash shutdown, cannot connect now
    "55P03",  # lock not available
})
#: socket errors that mean the server could not be reached (not a missing file, not a full disk)
_NETWORK_ERRNOS = frozenset({errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTUNREACH,
                             errno.ENETUNREACH, errno.ENETDOWN, errno.ETIMEDOUT, errno.EPIPE})
_TRANSIENT_TEXT = ("database is locked", "database table is locked", "connection was closed",
                   "connection is closed", "cannot connect", "connection refused", "server closed the connection",
                   "terminating connection")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def is_database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) says the database cannot do the work right now."""
    for err in _chain(exc):
        if isinstance(err, DisconnectionError | PoolTimeout | ConnectionError | TimeoutError):
            return True
        if isinstance(err, DBAPIError):
            if err.connection_invalidated:
                return True
            orig = err.orig
            code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
            if isinstance(code, str) and (code in _TRANSIENT_CODES or code.startswith(_TRANSIENT_CLASSES)):
                return True
            text = str(orig or err).lower()
            if any(t in text for t in _TRANSIENT_TEXT):
                return True
        elif isinstance(err, OSError) and (
                err.errno in _NETWORK_ERRNOS
                or (err.errno is None and "connect" in str(err).lower())):  # asyncio: "Multiple exceptions: …"
            return True
        elif type(err).__module__.startswith("asyncpg") and any(
                t in str(err).lower() for t in _TRANSIENT_TEXT):
            return True
    return False
