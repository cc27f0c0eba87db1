"""A new customer's first message is recorded as Core INSERTs in one ``run_sync``
(``inbox.actions.message_record._write_first_message``): the same rows and events as the general
(ORM) path, one contact and one conversation however many first messages race, a repeated
delivery stored once, alone and in a record group."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

import inbox.actions.message_record as message_record_module
from inbox.actions.message_record import GROUPS, message_record
from inbox.actions.message_record_group import record_in_groups
from inbox.events import Event, EventBus
from inbox.messages import Attachment, InboundMessage
from inbox.models import AuditEvent, Channel, Contact, Conversation, ConversationCount, Message
from tests.db_helpers import count

NOW = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)


@pytest.fixture
def first_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The senders whose first message went through the Core path."""
    calls: list[str] = []
    real = message_record_module._write_first_message

    def spy(connection: Any, c: Any, now: datetime) -> Any:
        calls.append(c.external_id)
        return real(connection, c, now)

    monkeypatch.setattr(message_record_module, "_write_first_message", spy)
    return calls


def first(sender: str, key: str, channel: Channel = Channel.telegram, **kw: Any) -> InboundMessage:
    return InboundMessage(channel, key, sender, kw.pop("text", "Where is my order #123?"), **kw)


async def rows_of(sessions: Any, contact_id: int) -> dict[str, Any]:
    """Every row a first message wrote for ``contact_id``, without the ids that differ between senders."""
    async with sessions() as s:
        contact = (await s.exec(select(Contact).where(Contact.id == contact_id))).one()
        conversations = (await s.exec(select(Conversation).where(Conversation.contact_id == contact_id))).all()
        assert len(conversations) == 1
        conversation = conversations[0]
        messages = (await s.exec(select(Message).where(Message.conversation_id == conversation.id))).all()
        audits = (await s.exec(select(AuditEvent).where(AuditEvent.conversation_id == conversation.id))).all()
    detail = [dict(a.detail) for a in audits]
    for d in detail:
        assert d.pop("contact_id") == contact_id
    return {
        "contact": contact.model_dump(exclude={"id", "external_id"}),
        "conversation": conversation.model_dump(exclude={"id", "contact_id"}),
        "messages": [m.model_dump(exclude={"id", "conversation_id", "dedupe_key"}) for m in messages],
        "audits": [a.model_dump(exclude={"id", "conversation_id", "detail"}) for a in audits],
        "audit_details": detail,
    }


def without_ids(events: list[Event], conversation_id: int) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for e in events:
        if e.conversation_id == conversation_id:
            out.append((e.type, {k: v for k, v in e.data.items() if k != "message_id"}))
    return out


@pytest.mark.parametrize("channel,extra", [
    (Channel.telegram, {"display_name": "Ann Lee", "username": "annlee", "language_hint": "en"}),
    (Channel.webchat, {"text": "", "postback": "track", "start_payload": "order-55",
                       "attachments": (Attachment("photo", "a.jpg", url="https://x.test/a.jpg"),)}),
])
async def test_a_first_message_writes_what_the_orm_path_writes(sessions: Any, published: list[Event], bus: EventBus,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               first_writes: list[str], channel: Channel,
                                                               extra: dict[str, Any]) -> None:
    core = await message_record(sessions, first("core", "k-core", channel, **extra), now=NOW)
    assert first_writes == ["core"]
    monkeypatch.setattr(message_record_module, "_write_first_message", lambda *_args: None)  # the ORM path
    orm = await message_record(sessions, first("orm", "k-orm", channel, **extra), now=NOW)
    assert core.new_conversation and orm.new_conversation and not core.duplicate and not orm.duplicate
    assert not core.reopened and not orm.reopened

    core_rows, orm_rows = await rows_of(sessions, core.contact_id), await rows_of(sessions, orm.contact_id)
    assert core_rows == orm_rows
    assert core_rows["audits"][0]["action"] == "conversation.created"
    if extra.get("display_name"):
        assert "ann" in core_rows["contact"]["search_text"]  # the column default derived the search text
    assert core_rows["messages"][0]["processed"] is False

    await bus.wait_idle()
    core_events = without_ids(published, core.conversation_id)
    assert core_events == without_ids(published, orm.conversation_id)
    assert [t for t, _ in core_events] == ["conversation.updated", "message.created"]
    assert [e.data["message_id"] for e in published if e.type == "message.created"] == [core.message_id,
                                                                                          orm.message_id]
    async with sessions() as s:  # the database's triggers counted both conversations
        counted = (await s.exec(select(sa.func.sum(ConversationCount.n)).where(
            ConversationCount.status == "open", ConversationCount.owner == "bot"))).one()
    assert counted == 2


async def test_a_contact_with_no_open_conversation_takes_the_general_path(sessions: Any,
                                                                          first_writes: list[str]) -> None:
    from inbox.actions.conversation_status import conversation_status
    from inbox.models import ConversationStatus
    from tests.test_inbox_store import make_agent

    one = await message_record(sessions, first("c1", "k1"), now=NOW)
    agent = await make_agent(sessions, "a@x.test", admin=True)
    async with sessions() as s:
        conversation = await s.get(Conversation, one.conversation_id)
        assert conversation is not None
        await conversation_status(s, conversation, ConversationStatus.resolved, by=agent)
        await s.commit()
    again = await message_record(sessions, first("c1", "k2"), now=NOW)
    assert first_writes == ["c1"]  # only the first message was the Core path's
    assert again.reopened and again.conversation_id == one.conversation_id
    assert await count(sessions, Contact) == 1


@pytest.mark.parametrize("grouped", [False, True])
async def test_concurrent_first_messages_of_one_contact_open_one_conversation(
        sessions: Any, published: list[Event], bus: EventBus, first_writes: list[str], grouped: bool) -> None:
    if grouped:
        record_in_groups(sessions)
    try:
        results = await asyncio.gather(*(message_record(sessions, first("c1", f"k{i}", text=f"m{i}"))
                                         for i in range(8)))
    finally:
        GROUPS.pop(sessions, None)
    assert first_writes  # the Core path wrote the winner
    assert len({r.conversation_id for r in results}) == 1 and len({r.contact_id for r in results}) == 1
    assert sum(r.new_conversation for r in results) == 1
    assert await count(sessions, Contact) == 1
    assert await count(sessions, Conversation) == 1
    assert await count(sessions, Message) == 8
    assert await count(sessions, AuditEvent) == 1
    await bus.wait_idle()
    created = [e for e in published if e.type == "conversation.updated" and e.data.get("change") == "created"]
    assert len(created) == 1
    assert sorted(e.data["message_id"] for e in published if e.type == "message.created") == sorted(
        r.message_id for r in results)


async def test_a_lost_race_on_the_contact_is_retried_and_reads_the_winner(
        sessions: Any, published: list[Event], bus: EventBus, monkeypatch: pytest.MonkeyPatch) -> None:
    winner = await message_record(sessions, first("c1", "k1"), now=NOW)
    real = message_record_module._write_into_open_conversation
    raced: list[int] = []

    def stale_read(connection: Any, c: Any, now: datetime) -> Any:
        if not raced:  # as if the read ran before the winner committed: insert a contact that exists
            raced.append(1)
            return message_record_module._write_first_message(connection, c, now)
        return real(connection, c, now)

    monkeypatch.setattr(message_record_module, "_write_into_open_conversation", stale_read)
    # PostgreSQL records a known customer's message in one statement of its own first: here it
    # must take the general path, whose read is the one that raced
    monkeypatch.setattr(message_record_module, "one_statement_enabled", lambda _sessions: False)
    loser = await message_record(sessions, first("c1", "k2", text="second"), now=NOW)
    assert raced == [1]
    assert not loser.duplicate and not loser.new_conversation
    assert (loser.contact_id, loser.conversation_id) == (winner.contact_id, winner.conversation_id)
    assert await count(sessions, Contact) == 1
    assert await count(sessions, Conversation) == 1
    assert await count(sessions, AuditEvent) == 1  # the failed attempt's rows were rolled back
    assert await count(sessions, Message) == 2
    await bus.wait_idle()
    assert len([e for e in published if e.type == "conversation.updated"]) == 1


@pytest.mark.parametrize("grouped", [False, True])
async def test_a_repeated_first_delivery_is_stored_once(sessions: Any, published: list[Event], bus: EventBus,
                                                        first_writes: list[str], grouped: bool) -> None:
    if grouped:
        record_in_groups(sessions)
    try:
        together = await asyncio.gather(*(message_record(sessions, first("c1", "same")) for _ in range(5)))
        later = await message_record(sessions, first("c1", "same"))
    finally:
        GROUPS.pop(sessions, None)
    assert first_writes
    stored = [r for r in together if not r.duplicate]
    assert len(stored) == 1 and stored[0].new_conversation
    assert later.duplicate
    assert {(r.message_id, r.conversation_id, r.contact_id) for r in [*together, later]} == {
        (stored[0].message_id, stored[0].conversation_id, stored[0].contact_id)}
    assert await count(sessions, Message) == 1
    assert await count(sessions, Conversation) == 1
    assert await count(sessions, AuditEvent) == 1
    await bus.wait_idle()
    assert len([e for e in published if e.type == "message.created"]) == 1
    async with sessions() as s:
        keys = (await s.exec(select(Message.dedupe_key).order_by(col(Message.id)))).all()
    assert list(keys) == ["same"]


async def test_a_first_message_takes_one_statement_more_than_a_common_one(sessions: Any, engine: Any) -> None:
    """The read, then contact, conversation, audit line and message (the ORM path took three
    statements more: the contact's and the conversations' reads)."""
    statements: list[str] = []
    sa.event.listen(engine.sync_engine, "before_cursor_execute",
                    lambda _c, _cur, sql, *_rest: statements.append(sql.split()[0].upper()))
    await message_record(sessions, first("c1", "k1"))
    first_message, statements[:] = list(statements), []
    await message_record(sessions, first("c1", "k2"))
    common = list(statements)
    if engine.dialect.name == "postgresql":
        # the known customer's message is ONE statement there (``message_record_pg``); a first one
        # tries that statement (it writes nothing), then reads and inserts as on SQLite
        assert common == ["WITH"]
        assert first_message == ["WITH", "SELECT", "INSERT", "INSERT", "INSERT", "INSERT"]
        return
    assert first_message.count("INSERT") == 4 and first_message.count("SELECT") == common.count("SELECT") == 1
    assert len(first_message) == len(common) + 1
