"""PostgreSQL: the analytics rollup's counts are added at commit (migration 0025), so two
transactions changing different conversations' intents do not wait for each other on the few
rollup rows they share, and what they commit is counted exactly once."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from inbox.actions.message_record import message_record
from inbox.messages import InboundMessage
from inbox.models import Channel
from shopdesk.db import create_engine, session_maker


async def _conversations(sessions: Any, n: int) -> list[int]:
    ids = []
    for i in range(n):
        recorded = await message_record(sessions, InboundMessage(
            channel=Channel.telegram, dedupe_key=f"fold:{i}", contact_external_id=str(700 + i), text="hi"))
        ids.append(recorded.conversation_id)
    return ids


async def _rollup(conn: Any) -> dict[str, int]:
    rows = (await conn.execute(sa.text(
        "SELECT intent, sum(conversations) FROM conversation_daily GROUP BY intent HAVING sum(conversations) <> 0"
    ))).all()
    return {str(intent): int(n) for intent, n in rows}


async def test_two_transactions_move_counts_without_waiting_for_each_other(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        sessions = session_maker(engine)
        first, second, third = await _conversations(sessions, 3)
        move = sa.text("UPDATE conversation SET last_intent = :intent WHERE id = :id")
        async with engine.connect() as a, engine.connect() as b:
            await a.execute(move, {"intent": "order_status", "id": first})
            # before 0025 this waited for ``a`` on the shared (day, telegram, unknown) row
            await b.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
            await b.execute(move, {"intent": "order_status", "id": second})
            await b.execute(move, {"intent": "returns", "id": third})
            await b.commit()
            await a.commit()
        async with engine.connect() as conn:
            assert await _rollup(conn) == {"order_status": 2, "returns": 1}
            # nothing is left waiting, and a rolled-back change is not counted
            await conn.execute(move, {"intent": "returns", "id": first})
            await conn.rollback()
            assert await _rollup(conn) == {"order_status": 2, "returns": 1}
            pending = (await conn.execute(sa.text(
                "SELECT (SELECT count(*) FROM conversation_daily_pending) + "
                "(SELECT count(*) FROM response_daily_pending)"))).scalar_one()
            assert pending == 0
            # several changes of one conversation in one transaction: the last one counts
            await conn.execute(move, {"intent": "returns", "id": first})
            await conn.execute(move, {"intent": "greeting", "id": first})
            await conn.commit()
            assert await _rollup(conn) == {"order_status": 1, "returns": 1, "greeting": 1}
    finally:
        await engine.dispose()


async def test_a_change_of_response_times_alone_is_folded_at_commit(pg_url: str) -> None:
    """0026: a change that moves only a response-time entry (no count of conversation_daily) adds
    no daily row; its own deferred trigger still folds it into response_daily at commit."""
    engine = create_engine(pg_url)
    try:
        sessions = session_maker(engine)
        [cid] = await _conversations(sessions, 1)
        respond = sa.text("UPDATE conversation SET first_response_at = created_at + interval '90 seconds' "
                          "WHERE id = :id")
        async with engine.connect() as conn:
            await conn.execute(respond, {"id": cid})
            await conn.commit()
            pending = (await conn.execute(sa.text(
                "SELECT (SELECT count(*) FROM conversation_daily_pending) + "
                "(SELECT count(*) FROM response_daily_pending)"))).scalar_one()
            assert pending == 0
            rows = (await conn.execute(sa.text(
                "SELECT measure, seconds, conversations FROM response_daily WHERE conversations <> 0"))).all()
            assert [tuple(r) for r in rows] == [("first_response", 90, 1)]
            # an intent change leaves the response entry where it is; the count moves
            await conn.execute(sa.text("UPDATE conversation SET last_intent = 'returns' WHERE id = :id"), {"id": cid})
            await conn.commit()
            rows = (await conn.execute(sa.text(
                "SELECT measure, seconds, conversations FROM response_daily WHERE conversations <> 0"))).all()
            assert [tuple(r) for r in rows] == [("first_response", 90, 1)]
            assert await _rollup(conn) == {"returns": 1}
    finally:
        await engine.dispose()


async def test_0027_goes_down_to_0026s_trigger_and_back(engine: Any, sessions: Any) -> None:
    """0027 (PostgreSQL) replaces the row trigger's and the fold's bodies; down puts 0026's and
    0025's back, and both count."""
    from tests.test_search import _alembic

    source = ("SELECT coalesce((SELECT string_agg(prosrc, ' ') FROM pg_proc "
              "WHERE proname IN ('shopdesk_conversation_daily', 'shopdesk_rollup_fold')), '')")
    first, second = await _conversations(sessions, 2)
    move = sa.text("UPDATE conversation SET last_intent = :intent WHERE id = :id")
    await _alembic(engine, "downgrade", "0026")
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            text = (await conn.execute(sa.text(source))).scalar_one()
            assert "nothing counted moved" not in text and "moved_times" not in text
        await conn.execute(move, {"intent": "returns", "id": first})
        await conn.commit()
    await _alembic(engine, "upgrade", "head")
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            text = (await conn.execute(sa.text(source))).scalar_one()
            assert "nothing counted moved" in text and "moved_times" in text
        await conn.execute(move, {"intent": "returns", "id": second})
        await conn.execute(move, {"intent": "returns", "id": first})  # nothing counted moves
        await conn.commit()
        assert await _rollup(conn) == {"returns": 2}
