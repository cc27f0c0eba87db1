"""inbox.outbox on SQLite and PostgreSQL: order, retries, failures, leases and crashes."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from inbox.actions.message_record import message_record
from inbox.actions.message_send import message_send
from inbox.channels import PermanentFailure, RetryLater, SenderRegistry
from inbox.events import Event, EventBus
from inbox.messages import InboundMessage, OutboundPayload
from inbox.models import AuditEvent, Author, Channel, Contact, Conversation, Message, OutboxMessage, OutboxStatus
from inbox.outbox import OutboxDispatcher, backoff_seconds


class SimulatedCrash(BaseException):
    """The process dies: not an Exception, so nothing on the way up may swallow it."""


class FakeSender:
    """Records every send; ``script[text]`` lists outcomes for successive sends of that text."""

    def __init__(self, channel: Channel = Channel.telegram) -> None:
        self.channel = channel
        self.calls: list[tuple[str, float, int]] = []
        self.script: dict[str, list[Any]] = {}

    async def send(self, contact: Contact, payload: OutboundPayload) -> str | None:
        self.calls.append((payload.text, time.monotonic(), contact.id))  # type: ignore[arg-type]
        outcomes = self.script.get(payload.text)
        if outcomes:
            outcome = outcomes.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            if callable(outcome):
                await outcome()
        return f"tg-{len(self.calls)}"

    @property
    def texts(self) -> list[str]:
        return [c[0] for c in self.calls]


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


@pytest.fixture
def senders(sender: FakeSender) -> SenderRegistry:
    registry = SenderRegistry()
    registry.register(sender)
    return registry


async def conversation_with(sessions: Any, contact: str, *texts: str, channel: Channel = Channel.telegram) -> int:
    r = await message_record(sessions, InboundMessage(channel, f"{contact}-in", contact, "hi"))
    async with sessions() as s:
        conv = await s.get(Conversation, r.conversation_id)
        for text in texts:
            message_send(s, conv, OutboundPayload(text), author=Author.bot)
        await s.commit()
    return r.conversation_id


async def outbox_rows(sessions: Any) -> list[OutboxMessage]:
    async with sessions() as s:
        return list((await s.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all())


async def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def all_sent(sessions: Any) -> bool:
    return all(r.status == OutboxStatus.sent for r in await outbox_rows(sessions))


async def test_sends_rows_and_records_delivery(sessions, senders, sender, bus):
    seen: list[Event] = []
    bus.subscribe(seen.append)
    conv_id = await conversation_with(sessions, "c1", "one", "two")
    dispatcher = OutboxDispatcher(sessions, senders, bus)
    assert await dispatcher.run_once() == 2
    assert await dispatcher.run_once() == 0
    assert sender.texts == ["one", "two"]
    rows = await outbox_rows(sessions)
    assert [(r.status, r.attempts, r.channel_message_id) for r in rows] == [
        (OutboxStatus.sent, 1, "tg-1"), (OutboxStatus.sent, 1, "tg-2")]
    assert all(r.sent_at is not None and r.claimed_until is None for r in rows)
    async with sessions() as s:
        messages = [await s.get(Message, r.message_id) for r in rows]
    assert [(m.delivery_status, m.channel_message_id) for m in messages] == [("sent", "tg-1"), ("sent", "tg-2")]
    await bus.wait_idle()
    deliveries = [e for e in seen if e.type == "message.delivery"]
    assert [(e.conversation_id, e.data["status"]) for e in deliveries] == [(conv_id, "sent"), (conv_id, "sent")]


async def test_retry_after_keeps_conversation_order(sessions, senders, sender, bus):
    await conversation_with(sessions, "c1", "first", "second", "third")
    sender.script["first"] = [RetryLater(0.2, "429 Too Many Requests")]
    dispatcher = OutboxDispatcher(sessions, senders, bus, poll_interval=0.05)
    dispatcher.start()
    try:
        await wait_for(lambda: all_sent(sessions))
    finally:
        await dispatcher.stop()
    assert sender.texts == ["first", "first", "second", "third"]
    assert sender.calls[1][1] - sender.calls[0][1] >= 0.2  # never before retry_after


async def test_retry_later_blocks_only_its_own_conversation(sessions, senders, sender, bus):
    await conversation_with(sessions, "c1", "a1", "a2")
    await conversation_with(sessions, "c2", "b1")
    sender.script["a1"] = [RetryLater(30, "flood wait")]
    dispatcher = OutboxDispatcher(sessions, senders, bus)
    started = datetime.now(UTC)
    await dispatcher.run_once()
    await dispatcher.run_once()
    assert sorted(sender.texts) == ["a1", "b1"]  # a2 waits behind a1
    a1 = (await outbox_rows(sessions))[0]
    assert a1.status == OutboxStatus.pending and a1.attempts == 1 and a1.last_error == "flood wait"
    assert a1.next_attempt_at >= started + timedelta(seconds=30)


async def test_transient_errors_back_off_then_become_undeliverable(sessions, senders, sender, bus, caplog):
    seen: list[Event] = []
    bus.subscribe(seen.append)
    conv_id = await conversation_with(sessions, "c1", "hello")
    sender.script["hello"] = [ConnectionError("https://api.telegram.org/bot123:SECRET/sendMessage failed")] * 3
    clock = Clock()
    dispatcher = OutboxDispatcher(sessions, senders, bus, max_attempts=3, base_backoff=10, clock=clock)
    caplog.set_level(logging.DEBUG)
    waits = []
    for _ in range(3):
        before = clock()
        assert await dispatcher.run_once() == 1
        assert await dispatcher.run_once() == 0  # backing off
        row = (await outbox_rows(sessions))[0]
        waits.append((row.next_attempt_at - before).total_seconds())
        clock.offset += timedelta(hours=1)
    row = (await outbox_rows(sessions))[0]
    assert row.status == OutboxStatus.undeliverable and row.attempts == 3
    assert 5 <= waits[0] <= 10.5 and 10 <= waits[1] <= 20.5  # exponential with jitter
    assert "SECRET" not in (row.last_error or "") and "ConnectionError" in (row.last_error or "")
    assert "SECRET" not in caplog.text
    async with sessions() as s:
        assert (await s.get(Message, row.message_id)).delivery_status == "undeliverable"
        audit = (await s.exec(select(AuditEvent).where(AuditEvent.action == "message.undeliverable"))).one()
    assert audit.conversation_id == conv_id and audit.detail["blocked"] is False
    await bus.wait_idle()
    assert [e.data["status"] for e in seen if e.type == "message.delivery"] == ["undeliverable"]


def test_backoff_grows_and_is_capped():
    assert all(1 <= backoff_seconds(1, base=2) <= 2 for _ in range(50))
    assert all(8 <= backoff_seconds(4, base=2) <= 16 for _ in range(50))
    assert all(backoff_seconds(40, base=2, cap=600) <= 600 for _ in range(50))


async def test_blocked_recipient_is_undeliverable_at_once(sessions, senders, sender, bus):
    seen: list[Event] = []
    bus.subscribe(seen.append)
    conv_id = await conversation_with(sessions, "c1", "hello", "anyone?")
    sender.script["hello"] = [PermanentFailure("Forbidden: bot was blocked by the user", blocked=True)]
    sender.script["anyone?"] = [PermanentFailure("Forbidden: bot was blocked by the user", blocked=True)]
    dispatcher = OutboxDispatcher(sessions, senders, bus)
    assert await dispatcher.run_once() == 2
    rows = await outbox_rows(sessions)
    assert [(r.status, r.attempts) for r in rows] == [(OutboxStatus.undeliverable, 1)] * 2
    async with sessions() as s:
        contact = await s.get(Contact, rows[0].contact_id)
    assert contact.undeliverable_at is not None
    await bus.wait_idle()
    delivery = [e for e in seen if e.type == "message.delivery"]
    assert delivery[0].conversation_id == conv_id and delivery[0].data["blocked"] is True
    assert delivery[0].data["status"] == "undeliverable"


async def test_channel_without_sender_stays_pending(sessions, senders, sender, bus):
    await conversation_with(sessions, "w1", "to the widget", channel=Channel.webchat)
    dispatcher = OutboxDispatcher(sessions, senders, bus)
    assert await dispatcher.run_once() == 0
    row = (await outbox_rows(sessions))[0]
    assert row.status == OutboxStatus.pending and row.attempts == 0 and row.claimed_until is None
    widget = FakeSender(Channel.webchat)
    senders.register(widget)
    assert await dispatcher.run_once() == 1
    assert widget.texts == ["to the widget"] and sender.texts == []


async def test_crash_between_send_and_commit_resends_only_the_in_flight_row(sessions, senders, sender, bus):
    await conversation_with(sessions, "c1", "m1", "m2", "m3")
    sender.script["m2"] = [SimulatedCrash()]
    crashed = OutboxDispatcher(sessions, senders, bus, lease_seconds=60)
    with pytest.raises(SimulatedCrash):
        await crashed.run_once()
    rows = await outbox_rows(sessions)
    assert [r.status for r in rows] == [OutboxStatus.sent, OutboxStatus.pending, OutboxStatus.pending]
    assert rows[1].claimed_until is not None  # still leased by the dead dispatcher

    # a restart within the lease sends nothing: m2 is leased and m3 must wait for it
    assert await OutboxDispatcher(sessions, senders, bus).run_once() == 0

    clock = Clock()
    clock.offset = timedelta(seconds=61)
    restarted = OutboxDispatcher(sessions, senders, bus, clock=clock)
    assert await restarted.run_once() == 2
    assert sender.texts == ["m1", "m2", "m2", "m3"]  # m2 twice: the at-least-once window; m1 once
    assert await all_sent(sessions)
    assert await restarted.run_once() == 0


async def test_a_result_that_cannot_be_written_stops_the_sends_not_yet_under_way(sessions, senders, sender, bus,
                                                                                   monkeypatch):
    """The database goes away after a send: the round's other claimed rows are not sent (their
    results could not be written either, so each would go out again), only the sends already
    under way are; every row is sent once its lease has run out."""
    from sqlalchemy.exc import OperationalError

    for n in range(6):
        await conversation_with(sessions, f"c{n}", f"m{n}")
    dispatcher = OutboxDispatcher(sessions, senders, bus, concurrency=2, lease_seconds=60)
    mark_sent = dispatcher._mark_sent
    failing = True

    async def database_away(row: Any, platform_id: Any) -> None:
        if failing:
            raise OperationalError("UPDATE outbox", {}, ConnectionResetError("server closed the connection"))
        await mark_sent(row, platform_id)

    monkeypatch.setattr(dispatcher, "_mark_sent", database_away)
    with pytest.raises(OperationalError):
        await dispatcher.run_once()
    assert len(sender.texts) <= 2  # the sends under way (concurrency 2), not the six claimed
    sent_before = len(sender.texts)

    failing = False
    clock = Clock()
    clock.offset = timedelta(seconds=61)
    dispatcher.clock = clock
    assert await dispatcher.run_once() == 6
    assert sorted(sender.texts[sent_before:]) == [f"m{n}" for n in range(6)]
    assert await all_sent(sessions)


async def test_killed_dispatcher_task_loses_nothing(sessions, senders, sender, bus):
    await conversation_with(sessions, "c1", "slow", "after")
    stuck = asyncio.Event()
    sender.script["slow"] = [stuck.wait]  # sends, then hangs until the task is killed
    first = OutboxDispatcher(sessions, senders, bus, lease_seconds=60)
    first.start()
    await wait_for(lambda: asyncio.sleep(0, result=bool(sender.calls)))
    await first.stop(timeout=0.05)  # does not finish in time: the task is cancelled mid-send
    rows = await outbox_rows(sessions)
    assert [r.status for r in rows] == [OutboxStatus.pending, OutboxStatus.pending]

    clock = Clock()
    clock.offset = timedelta(seconds=61)
    assert await OutboxDispatcher(sessions, senders, bus, clock=clock).run_once() == 2
    assert sender.texts == ["slow", "slow", "after"]
    assert await all_sent(sessions)


async def test_two_dispatchers_never_send_a_row_twice(sessions, senders, sender, bus):
    for i in range(6):
        await conversation_with(sessions, f"c{i}", f"c{i}-1", f"c{i}-2", f"c{i}-3")
    one = OutboxDispatcher(sessions, senders, bus)
    two = OutboxDispatcher(sessions, senders, bus)
    await asyncio.gather(one.run_once(), two.run_once(), one.run_once())
    await one.run_once()
    assert sorted(sender.texts) == sorted(f"c{i}-{j}" for i in range(6) for j in (1, 2, 3))
    for i in range(6):
        assert [t for t in sender.texts if t.startswith(f"c{i}-")] == [f"c{i}-1", f"c{i}-2", f"c{i}-3"]


async def test_commit_wakes_the_dispatcher_and_stop_waits_for_in_flight(sessions, senders, sender, bus):
    conv_id = await conversation_with(sessions, "c1")
    dispatcher = OutboxDispatcher(sessions, senders, bus, poll_interval=60)
    dispatcher.start()
    try:
        await asyncio.sleep(0.05)
        finished = asyncio.Event()

        async def slow() -> None:
            await asyncio.sleep(0.2)
            finished.set()

        sender.script["wake up"] = [slow]
        async with sessions() as s:
            conv = await s.get(Conversation, conv_id)
            message_send(s, conv, OutboundPayload("wake up"), author=Author.bot)
            await s.commit()
        await wait_for(lambda: asyncio.sleep(0, result=bool(sender.calls)))
    finally:
        await dispatcher.stop(timeout=5)
    assert finished.is_set()
    assert await all_sent(sessions)


# -- the "sent" marks of sends that finish together: one SELECT of the rows still pending, then two
# executemany statements (outbox, message) for the whole flush; a row decided elsewhere is left alone.
# PostgreSQL: all of it ONE statement (inbox.outbox_pg), committed as it runs

def count_batched_updates(engine: Any) -> list[str]:
    """The tables written by executemany UPDATEs, once per statement; on PostgreSQL the one
    statement that marks both counts as ["outbox", "message"], so both databases give the same
    list for one flush."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, executemany: bool) -> None:
        text = statement.lstrip().upper()
        if text.startswith("WITH LOCKED AS MATERIALIZED"):
            seen.extend(["outbox", "message"])
        elif executemany and text.startswith("UPDATE"):
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


# -- the claim: on PostgreSQL ONE statement (inbox.outbox_pg.claim_statement) unless a hold is in force

async def test_a_claim_takes_due_heads_with_their_recipients_never_a_row_in_flight_and_minds_holds(
        sessions: Any, engine: Any, senders: Any, sender: FakeSender, bus: EventBus) -> None:
    from inbox.models import DeliveryHold

    for name in ("a", "b", "c"):
        await conversation_with(sessions, name, f"reply to {name}", f"then to {name}")
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    dispatcher = OutboxDispatcher(sessions, senders, bus)
    rows = {r.payload["text"]: r for r in await outbox_rows(sessions)}
    dispatcher._in_flight[rows["reply to b"].id] = 1  # as if still being sent by this dispatcher
    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        claimed = await dispatcher._claim()
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
    # the heads only (one per conversation), not the one in flight, each with its recipient
    assert sorted(r.payload["text"] for r in claimed) == ["reply to a", "reply to c"]
    async with sessions() as s:
        contacts = {c.id: c for c in (await s.exec(select(Contact))).all()}
    for row in claimed:
        assert row.contact is not None and row.contact.external_id == contacts[row.contact_id].external_id
    if engine.dialect.name == "postgresql":
        assert len(statements) == 1 and statements[0].startswith("WITH cand AS MATERIALIZED"), statements
    async with sessions() as s:
        leased = {r.payload["text"]: r.claimed_until for r in (await s.exec(select(OutboxMessage))).all()}
    assert leased["reply to a"] is not None and leased["reply to c"] is not None
    assert leased["reply to b"] is None and leased["then to a"] is None
    # a claim finds nothing more (the heads are leased); with a hold in force the usual path runs
    assert await dispatcher._claim() == []
    async with sessions() as s:
        s.add(DeliveryHold(channel=Channel.telegram.value, contact_id=rows["reply to b"].contact_id,
                           not_before=datetime.now(UTC) + timedelta(seconds=60)))
        await s.commit()
    dispatcher._in_flight.clear()
    assert await dispatcher._claim() == []  # b's row is held back (its next attempt moves to the hold's end)
    async with sessions() as s:
        b_row = await s.get(OutboxMessage, rows["reply to b"].id)
    assert b_row.claimed_until is None and b_row.next_attempt_at > datetime.now(UTC) + timedelta(seconds=30)
