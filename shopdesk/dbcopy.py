"""Copy a whole shop from one database to another: ``shopdesk db copy --to URL``.

The way from the embedded SQLite default to PostgreSQL when a shop outgrows one process. Both
databases are brought to the latest schema first; the target must be empty. Every table of the
models is copied in foreign-key order, in primary-key order, in batches, through the models'
own column types (so times, JSON and enums are read and written the way the app does), inside
ONE transaction on the target: a failure leaves the target as empty as it was. On PostgreSQL
the id sequences are then moved past the copied ids, and every table's row count is compared.

Search indexes follow by themselves (SQLite's FTS tables are filled by triggers, PostgreSQL's
indexes by the server), and so do the analytics rollups (:data:`DERIVED`: the target's triggers). Files (return labels, invoices) live in the data directory, not in the
database: copy that directory with the database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["CopyRefused", "copy_database", "same_database"]

BATCH = 1000


class CopyRefused(Exception):
    """The copy cannot start (a one-line reason for the user); nothing was written."""


def same_database(a: str, b: str) -> bool:
    ua, ub = make_url(a), make_url(b)
    if ua.get_backend_name() != ub.get_backend_name():
        return False
    if ua.get_backend_name() == "sqlite":
        from pathlib import Path

        return bool(ua.database) and bool(ub.database) and Path(ua.database or "").resolve() == Path(ub.database or "").resolve()
    return (ua.host, ua.port, ua.database) == (ub.host, ub.port, ub.database)


#: tables the target derives by itself: the inbox counts (``conversation_count``) and the analytics
#: rollups are filled by the target's own triggers as the conversations and audit rows go in, the
#: rollups counted in the zone its migration recorded (``analytics_tz_offset``,
#: ``analytics_rollup_state``; the server recounts at start when the shop's zone is another one)
DERIVED = frozenset({"conversation_count", "conversation_daily", "response_daily", "analytics_tz_offset",
                     "analytics_rollup_state"})


def _tables() -> list[sa.Table]:
    from sqlmodel import SQLModel

    from shopdesk.db import import_models

    import_models()
    return [t for t in SQLModel.metadata.sorted_tables if t.name not in DERIVED]


async def _count(conn: AsyncConnection, table: sa.Table) -> int:
    return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def _rows(conn: AsyncConnection, table: sa.Table, batch: int) -> Any:
    """The table's rows in primary-key order, ``batch`` at a time (keyset pages on one-column keys)."""
    pk = list(table.primary_key.columns)
    if len(pk) != 1:
        result = await conn.execute(sa.select(table).order_by(*pk))
        rows = [dict(r._mapping) for r in result]
        for start in range(0, len(rows), batch):
            yield rows[start:start + batch]
        return
    key = pk[0]
    last: Any = None
    while True:
        stmt = sa.select(table).order_by(key).limit(batch)
        if last is not None:
            stmt = stmt.where(key > last)
        rows = [dict(r._mapping) for r in await conn.execute(stmt)]
        if not rows:
            return
        yield rows
        last = rows[-1][key.name]


async def _reset_sequences(conn: AsyncConnection, tables: list[sa.Table]) -> None:
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, sa.Integer) or pk[0].autoincrement is False:
            continue
        sequence = (await conn.execute(
            sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": pk[0].name})).scalar()
        if sequence is None:
            continue
        top = (await conn.execute(sa.select(sa.func.max(pk[0])))).scalar()
        await conn.execute(sa.text("SELECT setval(:s, :v, :called)"),
                           {"s": sequence, "v": int(top or 1), "called": top is not None})


async def copy_database(source: AsyncEngine, target: AsyncEngine, *, batch: int = BATCH,
                        progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Copy every row of ``source`` into the empty ``target`` (both already migrated to the
    same revision); returns the rows copied per table. Raises :class:`CopyRefused` before
    writing anything when the revisions differ or the target holds data."""
    from shopdesk.db import current_revision

    source_rev, target_rev = await current_revision(source), await current_revision(target)
    if source_rev != target_rev:
        raise CopyRefused(f"the databases are at different schema revisions ({source_rev} and {target_rev})")
    tables = _tables()
    async with target.connect() as conn:
        for table in tables:
            if n := await _count(conn, table):
                raise CopyRefused(f"the target database is not empty: {table.name} has {n} row(s)")

    copied: dict[str, int] = {}
    async with source.connect() as src, target.begin() as dst:
        for table in tables:
            copied[table.name] = 0
            async for rows in _rows(src, table, batch):
                await dst.execute(table.insert(), rows)
                copied[table.name] += len(rows)
            if progress is not None:
                progress(table.name, copied[table.name])
        if dst.dialect.name == "postgresql":
            await _reset_sequences(dst, tables)
        for table in tables:
            if (n := await _count(dst, table)) != copied[table.name]:
                raise RuntimeError(f"{table.name}: copied {copied[table.name]} row(s) but the target has {n}")
    return copied
