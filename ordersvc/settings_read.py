"""Reading one shop setting on a hot path (the bot reads the shipping and return policies on
every question about them).

``stored_setting`` returns what ``session.get(ShopSetting, key).value`` would: the row already
loaded in this session when there is one (with any change made to it), otherwise the stored
value, read with one prebuilt Core statement instead of an ORM load (building and hydrating an
ORM object cost more than the read itself) and kept for a moment in a small cache.

The cache (per engine, per key) never outlives a change made in this process: every ORM write
of a ``ShopSetting`` row (``put_setting``, ``save_policy``, the CLI's) invalidates all of it at
its flush and again when its transaction commits or rolls back (a read between the two, in
another transaction, may still have seen the old value), and a session that wrote a setting
never uses it. A change made by another process (a second server on PostgreSQL, the CLI beside
a server) is seen at most ``CACHE_SECONDS`` later: the cache's entries expire (a short TTL, not
a notification). Each caller gets its own copy of the value (decoded from the JSON text kept).
"""

from __future__ import annotations

import json
import time
import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.util import identity_key
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import ShopSetting

__all__ = ["CACHE_SECONDS", "stored_setting"]

_TABLE = ShopSetting.__table__  # type: ignore[attr-defined]
_VALUE = sa.select(_TABLE.c.value).where(_TABLE.c.key == sa.bindparam("b_key"))

#: how long a value read from the database is reused (a change by another process is seen after it)
CACHE_SECONDS = 1.0
#: session.info flag: this session's transaction wrote a setting
_WROTE = "ordersvc.shop_setting_written"
#: session.info: the cache's generation when this session's transaction began
_BEGAN = "ordersvc.shop_setting_generation"
#: the cache's clock (a test moves it)
_clock = time.monotonic


class _Cache:
    def __init__(self) -> None:
        #: bumped by every write of a setting in this process; an entry of an older one is stale
        self.generation = 0
        #: engine -> key -> (JSON text or None, generation read at, monotonic expiry)
        self.entries: weakref.WeakKeyDictionary[Any, dict[str, tuple[str | None, int, float]]] = (
            weakref.WeakKeyDictionary())

    def changed(self) -> None:
        self.generation += 1
        self.entries.clear()


_CACHE = _Cache()


def _written(_mapper: Any, _connection: Any, target: ShopSetting) -> None:
    _CACHE.changed()
    session = object_session(target)
    if session is not None:
        session.info[_WROTE] = True


def _transaction_began(session: Session, _transaction: Any, _connection: Any) -> None:
    # what a read in this transaction may be cached as: a snapshot older than a change (SQLite's
    # read transaction, a second engine on the same file) is never kept as current
    session.info[_BEGAN] = _CACHE.generation


def _transaction_ended(session: Session) -> None:
    if session.info.pop(_WROTE, False):
        _CACHE.changed()  # committed (or rolled back): a read in between may have seen the old value


for _name in ("after_insert", "after_update", "after_delete"):
    sa.event.listen(ShopSetting, _name, _written)
sa.event.listen(Session, "after_begin", _transaction_began)
sa.event.listen(Session, "after_commit", _transaction_ended)
sa.event.listen(Session, "after_rollback", _transaction_ended)


async def stored_setting(session: AsyncSession, key: str) -> Any | None:
    """The stored value of setting ``key``, or None when it was never saved."""
    sync = session.sync_session
    held = sync.identity_map.get(identity_key(ShopSetting, key))
    if held is not None and "value" in held.__dict__:  # loaded (not expired) in this session
        return held.value
    engine = sync.bind
    cached = None if engine is None or sync.info.get(_WROTE) else _CACHE.entries.get(engine)
    now = _clock()
    if cached is not None:
        entry = cached.get(key)
        if entry is not None and entry[1] == _CACHE.generation and entry[2] > now:
            return None if entry[0] is None else json.loads(entry[0])
    result = await session.exec(_VALUE, params={"b_key": key})  # type: ignore[call-overload]
    value = result.scalar_one_or_none()
    # kept only if nothing changed since the transaction (and so its snapshot) began
    generation = sync.info.get(_BEGAN, -1)
    if engine is not None and not sync.info.get(_WROTE) and generation == _CACHE.generation:
        try:
            text = None if value is None else json.dumps(value)
        except (TypeError, ValueError):
            return value  # not plain JSON: not cached
        _CACHE.entries.setdefault(engine, {})[key] = (text, generation, now + CACHE_SECONDS)
    return value
