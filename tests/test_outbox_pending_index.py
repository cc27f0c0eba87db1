"""Migration 0028: the pending rows of a stream have their own partial index, and the two hot
"earlier pending row?" questions (the claim's heads, a reply born claimed) use it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from inbox.models import OutboxMessage
from inbox.outbox import _blocked_by_earlier
from inbox.outbox_handoff import born_claimed_value

INDEX = "ix_outbox_pending_stream"


async def _indexes(engine: Any) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: {i["name"] for i in sa.inspect(c).get_indexes("outbox")}))


async def test_0028_goes_down_and_back_up(engine: Any, sessions: Any) -> None:
    from tests.test_search import _alembic

    assert INDEX in await _indexes(engine)
    await _alembic(engine, "downgrade", "0027")
    assert INDEX not in await _indexes(engine)
    await _alembic(engine, "upgrade", "head")
    assert INDEX in await _indexes(engine)


async def _plan(engine: Any, statement: Any, params: dict[str, Any]) -> str:
    compiled = statement.compile(engine.sync_engine)
    args = tuple(compiled.construct_params(params)[name] for name in compiled.positiontup)
    async with engine.connect() as conn:
        rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), args)
        return " ".join(str(row[-1]) for row in rows)


async def test_the_heads_of_the_claim_and_a_born_claimed_reply_read_the_pending_index(tmp_path: Any) -> None:
    """Both questions read the partial index (without it SQLite walks every outbox row the
    conversation ever had, through ``ix_outbox_conversation_id``)."""
    from shopdesk.db import create_engine, migrate

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}")
    try:
        await migrate(engine)
        heads = sa.select(OutboxMessage.id).where(OutboxMessage.status == "pending", ~_blocked_by_earlier())
        assert f"USING INDEX {INDEX}" in await _plan(engine, heads, {})
        assert f"USING INDEX {INDEX}" in await _plan(engine, sa.select(born_claimed_value()), {
            "b_conversation": 1, "b_channel": "webchat", "b_hold_channel": "webchat", "b_contact": 1,
            "b_now": "2026-01-01", "b_lease": "2026-01-01"})
    finally:
        await engine.dispose()
