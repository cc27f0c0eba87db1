"""The "sent" marks of sends that finish together: on SQLite two executemany statements for the
whole flush; when a row is no longer pending by then (given up, or sent by another dispatcher),
nothing of the batch statement is kept and each row is decided on its own, as before."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from inbox.channels import SenderRegistry
from inbox.events import EventBus
from inbox.models import Message, OutboxMessage, OutboxStatus
from inbox.outbox import OutboxDispatcher
from tests.test_outbox import FakeSender, conversation_with, outbox_rows


@pytest.fixture
def bus(sessions: Any) -> EventBus:
    b = EventBus()
    b.bind(sessions)
    return b


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


@pytest.fixture
def senders(sender: FakeSender) -> SenderRegistry:
    registry = SenderRegistry()
    registry.register(sender)
    return registry


def count_batched_updates(engine: Any) -> list[str]:
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, executemany: bool) -> None:
        if executemany and statement.lstrip().upper().startswith("UPDATE"):
            seen.append(statement.split()[1])

    sa.event.listen(engine.sync_engine, "before_cursor_execute", before)
    return seen


async def test_sends_finishing_together_are_marked_in_one_statement(sessions: Any, engine: Any, senders: Any,
                                                                    sender: FakeSender, bus: EventBus) -> None:
    for name in ("a", "b", "c"):
        await conversation_with(sessions, name, f"reply to {name}")
    batched = count_batched_updates(engine)
    assert await OutboxDispatcher(sessions, senders, bus).run_once() == 3
    rows = await outbox_rows(sessions)
    assert [r.status for r in rows] == [OutboxStatus.sent] * 3
    assert sorted(r.channel_message_id for r in rows) == ["tg-1", "tg-2", "tg-3"]
    async with sessions() as s:
        marks = (await s.exec(select(Message.delivery_status, Message.channel_message_id)
                              .where(col(Message.id).in_([r.message_id for r in rows])))).all()
    assert sorted(marks) == [("sent", "tg-1"), ("sent", "tg-2"), ("sent", "tg-3")]
    assert batched == ["outbox", "message"]  # one flush, one statement per table


async def test_a_row_no_longer_pending_is_left_alone_and_the_others_are_marked(
        sessions: Any, engine: Any, senders: Any, sender: FakeSender, bus: EventBus) -> None:
    for name in ("a", "b", "c"):
        await conversation_with(sessions, name, f"reply to {name}")
    dispatcher = OutboxDispatcher(sessions, senders, bus)
    claimed = await dispatcher._claim()
    assert len(claimed) == 3
    b_row = next(r for r in claimed if r.payload["text"] == "reply to b")
    async with sessions() as s:  # as if another dispatcher had decided this row meanwhile
        await s.exec(sa.update(OutboxMessage).where(col(OutboxMessage.id) == b_row.id)
                     .values(status=OutboxStatus.unknown, last_error="decided elsewhere"))
        await s.commit()
    batched = count_batched_updates(engine)
    await dispatcher._write_sent([(row, f"tg-{row.id}") for row in claimed])
    # the rows still pending are found first; the two others are marked in one statement per table
    assert batched == ["outbox", "message"]
    rows = {r.payload["text"]: r for r in await outbox_rows(sessions)}
    assert rows["reply to b"].status == OutboxStatus.unknown and rows["reply to b"].last_error == "decided elsewhere"
    assert rows["reply to a"].status == rows["reply to c"].status == OutboxStatus.sent
    async with sessions() as s:
        b_message = await s.get(Message, rows["reply to b"].message_id)
        a_message = await s.get(Message, rows["reply to a"].message_id)
    assert b_message.delivery_status != "sent" and a_message.delivery_status == "sent"
    assert a_message.channel_message_id == f"tg-{rows['reply to a'].id}"
