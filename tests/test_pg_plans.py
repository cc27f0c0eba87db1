"""PostgreSQL plans the hot path's batch statements once per connection, not at every batch
(issue 16, helper pghot).

A prepared statement gets a custom plan (made for its parameters' values) at its first five
executions on a connection; then PostgreSQL keeps one generic plan unless that looks dearer than
the custom ones did. A statement that takes a batch as arrays (``= ANY($1)``, ``unnest($1, …)``)
showed the planner the arrays' length in every custom plan, and the generic plan guesses 10 rows:
with batches of fewer than 10 (any light load) the custom plans looked cheaper, so the statement
was planned again at every batch (``pg_stat_statements.track_planning``: about 0.1 plans per
answered message each). Taking the arrays through a sub-select hides their length from every plan
alike. ``pg_prepared_statements`` counts the plans of this connection's statements."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shopbase.clock import utcnow
from shopdesk.db import create_engine

#: a shop with some history: with a handful of rows every plan costs the same, and the custom
#: plans of small batches would not look cheaper than the generic one
_HISTORY = (
    "INSERT INTO contact (channel, external_id, display_name, created_at, last_seen_at) "
    "SELECT 'webchat', 'h' || g, 'n', now(), now() FROM generate_series(1, 300) AS g",
    "INSERT INTO conversation (contact_id, channel, status, priority, owner, labels, bot_state, last_message_at, "
    "created_at, updated_at) SELECT id, 'webchat', 'open', 'normal', 'bot', '[]', '{}', now(), now(), now() "
    "FROM contact",
    "INSERT INTO message (conversation_id, channel, direction, author, is_internal, text, attachments, "
    "quick_replies, processed, created_at) SELECT c.id, 'webchat', 'in', 'customer', false, 'hello', '[]', '[]', "
    "false, now() FROM conversation c, generate_series(1, 60) AS g",
    "ANALYZE contact, conversation, message",
)

#: batch sizes as a light load makes them
_SIZES = (1, 2, 1, 3, 1, 2, 1, 1, 2, 1)


async def _plans(conn: AsyncConnection, like: str) -> tuple[int, int]:
    [row] = (await conn.execute(sa.text("SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                                        "WHERE statement LIKE :like"), {"like": like})).all()
    return int(row.generic_plans), int(row.custom_plans)


async def _with_history(pg_url: str) -> Any:
    engine = create_engine(pg_url)
    async with engine.begin() as conn:
        for sql in _HISTORY:
            await conn.execute(sa.text(sql))
    return engine


async def test_the_batch_read_is_planned_once_not_at_every_batch(pg_url: str) -> None:
    from bot.pipeline import _BATCH_ROWS_PG

    engine = await _with_history(pg_url)
    try:
        async with engine.connect() as conn:
            ids = list((await conn.execute(sa.text("SELECT id FROM message ORDER BY id LIMIT 3"))).scalars())
            for n in _SIZES:
                assert len((await conn.execute(_BATCH_ROWS_PG, {"b_ids": ids[:n]})).all()) == n
                await conn.rollback()
            generic, custom = await _plans(conn, "SELECT message.id%FOR UPDATE OF conversation, message")
        assert (generic, custom) == (len(_SIZES) - 5, 5)
    finally:
        await engine.dispose()


async def test_the_answer_batch_is_planned_once_not_at_every_batch(pg_url: str) -> None:
    from inbox.actions.message_answer_pg import answer_batch

    engine = await _with_history(pg_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT id, conversation_id FROM message ORDER BY id LIMIT 3"))).all()
            later = utcnow() + timedelta(minutes=5)
            for n in _SIZES:
                await answer_batch(conn, [(r.id, "greeting", "en") for r in rows[:n]],
                                   [(r.conversation_id, {"step": n}, "en", "greeting", later) for r in rows[:n]])
                await conn.commit()
            generic, custom = await _plans(conn, "%WITH marked AS%")
            # and it did what it says: the messages marked, the conversations moved
            marked = (await conn.execute(sa.text("SELECT count(*) FROM message WHERE processed"))).scalar_one()
            moved = (await conn.execute(sa.text("SELECT count(*) FROM conversation WHERE last_message_at = :t "
                                                "AND last_intent = 'greeting'"), {"t": later})).scalar_one()
        assert (generic, custom) == (len(_SIZES) - 5, 5)
        assert marked == 3 and moved == 3
    finally:
        await engine.dispose()
