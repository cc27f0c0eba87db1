"""Small shared test helpers: count and read rows, wait for an asynchronous effect."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlmodel import func, select

__all__ = ["count", "rows", "eventually"]


async def count(sessions: Any, model: Any, *where: Any) -> int:
    async with sessions() as s:
        return int((await s.exec(select(func.count()).select_from(model).where(*where))).one())


async def rows(sessions: Any, model: Any, *where: Any) -> list[Any]:
    async with sessions() as s:
        return list((await s.exec(select(model).where(*where).order_by(model.id))).all())


async def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``check()`` (a value or a coroutine) until it is truthy; fail after ``timeout``
    seconds. Generous on purpose: it only costs time when the test fails anyway."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
