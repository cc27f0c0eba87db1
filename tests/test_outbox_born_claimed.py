"""Replies born claimed (``inbox.outbox_handoff``): a bot turn inserts its replies already leased
by this process's dispatcher when they may go out at once, and hands them over after the commit.
On SQLite and PostgreSQL: sent once, without a claim; order kept behind older rows and holds; a
crash after the commit loses nothing."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from inbox.actions.message_answer import message_answer
from inbox.actions.message_answer_group import AnswerGroup
from inbox.actions.message_record import message_record
from inbox.actions.message_send import message_send
from inbox.channels import RetryLater, SenderRegistry
from inbox.events import EventBus
from inbox.messages import InboundMessage, OutboundPayload
from inbox.models import Author, Channel, Contact, Conversation, DeliveryHold, Message, OutboxMessage, OutboxStatus
from inbox.outbox import OutboxDispatcher
from inbox.outbox_handoff import BORN_CLAIMED, BornClaimed, BornRow

CLAIM_UPDATE = "UPDATE outbox SET claimed_until"


class Sender:
    """Records every send (text, contact id); ``script[text]`` lists outcomes of its sends."""

    channel = Channel.telegram

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.script: dict[str, list[Any]] = {}

    async def send(self, contact: Any, payload: OutboundPayload) -> str | None:
        self.calls.append((payload.text, contact.id))
        outcomes = self.script.get(payload.text)
        if outcomes:
            outcome = outcomes.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            if isinstance(outcome, asyncio.Event):  # the send hangs until it is set
                await outcome.wait()
        return f"tg-{len(self.calls)}"

    @property
    def texts(self) -> list[str]:
        return [text for text, _ in self.calls]


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class DeadProcess:
    """A dispatcher that accepts replies born claimed and dies before it sends them."""

    lease_seconds = 15.0

    def __init__(self) -> None:
        self.clock = Clock()
        self.handed: list[BornRow] = []

    def accepting(self, channel: Channel) -> bool:
        return True

    wake_count = 0

    def hand_off(self, rows: list[tuple[BornRow, Any]], followers: set[int], since: int | None = None) -> None:
        self.handed += [row for row, _ in rows]


@pytest.fixture
def sender() -> Sender:
    return Sender()


@pytest.fixture
async def dispatcher(sessions: Any, sender: Sender, bus: EventBus) -> Any:
    registry = SenderRegistry()
    registry.register(sender)  # type: ignore[arg-type]
    d = OutboxDispatcher(sessions, registry, bus, poll_interval=60.0)
    handed: list[int] = []
    real = d.hand_off

    def spy(rows: list[tuple[BornRow, Any]], followers: set[int], since: int | None = None) -> None:
        handed.extend(row.id for row, _ in rows)
        real(rows, followers, since)

    d.hand_off = spy  # type: ignore[method-assign]
    d.handed = handed  # type: ignore[attr-defined]
    d.start()
    await wait_for(lambda: d._claims >= 1)  # its first round's claim (nothing due)
    yield d
    await d.stop()


@pytest.fixture
def pipeline(sessions: Any, settings: Any, bus: EventBus, dispatcher: Any) -> Any:
    from bot.pipeline import Pipeline

    p = Pipeline(sessions=sessions, bus=bus, settings=settings)
    p.handoff = dispatcher
    p.on_commit = dispatcher.wake
    return p


async def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if asyncio.iscoroutine(found):
            found = await found
        if found:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def record(sessions: Any, contact: str, text: str) -> int:
    return (await message_record(sessions, InboundMessage(Channel.telegram, f"{contact}-{text}", contact,
                                                          text))).message_id


async def outbox_rows(sessions: Any) -> list[OutboxMessage]:
    async with sessions() as s:
        return list((await s.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all())


async def settled(sessions: Any) -> bool:
    rows = await outbox_rows(sessions)
    return bool(rows) and all(r.status != OutboxStatus.pending for r in rows)


def statements_of(engine: Any) -> tuple[list[str], Any]:
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", before)
    return seen, lambda: sa.event.remove(engine.sync_engine, "before_cursor_execute", before)


async def test_a_reply_born_claimed_is_sent_once_without_a_claim(sessions, engine, pipeline, dispatcher, sender):
    ids = [await record(sessions, f"c{i}", "hi") for i in range(3)]
    claims = dispatcher._claims
    seen, stop = statements_of(engine)
    try:
        await pipeline.process(ids[0])  # a turn alone (message_answer)
        assert await pipeline.process_many(ids[1:]) == dict.fromkeys(ids[1:])  # a micro-batch (AnswerGroup)
        await wait_for(lambda: settled(sessions))
        await asyncio.sleep(0.2)  # the events of the commits come and go: they wake no claim
    finally:
        stop()
    rows = await outbox_rows(sessions)
    assert rows and [r.id for r in rows] == sorted(dispatcher.handed)  # every reply was handed over
    assert all((r.status, r.attempts, r.claimed_until) == (OutboxStatus.sent, 1, None) for r in rows)
    assert sorted(sender.texts) == sorted(r.payload["text"] for r in rows)  # each sent once
    assert dispatcher._claims == claims
    assert not [s for s in seen if s.startswith(CLAIM_UPDATE)], "a claim or release ran"
    assert not [s for s in seen if "FROM outbox" in s and "ORDER BY outbox.next_attempt_at" in s], "candidates read"
    async with sessions() as s:
        statuses = (await s.exec(select(Message.delivery_status).where(col(Message.id).in_(
            [r.message_id for r in rows])))).all()
    assert set(statuses) == {"sent"}


async def test_a_reply_waits_behind_an_older_pending_row_of_its_conversation(sessions, pipeline, dispatcher,
                                                                              sender):
    first = await record(sessions, "older", "hi")
    other = await record(sessions, "fresh", "hi")
    # an earlier row of the conversation is still pending (its first send is answered "retry in 1 s")
    sender.script["an agent's earlier reply"] = [RetryLater(1.0)]
    async with sessions() as s:
        conversation = await s.get(Conversation, (await s.get(Message, first)).conversation_id)
        message_send(s, conversation, OutboundPayload("an agent's earlier reply"), author=Author.agent)
        await s.commit()

    async def retried() -> bool:
        return [(r.status, r.attempts) for r in await outbox_rows(sessions)] == [(OutboxStatus.pending, 1)]

    await wait_for(retried)
    earlier = (await outbox_rows(sessions))[0].id
    assert await pipeline.process_many([first, other]) == {first: None, other: None}
    rows = await outbox_rows(sessions)
    behind = [r for r in rows if r.conversation_id == conversation.id and r.id != earlier]
    assert behind and all(r.claimed_until is None for r in behind)  # not born claimed
    assert not {r.id for r in behind} & set(dispatcher.handed)
    assert {r.id for r in rows if r.conversation_id != conversation.id} <= set(dispatcher.handed)
    await wait_for(lambda: settled(sessions))
    mine = [text for text, contact in sender.calls if contact == conversation.contact_id]
    assert mine == ["an agent's earlier reply"] * 2 + [r.payload["text"] for r in behind]


async def test_a_hold_in_force_is_waited_out(sessions, pipeline, dispatcher, sender):
    message_id = await record(sessions, "held", "hi")
    async with sessions() as s:
        conversation = await s.get(Conversation, (await s.get(Message, message_id)).conversation_id)
        contact_id = conversation.contact_id
        until = datetime.now(UTC) + timedelta(seconds=1)
        s.add(DeliveryHold(channel=Channel.telegram.value, contact_id=contact_id, not_before=until))
        await s.commit()
    await pipeline.process(message_id)
    rows = await outbox_rows(sessions)
    assert rows and all(r.claimed_until is None for r in rows) and not dispatcher.handed
    await wait_for(lambda: settled(sessions))
    assert all(r.sent_at is not None and r.sent_at >= until for r in await outbox_rows(sessions))


async def test_a_crash_after_the_commit_is_delivered_by_another_dispatcher_after_the_lease(
        sessions, settings, bus, sender):
    from bot.pipeline import Pipeline

    dead = DeadProcess()
    pipeline = Pipeline(sessions=sessions, bus=bus, settings=settings)
    pipeline.handoff = dead
    await pipeline.process(await record(sessions, "crash", "hi"))
    rows = await outbox_rows(sessions)
    assert rows and [r.id for r in rows] == [r.id for r in dead.handed]
    assert all(r.status == OutboxStatus.pending and r.claimed_until is not None for r in rows)  # leased by the dead
    registry = SenderRegistry()
    registry.register(sender)  # type: ignore[arg-type]
    clock = Clock()
    other = OutboxDispatcher(sessions, registry, bus, clock=clock)
    assert await other.run_once() == 0 and sender.calls == []  # its lease still holds
    clock.offset = timedelta(seconds=dead.lease_seconds + 1)
    while await other.run_once():
        pass
    assert sorted(sender.texts) == sorted(r.payload["text"] for r in rows)  # each once
    assert all(r.status == OutboxStatus.sent for r in await outbox_rows(sessions))


async def answer(sessions: Any, born: BornClaimed, contact: str, replies: list[str], *, group: bool) -> int:
    message_id = await record(sessions, contact, "hi")
    async with sessions() as s:
        s.info[BORN_CLAIMED] = born
        message = await s.get(Message, message_id)
        conversation = await s.get(Conversation, message.conversation_id)
        born.know(await s.get(Contact, conversation.contact_id))
        payloads = [OutboundPayload(text) for text in replies]
        if group:
            answers = AnswerGroup()
            answers.add(conversation, message, replies=payloads, bot_state={}, language="en", intent="greeting")
            await answers.write(s)
        else:
            await message_answer(s, conversation, message, replies=payloads, bot_state={}, language="en",
                                 intent="greeting")
        await s.commit()
    return conversation.contact_id


@pytest.mark.parametrize("group", [False, True], ids=["alone", "group"])
async def test_the_replies_of_a_turn_go_out_in_order(sessions, dispatcher, sender, group):
    born = BornClaimed(dispatcher)
    contact = await answer(sessions, born, "many", ["one", "two", "three"], group=group)
    assert [r.claimed_until is not None for r in await outbox_rows(sessions)] == [True] * 3
    born.deliver()
    await wait_for(lambda: settled(sessions))
    assert sender.calls == [("one", contact), ("two", contact), ("three", contact)]


@pytest.mark.parametrize("group", [False, True], ids=["alone", "group"])
async def test_a_retry_of_the_first_reply_holds_the_others_back(sessions, dispatcher, sender, group):
    sender.script["one"] = [RetryLater(0.3)]
    born = BornClaimed(dispatcher)
    await answer(sessions, born, "retry", ["one", "two", "three"], group=group)
    born.deliver()
    await wait_for(lambda: settled(sessions))
    assert sender.texts == ["one", "one", "two", "three"]
    assert [r.attempts for r in await outbox_rows(sessions)] == [2, 1, 1]


async def test_a_dispatcher_that_does_not_run_takes_nothing(sessions, bus, sender):
    registry = SenderRegistry()
    registry.register(sender)  # type: ignore[arg-type]
    idle = OutboxDispatcher(sessions, registry, bus)
    assert not idle.accepting(Channel.telegram)  # not started
    born = BornClaimed(idle)
    await answer(sessions, born, "idle", ["one"], group=False)
    assert born.rows == [] and born.unclaimed == 1
    assert [r.claimed_until for r in await outbox_rows(sessions)] == [None]


async def test_a_reply_committed_while_one_born_claimed_is_sent_follows_it(sessions, dispatcher, sender):
    """The dispatcher's poll is a minute away: the later row is claimed because the first one's send
    ended after a wake, not because a poll came."""
    release, unblock = asyncio.Event(), asyncio.Event()
    sender.script["first"] = [release]
    sender.script["elsewhere"] = [unblock]  # keeps the round busy (no round's end looks again)
    born = BornClaimed(dispatcher)
    await answer(sessions, born, "busy", ["elsewhere"], group=False)
    contact = await answer(sessions, born, "follow", ["first"], group=False)
    born.deliver()
    await wait_for(lambda: sorted(sender.texts) == ["elsewhere", "first"])  # being sent
    async with sessions() as s:
        conversation = (await s.exec(select(Conversation).where(col(Conversation.contact_id) == contact))).one()
        message_send(s, conversation, OutboundPayload("later"), author=Author.agent)
        await s.commit()
    await asyncio.sleep(0.2)  # its wake claims nothing: the first is still pending
    assert "later" not in sender.texts
    release.set()
    await wait_for(lambda: "later" in sender.texts)
    assert sender.texts.index("first") < sender.texts.index("later")
    unblock.set()
    await wait_for(lambda: settled(sessions))


async def test_a_reply_woken_before_the_hand_off_still_follows_at_once(sessions, dispatcher, sender):
    """The window between a turn's commit and its hand-off (its session closes in between): a
    later row of the same conversation committed and woken there is claimed as soon as the first
    one is sent, not at the next poll (a minute away here). Its wake counts for the first one's
    chain although it came before the hand-off."""
    release, unblock = asyncio.Event(), asyncio.Event()
    sender.script["first"] = [release]
    sender.script["elsewhere"] = [unblock]  # keeps the round busy (no round's end looks again)
    busy = BornClaimed(dispatcher)
    await answer(sessions, busy, "busy", ["elsewhere"], group=False)
    busy.deliver()
    await wait_for(lambda: "elsewhere" in sender.texts)
    born = BornClaimed(dispatcher)
    contact = await answer(sessions, born, "window", ["first"], group=False)  # committed, not handed yet
    async with sessions() as s:
        conversation = (await s.exec(select(Conversation).where(col(Conversation.contact_id) == contact))).one()
        message_send(s, conversation, OutboundPayload("later"), author=Author.agent)
        await s.commit()
    dispatcher.wake()  # what the later row's commit does (the event bus may deliver it later still)
    await asyncio.sleep(0.2)  # that wake's claim finds nothing: the first row is pending
    born.deliver()
    await wait_for(lambda: "first" in sender.texts)
    assert "later" not in sender.texts
    release.set()
    await wait_for(lambda: "later" in sender.texts, timeout=10)
    assert sender.texts.index("first") < sender.texts.index("later")
    unblock.set()
    await wait_for(lambda: settled(sessions))


async def test_a_wake_waiting_for_its_claim_stops_replies_born_claimed(sessions, dispatcher, sender):
    """Rows committed unclaimed (a wake) go first: until a claim has looked for them no reply is
    born claimed, else the replies handed over would take every send slot the claim needs (under
    a steady flow the unclaimed rows waited for seconds)."""
    assert dispatcher.accepting(Channel.telegram)
    claims = dispatcher._claims
    dispatcher.wake()
    assert not dispatcher.accepting(Channel.telegram)
    born = BornClaimed(dispatcher)
    assert born.lease(Channel.telegram) is None
    await wait_for(lambda: dispatcher._claims > claims)
    assert dispatcher.accepting(Channel.telegram)
    assert born.lease(Channel.telegram) is not None
