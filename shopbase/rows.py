"""Row locks: the one way to read a row for update."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

__all__ = ["locked"]

_M = TypeVar("_M", bound=SQLModel)


async def locked(session: AsyncSession, model: type[_M], row_id: Any) -> _M:
    """The row with primary key ``row_id``, freshly read and locked until the transaction ends
    (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serializes writers anyway). The identity
    map's copy is refreshed, so rules are checked on what is really stored. Raises
    ``sqlalchemy.exc.NoResultFound`` when there is no such row."""
    key = model.id
    stmt = select(model).where(col(key) == row_id).with_for_update().execution_options(populate_existing=True)
    return (await session.exec(stmt)).one()
