"""The shop settings cache (``ordersvc.settings_read.stored_setting``): a setting read on every bot
turn is read from the database once per ``CACHE_SECONDS``, a change made in this process is seen
by the very next read (invalidated at the write's flush and again at its commit or rollback), a
change made by another process (here: a Core UPDATE, which no ORM event sees) after the TTL, and
no caller can change what another one reads."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

import ordersvc.settings_read as settings_read
from ordersvc.models import ShopSetting
from ordersvc.service import get_setting, put_setting
from ordersvc.settings_read import stored_setting


@pytest.fixture
def reads(engine: Any) -> Any:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM shop_setting" in statement:
            seen.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    yield seen
    sa.event.remove(engine.sync_engine, "before_cursor_execute", count)


async def _read(sessions: Any, key: str = "shipping") -> Any:
    async with sessions() as s:
        return await stored_setting(s, key)


async def _put(sessions: Any, value: dict[str, Any], key: str = "shipping") -> None:
    async with sessions() as s:
        await put_setting(s, key, value)
        await s.commit()


async def test_a_setting_is_read_once_and_a_change_is_seen_at_once(sessions: Any, reads: list[str]) -> None:
    await _put(sessions, {"handling_days": 2})
    reads.clear()
    assert await _read(sessions) == {"handling_days": 2}
    assert await _read(sessions) == {"handling_days": 2}
    assert await _read(sessions, "never_saved") is None
    assert await _read(sessions, "never_saved") is None
    assert len(reads) == 2  # one per key
    await _put(sessions, {"handling_days": 5})
    assert await _read(sessions) == {"handling_days": 5}  # no waiting for the TTL


async def test_a_read_during_a_writes_transaction_is_not_kept(sessions: Any, reads: list[str]) -> None:
    await _put(sessions, {"handling_days": 2})
    async with sessions() as writer:
        await put_setting(writer, "shipping", {"handling_days": 9})  # flushed, not committed
        assert await stored_setting(writer, "shipping") == {"handling_days": 9}  # its own change
        await writer.commit()
    # whatever another transaction read before the commit is stale now
    assert await _read(sessions) == {"handling_days": 9}


async def test_a_rolled_back_change_leaves_the_stored_value(sessions: Any) -> None:
    await _put(sessions, {"handling_days": 2})
    assert await _read(sessions) == {"handling_days": 2}
    async with sessions() as writer:
        await put_setting(writer, "shipping", {"handling_days": 9})
        await writer.rollback()
    assert await _read(sessions) == {"handling_days": 2}


async def test_a_change_by_another_process_is_seen_after_the_ttl(sessions: Any, reads: list[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    await _put(sessions, {"handling_days": 2})
    assert await _read(sessions) == {"handling_days": 2}
    async with sessions() as s:  # a Core UPDATE: what another process's write looks like to this one
        table = ShopSetting.__table__  # type: ignore[attr-defined]
        await s.exec(sa.update(table).where(table.c.key == "shipping").values(value={"handling_days": 7}))
        await s.commit()
    assert await _read(sessions) == {"handling_days": 2}  # within the TTL
    later = settings_read._clock() + settings_read.CACHE_SECONDS + 0.01
    monkeypatch.setattr(settings_read, "_clock", lambda: later)
    assert await _read(sessions) == {"handling_days": 7}


async def test_each_caller_gets_its_own_copy(sessions: Any) -> None:
    await _put(sessions, {"hours": {"mon": "9-17"}}, key="business_hours")
    async with sessions() as s:
        first = await get_setting(s, "business_hours", {})
        first["hours"]["mon"] = "closed"
        again = await stored_setting(s, "business_hours")
        assert again is not None
        again["hours"]["tue"] = "closed"
    assert await _read(sessions, "business_hours") == {"hours": {"mon": "9-17"}}



async def test_a_change_through_another_engine_of_this_process_is_seen_at_once(sessions: Any, db_url: str) -> None:
    from shopdesk.db import create_engine, session_maker

    await _put(sessions, {"handling_days": 2})
    assert await _read(sessions) == {"handling_days": 2}  # cached for this engine
    other = create_engine(db_url)  # e.g. the CLI's engine in the server's process: its own cache
    try:
        await _put(session_maker(other), {"handling_days": 9})
        assert await _read(sessions) == {"handling_days": 9}
        assert await _read(session_maker(other)) == {"handling_days": 9}
    finally:
        await other.dispose()
