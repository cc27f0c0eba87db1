"""SQLite statements run on the event loop's own thread, through SQLAlchemy's aiosqlite dialect.

Why: aiosqlite runs every call (execute, fetch, commit, close cursor…) on a helper thread and
wakes the event loop for each result, about 20 hops per inbound message. Under load each hop
waits behind every other ready task, while the session holding the one SQLite write lock sits
idle: the profile showed the loop and the SQLite thread both mostly idle at 40 messages/s.
A SQLite statement on the hot path takes microseconds (WAL, ``synchronous=NORMAL``, no
network), so running it inline costs less than the hop, and a transaction that only talks to
the database now runs from ``BEGIN`` to ``COMMIT`` without yielding to the loop.

The rules that make this safe:

* one connection per engine (``pool_size=1``): two connections of one process can never wait
  for each other's lock, which would block the loop inside SQLite's busy handler; sessions
  queue for the connection asynchronously in the pool instead;
* other processes (the CLI, a backup) still lock the file; the busy timeout then blocks the
  loop for at most the other writer's short transaction;
* ``:memory:`` databases keep aiosqlite (SQLAlchemy's static pool).

:class:`InlineConnection` and :class:`InlineCursor` offer the subset of aiosqlite's async API
that ``sqlalchemy.dialects.sqlite.aiosqlite`` uses; each coroutine finishes without suspending.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["InlineConnection", "InlineCursor", "inline_creator"]


class _ImmediateQueue:
    """Stands in for aiosqlite's request queue (the dialect's isolation-level setter puts a
    ``(future, function)`` pair on it): runs the function now and settles the future."""

    def put_nowait(self, item: tuple[Any, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # handed to the awaiting caller, as aiosqlite does
            if future is not None and not future.done():
                future.set_exception(exc)
        else:
            if future is not None and not future.done():
                future.set_result(result)


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> InlineCursor:
        if parameters is None:
            self._cursor.execute(sql)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    def __aiter__(self) -> InlineCursor:
        return self

    async def __anext__(self) -> Any:
        row = self._cursor.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class InlineConnection:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = connection
        self._tx = _ImmediateQueue()

    @property
    def _connection(self) -> sqlite3.Connection | None:  # the dialect checks it before commit/rollback
        return self._conn

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("no active connection")
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._live().isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._live().isolation_level = value  # type: ignore[assignment]

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._live().cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._live().commit()

    async def rollback(self) -> None:
        self._live().rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._live().create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stop(self) -> None:
        """Forced termination (the dialect's terminate): close now."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def inline_creator(path: str, *, timeout: float) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine``: one inline connection to ``path``."""

    async def connect() -> InlineConnection:
        # check_same_thread=False: the pool may close a connection from another thread at exit
        return InlineConnection(sqlite3.connect(path, timeout=timeout, check_same_thread=False))

    return connect
