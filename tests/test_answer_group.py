"""A micro-batch's common answers are written together (``inbox.actions.message_answer_group``):
the same rows and events as the turns one at a time, in a fixed number of statements."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import col, select

from inbox.actions.message_record import message_record
from inbox.events import Event, EventBus
from inbox.messages import InboundMessage
from inbox.models import Channel, Conversation, Direction, Message, OutboxMessage, Owner

TEXTS = ["hi", "what is your return policy?", "hello", "I want to talk to a human", "thanks", "asdkjh qwe zzz"]


@pytest.fixture
def pipeline(sessions: Any, settings: Any, bus: EventBus) -> Any:
    from bot.pipeline import Pipeline

    return Pipeline(sessions=sessions, bus=bus, settings=settings)


async def record(sessions: Any, contact: str, text: str) -> int:
    return (await message_record(sessions, InboundMessage(Channel.telegram, f"{contact}-1", contact, text))).message_id


async def outcome(sessions: Any, message_id: int) -> dict[str, Any]:
    """What a turn left behind for its conversation, without ids and times."""
    async with sessions() as s:
        inbound = await s.get(Message, message_id)
        conversation = await s.get(Conversation, inbound.conversation_id)
        replies = (await s.exec(select(Message).where(col(Message.conversation_id) == conversation.id,
                                                      col(Message.direction) == Direction.outbound)
                                .order_by(col(Message.id)))).all()
        outbox = (await s.exec(select(OutboxMessage).where(col(OutboxMessage.conversation_id) == conversation.id)
                               .order_by(col(OutboxMessage.id)))).all()
    assert [o.message_id for o in outbox] == [r.id for r in replies]  # each outbox row sends its own message
    assert all(o.contact_id == conversation.contact_id for o in outbox)
    return {
        "inbound": (inbound.processed, inbound.intent, inbound.language),
        "conversation": (conversation.owner, conversation.language, conversation.last_intent, conversation.bot_state,
                         conversation.last_message_at is not None),
        "replies": [(r.text, r.author, r.quick_replies, r.processed, r.delivery_status) for r in replies],
        "payloads": [o.payload for o in outbox],
    }


async def test_a_batch_leaves_what_the_turns_one_at_a_time_leave(sessions, pipeline, bus):
    events: list[Event] = []
    bus.subscribe(events.append)
    batched = [await record(sessions, f"batch{i}", text) for i, text in enumerate(TEXTS)]
    single = [await record(sessions, f"single{i}", text) for i, text in enumerate(TEXTS)]
    # one conversation of each set belongs to an agent: the bot stays silent there
    for message_id in (batched[2], single[2]):
        async with sessions() as s:
            conversation = await s.get(Conversation, (await s.get(Message, message_id)).conversation_id)
            conversation.owner = Owner.agent
            s.add(conversation)
            await s.commit()
    assert await pipeline.process_many(batched) == dict.fromkeys(batched)
    for message_id in single:
        await pipeline.process(message_id)
    await bus.wait_idle()
    for one, alone in zip(batched, single, strict=True):
        assert await outcome(sessions, one) == await outcome(sessions, alone)
    # every reply was announced once, with its own message and outbox ids
    async with sessions() as s:
        sent = {(o.message_id, o.id, o.conversation_id) for o in (await s.exec(select(OutboxMessage))).all()}
    created = [(e.data["message_id"], e.data["outbox_id"], e.conversation_id) for e in events
               if e.type == "message.created" and e.data.get("direction") == Direction.outbound.value]
    assert sorted(created) == sorted(sent) and len(sent) >= len(TEXTS) - 1
    # a replay of the batch changes nothing
    before = [await outcome(sessions, m) for m in batched]
    assert await pipeline.process_many(batched) == dict.fromkeys(batched)
    assert [await outcome(sessions, m) for m in batched] == before


async def test_a_batch_writes_its_answers_in_a_fixed_number_of_statements(sessions, pipeline, engine):
    ids = [await record(sessions, f"c{i}", "what is your return policy?") for i in range(6)]
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        assert await pipeline.process_many(ids) == dict.fromkeys(ids)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    for table in ("INSERT INTO message ", "INSERT INTO outbox "):
        assert sum(s.startswith(table) for s in statements) == 1, (table, statements)
    updates = ("UPDATE message ", "UPDATE conversation ")
    if engine.dialect.name == "postgresql":  # both in ONE statement (inbox.actions.message_answer_pg)
        assert sum(s.startswith("WITH marked AS ( UPDATE message ") for s in statements) == 1, statements
        assert not any(s.startswith(updates) for s in statements), statements
    else:
        for table in updates:
            assert sum(s.startswith(table) for s in statements) == 1, (table, statements)
    assert sum(s.startswith("SELECT message.id") for s in statements) == 1  # the turns' rows in one read
    for message_id in ids:
        assert (await outcome(sessions, message_id))["inbound"][0] is True


async def test_several_replies_of_a_turn_keep_their_order(sessions, bus):
    from inbox.actions.message_answer_group import AnswerGroup
    from inbox.messages import OutboundPayload

    first = await record(sessions, "x", "hi")
    second = await record(sessions, "y", "hi")
    third = await record(sessions, "z", "hi")
    group = AnswerGroup()
    async with sessions() as s:
        for message_id, texts in ((first, ["one", "two", "three"]), (second, ["solo"]), (third, [])):
            message = await s.get(Message, message_id)
            conversation = await s.get(Conversation, message.conversation_id)
            assert group.accepts(s, conversation, message)
            group.add(conversation, message, replies=[OutboundPayload(text=t) for t in texts],
                      bot_state={"step": message_id}, language="en", intent="greeting")
            assert not group.accepts(s, conversation, message)  # one answer per conversation
        await group.write(s)
        await s.commit()
    for message_id, texts in ((first, ["one", "two", "three"]), (second, ["solo"]), (third, [])):
        found = await outcome(sessions, message_id)
        assert [r[0] for r in found["replies"]] == texts  # in id order, each with its own outbox row
        assert [p["text"] for p in found["payloads"]] == texts
        assert found["inbound"] == (True, "greeting", "en")
        assert found["conversation"][3] == {"step": message_id}
        assert found["conversation"][4] is True  # last_message_at (set on creation, kept)


async def test_a_replying_turn_moves_the_conversations_times_and_a_silent_one_keeps_them(sessions, bus):
    from inbox.actions.message_answer_group import AnswerGroup
    from inbox.messages import OutboundPayload

    replying, silent = await record(sessions, "r", "hi"), await record(sessions, "s", "hi")

    async def times(message_id: int) -> tuple[Any, Any, Any]:
        async with sessions() as s:
            conversation = await s.get(Conversation, (await s.get(Message, message_id)).conversation_id)
            return conversation.last_message_at, conversation.updated_at, conversation.bot_state

    before = {m: await times(m) for m in (replying, silent)}
    group = AnswerGroup()
    async with sessions() as s:
        for message_id, texts in ((silent, []), (replying, ["hello"])):
            message = await s.get(Message, message_id)
            conversation = await s.get(Conversation, message.conversation_id)
            group.add(conversation, message, replies=[OutboundPayload(text=t) for t in texts],
                      bot_state={"step": [message_id, "ü"]}, language="es", intent="greeting")
        await group.write(s)
        await s.commit()
        [reply_at] = (await s.exec(select(Message.created_at).where(col(Message.direction) == Direction.outbound))).all()
    last, updated, state = await times(silent)
    assert (last, updated) == before[silent][:2] and state == {"step": [silent, "ü"]}
    last, updated, state = await times(replying)
    assert last == updated == reply_at and last > before[replying][0] and state == {"step": [replying, "ü"]}
    for message_id in (replying, silent):
        assert (await outcome(sessions, message_id))["inbound"] == (True, "greeting", "es")
