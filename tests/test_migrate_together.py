"""Several processes started at once on one PostgreSQL each migrate at start (``shopdesk serve``):
they take turns on an advisory lock, so every one starts and the schema is migrated once
(issue 16: N processes behind a proxy, started together by systemd or after an upgrade)."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from shopdesk.db import create_engine, current_revision, migrate
from tests.conftest import _pg_admin

_names = itertools.count()


@pytest.fixture
async def empty_pg(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A PostgreSQL database with nothing in it, not even the migrations' version table."""
    server = request.getfixturevalue("pg_server")
    name = f"together_{os.getpid()}_{next(_names)}"
    await _pg_admin(server, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    yield server.url(name)
    await _pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _migrate_together(url: str, processes: int) -> list[Any]:
    engines = [create_engine(url) for _ in range(processes)]
    try:
        return await asyncio.gather(*(migrate(e) for e in engines), return_exceptions=True)
    finally:
        for e in engines:
            await e.dispose()


async def _schema(url: str) -> tuple[str | None, int, int]:
    engine = create_engine(url)
    try:
        head = await current_revision(engine)
        async with engine.connect() as conn:
            versions = (await conn.execute(sa.text("SELECT count(*) FROM alembic_version"))).scalar_one()
            conversations = (await conn.execute(sa.text("SELECT count(*) FROM conversation"))).scalar_one()
        return head, versions, conversations
    finally:
        await engine.dispose()


async def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from shopdesk.db import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


async def test_three_processes_starting_on_an_empty_database_all_start(empty_pg: str) -> None:
    results = await _migrate_together(empty_pg, 3)

    assert [r for r in results if isinstance(r, BaseException)] == []
    assert await _schema(empty_pg) == (await _head(), 1, 0)


async def test_three_processes_restarted_after_an_upgrade_all_start(empty_pg: str) -> None:
    engine = create_engine(empty_pg)
    try:
        await migrate(engine, "0026")  # the version the shop ran before the upgrade
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "INSERT INTO contact (channel, external_id, display_name, created_at, last_seen_at) "
                "VALUES ('webchat', 'v1', 'Ann', now(), now())"))
    finally:
        await engine.dispose()

    results = await _migrate_together(empty_pg, 3)

    assert [r for r in results if isinstance(r, BaseException)] == []
    assert await _schema(empty_pg) == (await _head(), 1, 0)
    engine = create_engine(empty_pg)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT display_name FROM contact"))).scalars().all() == ["Ann"]
    finally:
        await engine.dispose()
