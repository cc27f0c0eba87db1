"""``shopdesk db copy --to URL``: a SQLite shop moved to PostgreSQL, every row of every table,
ids and all; the new database then works (its id sequences continue after the copied ids);
a non-empty target or the same database is refused before anything is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from inbox.actions.message_record import message_record
from inbox.messages import InboundMessage
from inbox.models import Channel
from shopdesk.db import create_engine, session_maker
from shopdesk.dbcopy import CopyRefused, _tables, copy_database, same_database
from shopdesk.settings import load_settings
from tests.test_cli import Cli, ok


async def _everything(engine: Any) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    async with engine.connect() as conn:
        for table in _tables():
            rows = await conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            found[table.name] = [dict(r._mapping) for r in rows]
    return found


async def _seed(url: str, tmp_path: Path) -> None:
    from shopdesk.demo.desk import seed_demo

    settings = load_settings(database_url=url, secret_key="test-secret-key-0123456789abcdef0123456789",
                             data_dir=tmp_path / "data")
    engine = create_engine(url)
    try:
        await seed_demo(engine, settings)
        sessions = session_maker(engine)
        for i, text in enumerate(["where is my order 1001?", "Где мой заказ?", "我的订单在哪里"]):
            await message_record(sessions, InboundMessage(
                channel=Channel.telegram, dedupe_key=f"tg:{i}", contact_external_id=str(4000 + i), text=text,
                display_name=f"Customer {i}"))
    finally:
        await engine.dispose()


async def test_a_sqlite_shop_moves_to_postgresql_whole(sqlite_url: str, pg_url: str, tmp_path: Path) -> None:
    await _seed(sqlite_url, tmp_path)
    source, target = create_engine(sqlite_url), create_engine(pg_url)
    try:
        copied = await copy_database(source, target, batch=7)  # small batches: many pages per table
        before, after = await _everything(source), await _everything(target)
        assert copied["shop_order"] > 10 and copied["message"] == 3 and copied["agent"] >= 2
        assert {name: len(rows) for name, rows in after.items()} == copied
        for name in before:
            assert after[name] == before[name], f"{name} differs after the copy"
        # the analytics rollups are the target's own, filled by its triggers: equal to a fresh count
        from inbox.analytics.rollup import fresh_counts, fresh_responses, rollup_counts, rollup_responses

        async with session_maker(target)() as s:
            assert await rollup_counts(s) == await fresh_counts(s) != {}
            assert await rollup_responses(s) == await fresh_responses(s)
        async with session_maker(source)() as s:
            assert await rollup_counts(s) == await fresh_counts(s)

        # the copy is a working shop: new rows get new ids after the copied ones
        sessions = session_maker(target)
        result = await message_record(sessions, InboundMessage(
            channel=Channel.telegram, dedupe_key="tg:new", contact_external_id="4999", text="hello again"))
        assert result.message_id > max(m["id"] for m in before["message"])

        # a second copy into a shop that holds data is refused, and changes nothing
        with pytest.raises(CopyRefused, match="not empty"):
            await copy_database(source, target)
        assert len((await _everything(target))["message"]) == 4
    finally:
        await source.dispose()
        await target.dispose()


async def test_a_failed_copy_leaves_the_target_empty(sqlite_url: str, pg_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import shopdesk.dbcopy

    await _seed(sqlite_url, tmp_path)
    source, target = create_engine(sqlite_url), create_engine(pg_url)
    real = shopdesk.dbcopy._reset_sequences

    async def broken(conn: Any, tables: Any) -> None:  # fails after every row was inserted
        await real(conn, tables)
        raise OSError("the network dropped")

    monkeypatch.setattr(shopdesk.dbcopy, "_reset_sequences", broken)
    try:
        with pytest.raises(OSError):
            await copy_database(source, target)
        assert all(rows == [] for rows in (await _everything(target)).values())
    finally:
        await source.dispose()
        await target.dispose()


def test_same_database() -> None:
    assert same_database("sqlite+aiosqlite:///./a.db", "sqlite+aiosqlite:///a.db")
    assert not same_database("sqlite+aiosqlite:///a.db", "sqlite+aiosqlite:///b.db")
    assert same_database("postgresql+asyncpg://u@h:5432/shop", "postgresql+asyncpg://other:pw@h:5432/shop")
    assert not same_database("postgresql+asyncpg://u@h/shop", "sqlite+aiosqlite:///shop.db")


def test_the_command(tmp_path: Path, pg_url: str) -> None:
    cli = Cli(tmp_path, env={"SHOPDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"})
    ok(cli("users", "add", "ana@shop.test", "--name", "Ana", stdin="a-long-password-1\n"))
    out = ok(cli("db", "copy", "--to", pg_url))
    assert "agent" in out and "copied" in out
    # the shop now runs on PostgreSQL: the agent is there
    assert "ana@shop.test" in ok(cli("users", "list", SHOPDESK_DATABASE_URL=pg_url))

    again = cli("db", "copy", "--to", pg_url)
    assert again.returncode == 2 and "not empty" in again.stderr and "Traceback" not in again.stderr
    same = cli("db", "copy", "--to", f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}")
    assert same.returncode == 2 and "already uses" in same.stderr
    bad = cli("db", "copy", "--to", "not a url")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
