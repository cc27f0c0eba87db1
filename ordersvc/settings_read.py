"""Reading one shop setting on a hot path (the bot reads the shipping and return policies on
every question about them).

``stored_setting`` returns what ``session.get(ShopSetting, key).value`` would: the row already
loaded in this session when there is one (with any change made to it), otherwise the stored
value read with one prebuilt Core statement instead of an ORM load (building and hydrating an
ORM object cost more than the read itself). It reads the database every time, in the
caller's transaction: a policy saved by another process is seen on the next turn.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm.util import identity_key
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import ShopSetting

__all__ = ["stored_setting"]

_TABLE = ShopSetting.__table__  # type: ignore[attr-defined]
_VALUE = sa.select(_TABLE.c.value).where(_TABLE.c.key == sa.bindparam("b_key"))


async def stored_setting(session: AsyncSession, key: str) -> Any | None:
    """The stored value of setting ``key``, or None when it was never saved."""
    held = session.sync_session.identity_map.get(identity_key(ShopSetting, key))
    if held is not None and "value" in held.__dict__:  # loaded (not expired) in this session
        return held.value
    result = await session.exec(_VALUE, params={"b_key": key})  # type: ignore[call-overload]
    return result.scalar_one_or_none()
