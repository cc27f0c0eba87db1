"""Sessions of an inline SQLite engine close in place (shopbase.sessions): no task, no shield,
and closing never suspends, so a cancelled caller cannot abandon it halfway."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from shopbase.sessions import InPlaceSession
from shopdesk.db import create_engine, session_maker


@pytest.fixture
async def inline(tmp_path: Path) -> Any:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    yield engine
    await engine.dispose()


def _finishes_without_suspending(coro: Any) -> bool:
    """Run ``coro`` one step: True when it completed (StopIteration) without yielding to the loop."""
    try:
        coro.send(None)
    except StopIteration:
        return True
    coro.close()
    return False


async def _run(session: Any, sql: str) -> Any:
    return await (await session.connection()).execute(sa.text(sql))


async def _count(sessions: Any) -> int:
    async with sessions() as s:
        return int((await _run(s, "SELECT count(*) FROM t")).scalar_one())


async def test_inline_engine_sessions_close_in_place_others_keep_sqlalchemys_exit(inline: Any) -> None:
    assert session_maker(inline).class_ is InPlaceSession
    memory = create_engine("sqlite+aiosqlite:///:memory:")  # aiosqlite's thread: closing does suspend
    try:
        maker = session_maker(memory)
        assert maker.class_ is AsyncSession and not issubclass(maker.class_, InPlaceSession)
    finally:
        await memory.dispose()


@pytest.mark.parametrize("ending", ["committed", "uncommitted", "failed", "read only"])
async def test_closing_an_inline_session_never_suspends(inline: Any, ending: str) -> None:
    """The premise of closing in place: whatever the session did, ``close()`` completes in one
    step (a SQLAlchemy that suspended there would need its task and shield back)."""
    sessions = session_maker(inline)
    session = sessions()
    if ending != "read only":
        await _run(session, "INSERT INTO t (v) VALUES ('x')")
    else:
        await _run(session, "SELECT count(*) FROM t")
    if ending == "committed":
        await session.commit()
    elif ending == "failed":
        with pytest.raises(sa.exc.OperationalError):
            await _run(session, "SELECT nothing FROM nowhere")
    assert _finishes_without_suspending(session.close())
    # the connection went back to the pool (one connection per engine): the next session gets it
    async with asyncio.timeout(5):
        assert await _count(sessions) == (1 if ending == "committed" else 0)


async def test_leaving_the_block_starts_no_task_and_returns_the_connection(inline: Any) -> None:
    sessions = session_maker(inline)
    loop = asyncio.get_running_loop()
    created: list[Any] = []
    previous = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        created.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)  # type: ignore[arg-type]
    try:
        async with sessions() as s:
            await _run(s, "INSERT INTO t (v) VALUES ('kept')")
            await s.commit()
        async with sessions() as s:
            await _run(s, "INSERT INTO t (v) VALUES ('dropped')")  # never committed
    finally:
        loop.set_task_factory(previous)
    assert created == []  # SQLAlchemy's own exit runs close() in a task of its own
    async with asyncio.timeout(5):
        async with sessions() as s:
            rows = (await _run(s, "SELECT v FROM t")).scalars().all()
    assert rows == ["kept"]


async def test_a_task_cancelled_inside_the_block_still_closes_its_session(inline: Any) -> None:
    sessions = session_maker(inline)
    inside = asyncio.Event()

    async def writer() -> None:
        async with sessions() as s:
            await _run(s, "INSERT INTO t (v) VALUES ('x')")
            inside.set()
            await asyncio.sleep(30)  # cancelled here, holding the engine's one connection
            await s.commit()

    task = asyncio.create_task(writer())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(5):  # the connection is back and the write rolled back
        assert await _count(sessions) == 0
