"""Delivery that keeps Telegram's rules, under faults (issue 16, items 2 and 4), on SQLite and PostgreSQL.

The Bot API is the loopback fake (``tests/fakes/telegram.py``, the real wire format) and the client
is python-telegram-bot's real ``Bot``; the outbox dispatcher is the real one. The issue's 60 s /
30 s storms are scaled down to seconds (short ``retry_after`` values, short backoff), keeping
the semantics: more 429s per message than the dispatcher's ``max_attempts``.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from bot.connectors.telegram import SendPacer
from inbox.channels import HOLD_CHANNEL, HOLD_RECIPIENT, RetryLater, SenderRegistry
from inbox.events import EventBus
from inbox.messages import OutboundPayload
from inbox.models import AuditEvent, Channel, Contact, Conversation, Message, OutboxMessage, OutboxStatus
from inbox.outbox import OutboxDispatcher
from tests.db_helpers import rows
from tests.fakes.telegram import FakeTelegram, make_message_update
from tests.test_telegram import Env, _conversation, _reply, make_env, tg_settings

CHATS = [1001, 1002, 1003, 1004]


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeTelegram:
    tg = FakeTelegram()
    server = await aiohttp_server(tg.app)
    tg.base_url = str(server.make_url("")).rstrip("/")
    return tg


async def replies_waiting(env: Env, per_chat: int) -> dict[int, list[str]]:
    """One conversation per chat with ``per_chat`` replies in its outbox; the expected texts per chat."""
    expected: dict[int, list[str]] = {}
    for i, chat in enumerate(CHATS):
        conversation_id = await _conversation(env, chat=chat, update_id=100 + i)
        expected[chat] = [f"reply {j} to {chat}" for j in range(per_chat)]
        for text in expected[chat]:
            await _reply(env.sessions, conversation_id, OutboundPayload(text))
    return expected


async def all_done(env: Env, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        async with env.sessions() as s:
            left = (await s.exec(select(OutboxMessage).where(
                col(OutboxMessage.status) == OutboxStatus.pending))).all()
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(left)} outbox row(s) still pending")
        await asyncio.sleep(0.05)


def delivered(fake: FakeTelegram) -> dict[int, list[str]]:
    by_chat: dict[int, list[str]] = defaultdict(list)
    for message in fake.sent_messages():
        by_chat[message["chat"]["id"]].append(message["text"])
    return dict(by_chat)


# --------------------------------------------------------------------------- 429 storms


async def test_429_storm_longer_than_max_attempts_delivers_everything_in_order(
        aiohttp_client: Any, fake: FakeTelegram, settings: Any, sessions: Any) -> None:
    max_attempts = 2
    env = await make_env(aiohttp_client, fake, tg_settings(settings, fake), sessions,
                         max_attempts=max_attempts, poll_interval=0.2)
    expected = await replies_waiting(env, per_chat=3)
    # a bulk flood wait: every sendMessage is refused for 4 s with retry_after=1, i.e. three or four
    # 429s for each chat's first reply, more than max_attempts
    fake.fail_for("sendMessage", 429, 4.0, retry_after=1)
    env.dispatcher.start()
    try:
        await all_done(env)
    finally:
        await env.dispatcher.stop()

    assert delivered(fake) == expected  # everything, once, in order per chat
    calls = fake.calls_for("sendMessage")
    per_chat: dict[int, list[Any]] = defaultdict(list)
    for call in calls:
        per_chat[call.chat_id].append(call)
    for chat in CHATS:
        refused = [c for c in per_chat[chat] if c.status == 429]
        assert len(refused) > max_attempts, f"chat {chat} saw only {len(refused)} 429s"
        # none before its retry_after: after a 429 the chat's next request waits the full second
        for call, following in zip(per_chat[chat], per_chat[chat][1:], strict=False):
            if call.status == 429:
                assert following.at - call.at >= 1.0 - 0.01, (chat, following.at - call.at)
    for row in await rows(sessions, OutboxMessage):
        assert row.status == OutboxStatus.sent and row.attempts == 1  # the 429s used up no attempt


async def test_one_chats_429_holds_that_chat_only(aiohttp_client: Any, fake: FakeTelegram, settings: Any,
                                                 sessions: Any) -> None:
    env = await make_env(aiohttp_client, fake, tg_settings(settings, fake), sessions, poll_interval=0.2)
    expected = await replies_waiting(env, per_chat=2)
    slow_chat = CHATS[0]
    fake.fail_next("sendMessage", 429, retry_after=2, chat_id=slow_chat)
    started = time.monotonic()
    env.dispatcher.start()
    try:
        await all_done(env)
    finally:
        await env.dispatcher.stop()
    assert delivered(fake) == expected
    firsts = {chat: min(c.at for c in fake.calls_for("sendMessage") if c.chat_id == chat and c.ok) for chat in CHATS}
    [refusal] = [c for c in fake.calls_for("sendMessage") if c.status == 429]
    assert firsts[slow_chat] - refusal.at >= 2.0 - 0.01  # that chat waited its retry_after
    assert all(firsts[chat] - started < 2.0 for chat in CHATS[1:])  # the others did not wait for it


async def test_recipient_and_channel_holds_are_written_into_the_rows(sessions: Any) -> None:
    """The wait survives a restart: it is in the pending rows of that contact (or of the whole channel)."""
    from tests.test_outbox import FakeSender, conversation_with

    sender = FakeSender()
    registry = SenderRegistry()
    registry.register(sender)
    bus = EventBus()
    first = await conversation_with(sessions, "c1", "a1")
    await conversation_with(sessions, "c2", "b1")
    now = datetime.now(UTC)
    [a1_row] = [r for r in await rows(sessions, OutboxMessage) if r.payload["text"] == "a1"]
    async with sessions() as s:
        # the same customer's row in another stream (e.g. a later conversation), due a moment later,
        # and another customer's row due later still
        s.add(OutboxMessage(conversation_id=None, contact_id=a1_row.contact_id, channel=Channel.telegram,
                            payload={"text": "a2"}, next_attempt_at=now + timedelta(seconds=1)))
        await s.commit()
    sender.script["a1"] = [RetryLater(30, "429", rate_limited=True, hold=HOLD_RECIPIENT)]
    sender.script["b1"] = [RetryLater(0.01, "429", rate_limited=True)]
    await OutboxDispatcher(sessions, registry, bus).run_once()
    by_text = {r.payload["text"]: r for r in await rows(sessions, OutboxMessage)}
    assert by_text["a1"].attempts == 0 and by_text["a1"].conversation_id == first
    assert by_text["a2"].next_attempt_at >= now + timedelta(seconds=29)  # held with a1: same customer
    assert by_text["a2"].status == OutboxStatus.pending
    assert sender.texts.count("a2") == 0
    assert "b1" in sender.texts  # another customer is not held

    # a fresh dispatcher (a restart) respects the hold
    await asyncio.sleep(0.05)
    await OutboxDispatcher(sessions, registry, bus).run_once()
    assert sender.texts.count("a2") == 0 and sender.texts.count("a1") == 1
    assert sender.texts.count("b1") == 2  # b1 went out after its own short wait

    await conversation_with(sessions, "c3", "c1")
    d1 = await conversation_with(sessions, "c4")
    async with sessions() as s:
        d1_contact = (await s.get(Conversation, d1)).contact_id
        s.add(OutboxMessage(conversation_id=d1, contact_id=d1_contact, channel=Channel.telegram,
                            payload={"text": "d1"}, next_attempt_at=datetime.now(UTC) + timedelta(seconds=2)))
        await s.commit()
    sender.script["c1"] = [RetryLater(20, "429", rate_limited=True, hold=HOLD_CHANNEL)]
    await OutboxDispatcher(sessions, registry, bus).run_once()
    pending = [r for r in await rows(sessions, OutboxMessage) if r.status == OutboxStatus.pending]
    assert {r.payload["text"] for r in pending} == {"a1", "a2", "c1", "d1"}
    assert all(r.next_attempt_at >= now + timedelta(seconds=19) for r in pending)  # the whole bot waits


def test_pacer_bulk_flood_holds_every_chat() -> None:
    clock = [100.0]
    pacer = SendPacer(0, 0, clock=lambda: clock[0], flood_window=2.0)
    assert pacer.hold(1, 5) == HOLD_RECIPIENT
    assert pacer.held(1) == 5 and pacer.held(2) == 0
    clock[0] += 0.5
    assert pacer.hold(2, 7) == HOLD_CHANNEL  # a second chat within the window: a bulk flood wait
    assert pacer.held(3) == 7
    clock[0] += 7
    assert pacer.held(1) == 0 and pacer.held(3) == 0
    clock[0] += 10
    assert pacer.hold(4, 1) == HOLD_RECIPIENT  # long after: one chat again


def test_pacer_halves_the_overall_rate_after_a_bulk_flood_wait() -> None:
    clock = [0.0]
    pacer = SendPacer(0, 10, clock=lambda: clock[0], flood_cooldown=60)
    assert [pacer.reserve(c) for c in (1, 2)] == [0.0, pytest.approx(0.1)]
    clock[0] = 10.0
    pacer.hold(1, 5)
    pacer.hold(2, 5)  # a bulk flood wait until 15 s
    clock[0] = 15.0
    assert [pacer.reserve(c) for c in (3, 4, 5)] == [0.0, pytest.approx(0.2), pytest.approx(0.4)]  # 5/s
    clock[0] = 80.0
    assert [pacer.reserve(c) for c in (6, 7)] == [0.0, pytest.approx(0.1)]  # 10/s again


# --------------------------------------------------------------------------- 5xx


async def test_500s_for_a_while_then_everything_is_delivered(aiohttp_client: Any, fake: FakeTelegram, settings: Any,
                                                             sessions: Any) -> None:
    env = await make_env(aiohttp_client, fake, tg_settings(settings, fake), sessions, base_backoff=0.2,
                         poll_interval=0.2)
    expected = await replies_waiting(env, per_chat=2)
    fake.fail_for("sendMessage", 500, 1.5)
    env.dispatcher.start()
    try:
        await all_done(env)
    finally:
        await env.dispatcher.stop()
    assert delivered(fake) == expected
    assert any(c.status == 500 for c in fake.calls_for("sendMessage"))
    assert {r.status for r in await rows(sessions, OutboxMessage)} == {OutboxStatus.sent}


# --------------------------------------------------------------------------- a slow or hanging Bot API


async def test_hanging_bot_api_webhooks_still_acknowledged_and_no_duplicate(
        aiohttp_client: Any, fake: FakeTelegram, settings: Any, sessions: Any) -> None:
    read_timeout = 6.0  # far longer than a webhook takes on a loaded machine (10-100 ms)
    env = await make_env(aiohttp_client, fake, tg_settings(settings, fake, telegram_read_timeout=read_timeout),
                         sessions, poll_interval=0.2)
    # sendMessage takes effect, but its answer comes after the client's read timeout
    fake.answer_after("sendMessage", read_timeout + 2)
    env.dispatcher.start()

    async def outcomes() -> list[str]:
        return sorted(r.status.value for r in await rows(sessions, OutboxMessage))

    try:
        resp = await env.post(make_message_update(500, CHATS[0], "hello 0"))
        assert resp.status == 200
        deadline = time.monotonic() + 30
        while not fake.calls_for("sendMessage"):  # the first reply's send is hanging now
            assert time.monotonic() < deadline, "the first reply was never sent"
            await asyncio.sleep(0.02)
        # the other customers' webhooks are acknowledged while that send still hangs: the
        # webhook never waits on a send (measured with the hang, not a wall-clock bound)
        for i, chat in enumerate(CHATS[1:], start=1):
            resp = await env.post(make_message_update(500 + i, chat, f"hello {i}"))
            assert resp.status == 200 and (await resp.json())["result"] == "recorded"
        assert "unknown" not in await outcomes(), "a webhook waited for the hanging send's read timeout"
        await env.worker.join()
        await all_done(env)
        fake.answer_after("sendMessage", 0, times=0)  # the Bot API is quick again
        for i, chat in enumerate(CHATS):
            await env.post(make_message_update(600 + i, chat, f"again {i}"))
        await env.worker.join()
        await all_done(env)
    finally:
        await env.dispatcher.stop()

    for i, chat in enumerate(CHATS):  # once each: the timed-out send is never repeated
        assert delivered(fake)[chat] == [f"echo: hello {i}", f"echo: again {i}"]
    assert len(fake.calls_for("sendMessage")) == 2 * len(CHATS)
    rows_ = await rows(sessions, OutboxMessage)
    assert sorted(r.status.value for r in rows_) == ["sent"] * len(CHATS) + ["unknown"] * len(CHATS)
    for row in rows_:
        if row.status == OutboxStatus.unknown:
            assert row.attempts == 1 and "outcome unknown" in (row.last_error or "")
    async with sessions() as s:
        statuses = (await s.exec(select(Message.delivery_status).where(Message.direction == "out"))).all()
        audits = (await s.exec(select(AuditEvent).where(AuditEvent.action == "message.delivery_unknown"))).all()
    assert sorted(statuses) == ["sent"] * len(CHATS) + ["unknown"] * len(CHATS)
    assert len(audits) == len(CHATS)


async def test_unknown_delivery_is_shown_to_agents(aiohttp_client: Any, sessions: Any) -> None:
    from inbox.actions.message_send import message_send
    from inbox.models import Author
    from tests.test_outbox import FakeSender, conversation_with
    from tests.web_helpers import add_agent, build_web_app, login

    conversation_id = await conversation_with(sessions, "c1")
    sender = FakeSender()
    sender.script["are you there?"] = [TimeoutError()]
    registry = SenderRegistry()
    registry.register(sender)
    async with sessions() as s:
        message_send(s, await s.get(Conversation, conversation_id), OutboundPayload("are you there?"),
                     author=Author.bot)
        await s.commit()
    await OutboxDispatcher(sessions, registry, EventBus()).run_once()
    await add_agent(sessions, admin=True)
    client = await aiohttp_client(build_web_app(sessions).app)
    await login(client)
    page = await (await client.get(f"/inbox/c/{conversation_id}")).text()
    assert "delivery-unknown" in page and "Not confirmed" in page


# --------------------------------------------------------------------------- crashes


async def test_crash_mid_send_short_lease_then_redelivered_once(aiohttp_client: Any, fake: FakeTelegram,
                                                                settings: Any, sessions: Any) -> None:
    assert OutboxDispatcher(sessions, SenderRegistry(), EventBus()).lease_seconds <= 15  # the default
    lease = 1.5
    env = await make_env(aiohttp_client, fake, tg_settings(settings, fake), sessions, lease_seconds=lease,
                         poll_interval=0.1)
    conversation_id = await _conversation(env, chat=CHATS[0])
    await _reply(sessions, conversation_id, OutboundPayload("your refund is on its way"))
    fake.answer_after("sendMessage", 4.0, times=1)  # the first send hangs (Telegram got it)
    env.dispatcher.start()
    while not fake.calls_for("sendMessage"):
        await asyncio.sleep(0.02)

    # alive and still sending after more than a lease: the heartbeat keeps the row ours
    await asyncio.sleep(lease + 0.5)
    other = OutboxDispatcher(sessions, env.dispatcher.senders, env.dispatcher.bus, lease_seconds=lease)
    assert await other.run_once() == 0
    [row] = await rows(sessions, OutboxMessage)
    assert row.status == OutboxStatus.pending and row.claimed_until is not None

    # the process dies mid-send: nothing is written, the lease it left is short
    await env.dispatcher.stop(timeout=0)
    crashed_at = datetime.now(UTC)
    [row] = await rows(sessions, OutboxMessage)
    assert row.status == OutboxStatus.pending
    assert row.claimed_until is not None and row.claimed_until - crashed_at <= timedelta(seconds=lease)

    other.start()
    try:
        await all_done(env, timeout=20)
    finally:
        await other.stop()
    calls = fake.calls_for("sendMessage")
    assert len(calls) == 2  # redelivered once (the at-least-once window of a crash)
    assert calls[1].at >= calls[0].at + lease - 0.5  # not before the dead process's lease ran out
    [row] = await rows(sessions, OutboxMessage)
    assert row.status == OutboxStatus.sent
    [contact] = await rows(sessions, Contact)
    assert contact.undeliverable_at is None


async def test_heartbeat_is_needed_for_long_sends_only(sessions: Any) -> None:
    """A send that outlasts the lease is not taken over by another dispatcher (the heartbeat)."""
    from tests.test_outbox import FakeSender, conversation_with

    await conversation_with(sessions, "c1", "slow")
    sender = FakeSender()
    sender.script["slow"] = [lambda: asyncio.sleep(1.2)]
    registry = SenderRegistry()
    registry.register(sender)
    bus = EventBus()
    one = OutboxDispatcher(sessions, registry, bus, lease_seconds=0.6)
    two = OutboxDispatcher(sessions, registry, bus, lease_seconds=0.6)
    first = asyncio.create_task(one.run_once())
    await asyncio.sleep(0.9)
    assert await two.run_once() == 0
    assert await first == 1
    assert sender.texts == ["slow"]
    assert {r.status for r in await rows(sessions, OutboxMessage)} == {OutboxStatus.sent}


def test_fake_answers_late_but_takes_effect_at_once() -> None:
    fake = FakeTelegram()
    fake.answer_after("sendMessage", 2.0, times=1)
    assert "sendmessage" in fake._slow
    fake.answer_after("sendMessage", 0, times=0)
    assert "sendmessage" not in fake._slow



async def test_rows_waiting_for_a_send_slot_keep_their_lease(sessions: Any) -> None:
    """Claimed rows queued behind a slow send (one send slot) are not taken over when the lease is short."""
    from tests.test_outbox import FakeSender, conversation_with

    await conversation_with(sessions, "c1", "slow")
    await conversation_with(sessions, "c2", "queued")
    sender = FakeSender()
    sender.script["slow"] = [lambda: asyncio.sleep(1.2)]
    registry = SenderRegistry()
    registry.register(sender)
    bus = EventBus()
    one = OutboxDispatcher(sessions, registry, bus, lease_seconds=0.6, concurrency=1)
    two = OutboxDispatcher(sessions, registry, bus, lease_seconds=0.6)
    first = asyncio.create_task(one.run_once())
    await asyncio.sleep(0.9)  # "queued" has waited longer than a lease for the one slot
    assert await two.run_once() == 0
    assert await first == 2
    assert sorted(sender.texts) == ["queued", "slow"]
