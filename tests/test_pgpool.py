"""shopdesk.pgpool: a pooled PostgreSQL connection is pinged only after it sat idle, and one that
died while idle is replaced without the caller seeing an error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from shopdesk.cluster import asyncpg_dsn
from shopdesk.db import create_engine
from shopdesk.pgpool import ping_when_idle


async def test_a_connection_in_use_a_moment_ago_is_not_pinged_and_an_idle_dead_one_is_replaced(pg_url: str) -> None:
    import asyncpg

    engine = create_engine(pg_url, pool_pre_ping=False, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_seconds=0.3)
    dialect = engine.sync_engine.dialect
    pings: list[int] = []
    real_ping = dialect.do_ping

    def counting(dbapi_connection: Any) -> bool:
        pings.append(1)
        return bool(real_ping(dbapi_connection))

    dialect.do_ping = counting  # type: ignore[method-assign]
    try:
        async def backend_pid() -> int:
            async with engine.connect() as conn:
                return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())

        first = await backend_pid()
        assert await backend_pid() == first and pings == []  # used a moment ago: no round trip

        await asyncio.sleep(0.5)
        assert await backend_pid() == first and pings == [1]  # idle: pinged, alive, kept

        admin = await asyncpg.connect(asyncpg_dsn(pg_url))
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", first)
        finally:
            await admin.close()
        await asyncio.sleep(0.5)
        replaced = await backend_pid()  # the ping fails, the pool opens another: no error here
        assert replaced != first and len(pings) == 2
    finally:
        await engine.dispose()


async def test_the_engine_of_a_server_pings_only_idle_connections(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        assert engine.sync_engine.pool._pre_ping is False  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_a_burst_beyond_the_pool_keeps_its_connections_for_the_next_one(pg_url: str, tmp_path: Any) -> None:
    """The server's engine (``Settings.engine_options``) keeps every connection it opened, up to
    pool + overflow: after a burst that needed all of them, the next burst opens no new backend
    (SQLAlchemy's overflow connections used to be closed at check-in, a new PostgreSQL backend
    every few messages under load). The cap is unchanged."""
    from shopdesk.settings import load_settings

    settings = load_settings(database_url=pg_url, secret_key="test-secret-key-0123456789abcdef0123456789",
                             data_dir=tmp_path, db_pool_size=2, db_max_overflow=2)
    engine = create_engine(pg_url, pool_timeout=0.5, **settings.engine_options())
    try:
        async def burst() -> set[int]:
            conns = [await engine.connect() for _ in range(4)]
            try:
                return {int((await c.execute(text("SELECT pg_backend_pid()"))).scalar_one()) for c in conns}
            finally:
                for c in conns:
                    await c.close()

        first = await burst()
        assert len(first) == 4 and engine.pool.checkedin() == 4
        assert await burst() == first  # the same four backends: none closed, none opened
        # still at most pool + overflow at once: a fifth waits for one of the four
        held = [await engine.connect() for _ in range(4)]
        try:
            with pytest.raises(sa_exc.TimeoutError):
                await engine.connect()
        finally:
            for c in held:
                await c.close()
    finally:
        await engine.dispose()
