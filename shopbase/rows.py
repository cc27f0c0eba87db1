"""Row locks: the one way to read a row for update."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, cast

from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

__all__ = ["locked", "saved_id"]

_M = TypeVar("_M", bound=SQLModel)


async def locked(session: AsyncSession, model: type[_M], row_id: Any) -> _M:
    """The row with primary key ``row_id``, freshly read and locked until the transaction ends
    (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serializes writers anyway). The identity
    map's copy is refreshed, so rules are checked on what is really stored. Raises
    ``sqlalchemy.exc.NoResultFound`` when there is no such row."""
    key = cast(Any, model).id  # every table model here has an ``id`` primary key
    stmt = select(model).where(col(key) == row_id).with_for_update().execution_options(populate_existing=True)
    return (await session.exec(stmt)).one()


class _Saved(Protocol):
    @property
    def id(self) -> int | None: ...


def saved_id(row: _Saved) -> int:
    """The primary key of a row that has been flushed or loaded. Table models declare ``id: int | None``
    (None until the INSERT); past that point this is the ``int`` the callers need."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id yet: flush the session first")
    return row.id
