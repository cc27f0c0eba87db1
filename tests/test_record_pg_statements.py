"""PostgreSQL: a known customer's message into their open conversation is recorded in ONE
statement and one round trip (no BEGIN, no COMMIT of the client's: the statement commits itself),
with the same rows, event and result as the four-statement path; anything else goes that path.
(``inbox.actions.message_record_pg``; issue 16, helper pgstmts)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from inbox.actions.message_record import message_record
from inbox.events import EventBus
from inbox.messages import InboundMessage
from inbox.models import Channel
from shopdesk.db import create_engine, session_maker


def _log_queries(engine: Any) -> list[str]:
    """Every statement the engine runs and every BEGIN/COMMIT/ROLLBACK its asyncpg connections send
    (asyncpg logs its simple queries, which transactions are; the engine's statements are prepared)."""
    seen: list[str] = []

    def connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection._connection.add_query_logger(lambda q: seen.append(" ".join(q.query.split())))

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(" ".join(sql.split()))

    event.listen(engine.sync_engine, "connect", connect)
    event.listen(engine.sync_engine, "before_cursor_execute", statement)
    return seen


def _msg(key: str, text: str = "where is my order", **kw: Any) -> InboundMessage:
    fields: dict[str, Any] = {"channel": Channel.telegram, "dedupe_key": key, "contact_external_id": "4242",
                              "text": text, "display_name": "Ana"}
    return InboundMessage(**(fields | kw))


async def _rows(sessions: Any, sql: str, **params: Any) -> list[Any]:
    async with sessions() as db:
        return list((await db.exec(sa.text(sql), params=params)).all())


async def test_the_common_case_is_one_statement_and_writes_what_the_usual_path_writes(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        sessions = session_maker(engine)
        bus = EventBus()
        bus.bind(sessions)
        heard: list[Any] = []
        bus.subscribe(heard.append)
        first = await message_record(sessions, _msg("k:1", "hi"))  # a new customer: the usual path
        assert first.new_conversation
        queries = _log_queries(engine)
        await engine.dispose()  # new connections: the logger is on them
        second = await message_record(sessions, _msg("k:2"))
        assert queries and len(queries) == 1, queries  # one statement; no BEGIN, no COMMIT
        assert queries[0].startswith("WITH found AS")
        assert (second.conversation_id, second.contact_id, second.duplicate, second.new_conversation) == (
            first.conversation_id, first.contact_id, False, False)
        assert second.message_id > first.message_id
        [row] = await _rows(sessions, "SELECT conversation_id, channel, direction, author, is_internal, text, "
                            "processed, dedupe_key, search_text, created_at FROM message WHERE id = :id",
                            id=second.message_id)
        assert row[:8] == (first.conversation_id, "telegram", "in", "customer", False, "where is my order", False,
                           "k:2")
        assert row.search_text  # the search index's text, as the usual path derives it
        [conv] = await _rows(sessions, "SELECT last_message_at, updated_at FROM conversation WHERE id = :id",
                             id=first.conversation_id)
        [seen] = await _rows(sessions, "SELECT last_seen_at FROM contact WHERE id = :id", id=first.contact_id)
        assert conv.last_message_at == conv.updated_at == seen.last_seen_at == row.created_at
        await bus.wait_idle()
        created = [e for e in heard if e.data.get("message_id") == second.message_id]
        assert [(e.type, e.conversation_id, e.data["direction"]) for e in created] == [
            ("message.created", first.conversation_id, "in")]
        # a repeated delivery: refused by the unique index, answered with the first one's ids
        again = await message_record(sessions, _msg("k:2"))
        assert again.duplicate and again.message_id == second.message_id
        assert len(await _rows(sessions, "SELECT id FROM message WHERE dedupe_key = 'k:2'")) == 1
    finally:
        await engine.dispose()


@pytest.mark.parametrize("change", ["name", "language", "resolved", "agent without SLA"])
async def test_anything_else_goes_the_usual_way(pg_url: str, change: str) -> None:
    engine = create_engine(pg_url)
    try:
        sessions = session_maker(engine)
        first = await message_record(sessions, _msg("k:1", "hi"))
        extra: dict[str, Any] = {}
        if change == "name":
            extra["display_name"] = "Ana Maria"
        elif change == "language":
            extra["language_hint"] = "es"
        else:
            async with sessions() as db:
                sql = ("UPDATE conversation SET status = 'resolved', resolved_at = now() - interval '30 days', "
                       "updated_at = now() - interval '30 days'" if change == "resolved"
                       else "UPDATE conversation SET owner = 'agent', sla_due_at = NULL")
                await db.exec(sa.text(sql + " WHERE id = :id"), params={"id": first.conversation_id})
                await db.commit()
        queries = _log_queries(engine)
        await engine.dispose()
        second = await message_record(sessions, _msg("k:2", **extra))
        assert queries[0].startswith("WITH found AS")  # tried, wrote nothing ...
        assert any(q.startswith("BEGIN") for q in queries[1:]) and "COMMIT;" in queries  # ... then a transaction
        assert len(await _rows(sessions, "SELECT id FROM message WHERE dedupe_key = 'k:2'")) == 1
        [contact] = await _rows(sessions, "SELECT display_name, language FROM contact WHERE id = :id",
                                id=second.contact_id)
        if change == "name":
            assert contact.display_name == "Ana Maria"
        if change == "language":
            assert contact.language == "es"
        if change == "resolved":
            assert second.new_conversation and second.conversation_id != first.conversation_id
        if change == "agent without SLA":
            [conv] = await _rows(sessions, "SELECT sla_due_at FROM conversation WHERE id = :id",
                                 id=second.conversation_id)
            assert conv.sla_due_at is not None  # the usual path starts the SLA clock
    finally:
        await engine.dispose()


async def test_the_contact_is_locked_before_the_message_takes_its_id(pg_url: str) -> None:
    """A customer's messages get their ids in the order they commit (per-conversation order: the
    worker must never see a later message committed before an earlier one): the one statement
    waits for the contact's lock BEFORE its INSERT draws an id."""
    engine = create_engine(pg_url)
    try:
        sessions = session_maker(engine)
        first = await message_record(sessions, _msg("k:1", "hi"))
        async with sessions() as holder:
            await holder.exec(sa.text("SELECT id FROM contact WHERE id = :id FOR NO KEY UPDATE"),
                              params={"id": first.contact_id})
            waiting = asyncio.create_task(message_record(sessions, _msg("k:2")))
            await asyncio.sleep(0.3)
            assert not waiting.done()  # waits for the contact's lock
            # meanwhile the lock holder writes a message of its own and commits
            other = (await holder.exec(sa.text(
                "INSERT INTO message (conversation_id, channel, direction, author, is_internal, text, attachments, "
                "quick_replies, processed, created_at) VALUES (:c, 'telegram', 'in', 'customer', false, 'x', "
                "'[]', '[]', true, now()) RETURNING id"), params={"c": first.conversation_id})).scalar_one()
            await holder.commit()
        second = await waiting
        assert second.message_id > other  # its id was drawn after the lock, not before
    finally:
        await engine.dispose()
