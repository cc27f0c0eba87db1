"""A platform's flood wait outlives the process that heard it (issue 16, item 2).

A 429's ``retry_after`` is stored (``delivery_hold``: ``not_before`` per recipient and per
channel), so a reply created after a restart, or by another process, is not sent before the
wait Telegram asked for, on SQLite and PostgreSQL. The senders here are fresh after the
"restart": nothing in memory remembers the 429.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from inbox.actions.message_send import message_send
from inbox.channels import HOLD_CHANNEL, HOLD_RECIPIENT, RetryLater, SenderRegistry
from inbox.events import EventBus
from inbox.messages import OutboundPayload
from inbox.models import (
    HOLD_ALL_CONTACTS,
    Author,
    Channel,
    Conversation,
    DeliveryHold,
    OutboxMessage,
    OutboxStatus,
)
from inbox.outbox import OutboxDispatcher
from tests.db_helpers import rows
from tests.test_outbox import Clock, FakeSender, conversation_with


def fresh_dispatcher(sessions: Any, clock: Clock | None = None) -> tuple[OutboxDispatcher, FakeSender]:
    """A dispatcher as a restarted process builds it: a new sender that remembers no 429."""
    sender = FakeSender()
    registry = SenderRegistry()
    registry.register(sender)
    return OutboxDispatcher(sessions, registry, EventBus(), clock=clock or Clock()), sender


async def reply(sessions: Any, conversation_id: int, text: str) -> None:
    async with sessions() as s:
        message_send(s, await s.get(Conversation, conversation_id), OutboundPayload(text), author=Author.bot)
        await s.commit()


async def by_text(sessions: Any) -> dict[str, OutboxMessage]:
    return {r.payload["text"]: r for r in await rows(sessions, OutboxMessage)}


async def test_a_chats_wait_holds_its_replies_created_after_a_restart(sessions: Any) -> None:
    dispatcher, sender = fresh_dispatcher(sessions)
    held_conversation = await conversation_with(sessions, "chat-1", "first")
    sender.script["first"] = [RetryLater(30, "429", rate_limited=True, hold=HOLD_RECIPIENT)]
    asked_at = datetime.now(UTC)
    await dispatcher.run_once()
    [first] = await rows(sessions, OutboxMessage)
    assert first.status == OutboxStatus.pending and first.attempts == 0

    # the process restarts; the first reply is sent by hand meanwhile (an agent resends it, say),
    # and new replies are written: to the held chat and to another chat
    async with sessions() as s:
        held_contact = (await s.get(Conversation, held_conversation)).contact_id
        s.add(OutboxMessage(conversation_id=None, contact_id=held_contact, channel=Channel.telegram,
                            payload={"text": "later, same chat"}))
        await s.commit()
    other = await conversation_with(sessions, "chat-2")
    await reply(sessions, other, "to another chat")
    restarted, sender = fresh_dispatcher(sessions)
    await restarted.run_once()
    assert sender.texts == ["to another chat"]  # the held chat hears nothing before its retry_after
    later = (await by_text(sessions))["later, same chat"]
    assert later.status == OutboxStatus.pending and later.attempts == 0
    assert later.next_attempt_at >= asked_at + timedelta(seconds=29)

    # once the wait is over (the clock moved on), everything goes out, in order per chat
    clock = Clock()
    clock.offset = timedelta(seconds=31)
    after, sender = fresh_dispatcher(sessions, clock)
    await after.run_once()
    assert sender.texts == ["first", "later, same chat"]
    assert {r.status for r in await rows(sessions, OutboxMessage)} == {OutboxStatus.sent}


async def test_a_bulk_flood_wait_holds_every_chat_after_a_restart(sessions: Any) -> None:
    dispatcher, sender = fresh_dispatcher(sessions)
    await conversation_with(sessions, "chat-1", "flooded")
    sender.script["flooded"] = [RetryLater(20, "429", rate_limited=True, hold=HOLD_CHANNEL)]
    asked_at = datetime.now(UTC)
    await dispatcher.run_once()
    async with sessions() as s:
        [hold] = (await s.exec(select(DeliveryHold))).all()
    assert (hold.channel, hold.contact_id) == ("telegram", HOLD_ALL_CONTACTS)
    assert hold.not_before >= asked_at + timedelta(seconds=19)

    # after the restart, a reply to a chat that never saw a 429 waits for the whole bot's wait
    fresh_chat = await conversation_with(sessions, "chat-3")
    await reply(sessions, fresh_chat, "new reply")
    slack_chat = await conversation_with(sessions, "slack-user", channel=Channel.slack)
    restarted, sender = fresh_dispatcher(sessions)
    slack_sender = FakeSender(Channel.slack)
    restarted.senders.register(slack_sender)
    await restarted.run_once()
    assert sender.texts == []
    assert slack_sender.texts == []  # (no reply written there yet: nothing to send)
    await reply(sessions, slack_chat, "on slack")
    await restarted.run_once()
    assert slack_sender.texts == ["on slack"]  # another channel is not held
    new = (await by_text(sessions))["new reply"]
    assert new.status == OutboxStatus.pending and new.next_attempt_at >= asked_at + timedelta(seconds=19)

    # a shorter wait heard later never shortens the stored one
    from inbox.outbox import _Claimed, _store_hold

    async with sessions() as s:
        row = await s.get(OutboxMessage, new.id)
        claimed = _Claimed(row.id, row.message_id, row.conversation_id, row.contact_id, Channel.telegram,
                           row.payload, row.attempts)
        await _store_hold(s, claimed, HOLD_CHANNEL, datetime.now(UTC) + timedelta(seconds=2))
        await s.commit()
        [kept] = (await s.exec(select(DeliveryHold))).all()
    assert kept.not_before == hold.not_before

    clock = Clock()
    clock.offset = timedelta(seconds=21)
    after, sender = fresh_dispatcher(sessions, clock)
    await after.run_once()
    assert sorted(sender.texts) == ["flooded", "new reply"]
