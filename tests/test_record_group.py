"""Group commit of inbound messages (``inbox.actions.message_record_group``): messages arriving
together are recorded in one transaction, each exactly as alone; a repeat or a failure in a group
makes each one recorded on its own, so every caller gets what it would have got without it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from inbox.actions.message_record import GROUPS, message_record
from inbox.actions.message_record_group import RecordGroup, record_in_groups
from inbox.messages import InboundMessage, InvalidMessage
from inbox.models import Channel, Contact, Conversation, Message


@pytest.fixture
def grouped(sessions: Any, engine: Any) -> Any:
    commits: list[int] = []
    sa.event.listen(engine.sync_engine, "commit", lambda _conn: commits.append(1))
    record_in_groups(sessions)
    yield commits
    GROUPS.pop(sessions, None)


def msg(key: str, contact: str, text: str) -> InboundMessage:
    return InboundMessage(Channel.telegram, key, contact, text)


async def test_messages_arriving_together_share_one_commit(sessions: Any, grouped: list[int]) -> None:
    results = await asyncio.gather(*(message_record(sessions, msg(f"k{i}", f"c{i % 3}", f"text {i}"))
                                     for i in range(9)))
    assert len(grouped) == 1  # one transaction for all nine
    assert not any(r.duplicate for r in results)
    assert [r.message_id for r in results] == sorted(r.message_id for r in results)  # arrival order
    async with sessions() as s:
        contacts = (await s.exec(select(Contact))).all()
        conversations = (await s.exec(select(Conversation))).all()
        texts = {m.id: m.text for m in (await s.exec(select(Message))).all()}
    assert len(contacts) == 3 and len(conversations) == 3  # a new customer's two messages: one of each
    assert [texts[r.message_id] for r in results] == [f"text {i}" for i in range(9)]
    by_contact = {r.contact_id for r in results[0::3]}
    assert len(by_contact) == 1 and len({r.conversation_id for r in results[0::3]}) == 1


async def test_a_repeated_delivery_in_a_group_is_a_duplicate_and_the_others_are_kept(sessions: Any,
                                                                                     grouped: list[int]) -> None:
    first = await message_record(sessions, msg("k1", "c1", "hello"))
    again, other = await asyncio.gather(message_record(sessions, msg("k1", "c1", "hello")),
                                        message_record(sessions, msg("k2", "c2", "another")))
    assert again.duplicate and again.message_id == first.message_id
    assert not other.duplicate
    async with sessions() as s:
        rows = (await s.exec(select(Message.text).order_by(col(Message.id)))).all()
    assert list(rows) == ["hello", "another"]  # the repeat stored nothing, the other message once


async def test_a_delivery_id_of_another_sender_is_refused_alone(sessions: Any, grouped: list[int]) -> None:
    await message_record(sessions, msg("k1", "c1", "hello"))
    results = await asyncio.gather(message_record(sessions, msg("k1", "intruder", "hi")),
                                   message_record(sessions, msg("k2", "c2", "fine")), return_exceptions=True)
    assert isinstance(results[0], InvalidMessage)
    assert not isinstance(results[1], BaseException) and not results[1].duplicate


async def test_an_empty_message_is_refused_before_the_group(sessions: Any, grouped: list[int]) -> None:
    with pytest.raises(InvalidMessage):
        await message_record(sessions, msg("k1", "c1", "   "))
    assert grouped == []


async def test_known_customers_messages_are_written_together_in_arrival_order(sessions: Any, engine: Any,
                                                                              grouped: list[int]) -> None:
    for i in range(4):  # known customers with open conversations: the common case
        await message_record(sessions, msg(f"first{i}", f"c{i}", "hello"))
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        results = await asyncio.gather(*(message_record(sessions, msg(f"k{i}", f"c{i % 4}", f"text {i}"))
                                         for i in range(8)))
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert not any(r.duplicate for r in results)
    # one read for the group; the writes: the contacts and the conversations once each, the
    # messages in one INSERT per message of a conversation (two each here)
    assert sum(s.startswith("SELECT ") and " FROM contact " in s for s in statements) == 1
    assert sum(s.startswith("INSERT INTO message ") for s in statements) == 2
    assert sum(s.startswith("UPDATE contact ") for s in statements) == 1
    assert sum(s.startswith("UPDATE conversation ") for s in statements) == 1
    async with sessions() as s:
        rows = {m.id: (m.text, m.conversation_id, m.dedupe_key) for m in (await s.exec(select(Message))).all()}
    for i, r in enumerate(results):
        assert rows[r.message_id] == (f"text {i}", r.conversation_id, f"k{i}")
    for c in range(4):
        mine = [r.message_id for r in results[c::4]]
        assert mine == sorted(mine)  # a conversation's messages in arrival order
    assert len({r.conversation_id for r in results}) == 4


class _BusyConnection:
    """``sessions`` whose sessions wait for ``free`` before they get a connection (as when a
    worker's batch holds SQLite's one connection)."""

    def __init__(self, sessions: Any) -> None:
        self.sessions = sessions
        self.free = asyncio.Event()

    def __call__(self) -> Any:
        session = self.sessions()
        connect = session.connection

        async def connection(*args: Any, **kwargs: Any) -> Any:
            await self.free.wait()
            return await connect(*args, **kwargs)

        session.connection = connection
        return session

    def __getattr__(self, name: str) -> Any:  # the rest of async_sessionmaker (kw, ...)
        return getattr(self.sessions, name)


async def test_messages_arriving_while_the_group_waits_for_the_connection_join_it(
        sessions: Any, grouped: list[int]) -> None:
    group = GROUPS[sessions]
    assert isinstance(group, RecordGroup)
    busy = _BusyConnection(sessions)
    group.sessions = busy  # type: ignore[assignment]
    first = asyncio.create_task(message_record(sessions, msg("k0", "c0", "text 0")))
    later = []
    for i in range(1, 5):  # one by one, on separate loop turns, as webhooks arrive
        await asyncio.sleep(0)
        later.append(asyncio.create_task(message_record(sessions, msg(f"k{i}", f"c{i}", f"text {i}"))))
    await asyncio.sleep(0.01)
    assert grouped == [] and not first.done()
    busy.free.set()
    results = await asyncio.wait_for(asyncio.gather(first, *later), 10)
    assert len(grouped) == 1  # the five in one transaction
    assert [r.message_id for r in results] == sorted(r.message_id for r in results)  # arrival order
    async with sessions() as s:
        texts = {m.id: m.text for m in (await s.exec(select(Message))).all()}
    assert [texts[r.message_id] for r in results] == [f"text {i}" for i in range(5)]


class _NoConnectionOnce(_BusyConnection):
    """``sessions`` whose first session cannot get a connection (the database went away)."""

    refused = 1

    def __call__(self) -> Any:
        session = self.sessions()
        connect = session.connection

        async def connection(*args: Any, **kwargs: Any) -> Any:
            if self.refused:
                self.refused -= 1
                raise OSError("database away")
            return await connect(*args, **kwargs)

        session.connection = connection
        return session


async def test_a_group_that_gets_no_connection_records_each_message_alone(
        sessions: Any, grouped: list[int]) -> None:
    group = GROUPS[sessions]
    assert isinstance(group, RecordGroup)
    group.sessions = _NoConnectionOnce(sessions)  # type: ignore[assignment]
    results = await asyncio.gather(*(message_record(sessions, msg(f"k{i}", f"c{i}", f"text {i}")) for i in range(3)))
    assert not any(r.duplicate for r in results) and len({r.message_id for r in results}) == 3
    assert len(grouped) == 3  # each on its own, after the group could not start
