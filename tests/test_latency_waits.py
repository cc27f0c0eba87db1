"""The hot path's hand-offs without waits (issue 11, latency), on SQLite and PostgreSQL: a message
just recorded goes straight to its conversation's queue without overtaking earlier ones, a reply
committed while the outbox waits for a slow send is sent without waiting for it, a committed batch
wakes the outbox at once."""

from __future__ import annotations

import asyncio
from typing import Any

from inbox.actions.message_send import message_send
from inbox.channels import SenderRegistry
from inbox.events import EventBus
from inbox.messages import OutboundPayload
from inbox.models import Author, Conversation
from inbox.outbox import OutboxDispatcher
from inbox.worker import InboundWorker
from tests.test_outbox import FakeSender, all_sent, conversation_with, wait_for
from tests.test_worker import Recorder, record


async def test_a_recorded_message_never_overtakes_earlier_ones_still_being_looked_up(sessions: Any) -> None:
    first = await record(sessions, "a", "a1")
    second = await record(sessions, "a", "a2")
    third = await record(sessions, "a", "a3")
    processor = Recorder(sessions, delay=0.01)
    worker = InboundWorker(sessions, processor, sweep_interval=None)
    worker.submit(first.message_id)  # a sweep's: its conversation is looked up
    worker.submit(second.message_id)
    worker.submit(third.message_id, third.conversation_id)  # just recorded: its conversation is known
    await worker.join()
    assert processor.order == [first.message_id, second.message_id, third.message_id]
    other = await record(sessions, "b", "b1")
    worker.submit(other.message_id, other.conversation_id)  # nothing being looked up: straight in
    await worker.join()
    assert processor.order[-1] == other.message_id
    await worker.stop()


async def test_batched_messages_of_known_conversations_are_processed_in_order(sessions: Any) -> None:
    ids = [await record(sessions, c, f"{c}{i}") for i in range(3) for c in ("a", "b")]
    batches: list[list[int]] = []
    processor = Recorder(sessions, delay=0.0)

    async def batch(message_ids: list[int]) -> dict[int, Exception | None]:
        batches.append(list(message_ids))
        for message_id in message_ids:
            await processor(message_id)
        return dict.fromkeys(message_ids)

    worker = InboundWorker(sessions, processor, sweep_interval=None, batch=batch)
    for r in ids:
        worker.submit(r.message_id, r.conversation_id)
    await worker.join()
    assert sorted(processor.finished) == sorted(r.message_id for r in ids)
    for conversation in {r.conversation_id for r in ids}:
        own = [r.message_id for r in ids if r.conversation_id == conversation]
        assert [m for m in processor.order if m in own] == own  # oldest first
    assert all(len(b) <= 2 for b in batches) and max(len(b) for b in batches) == 2  # one per conversation
    await worker.stop()


async def test_a_reply_committed_during_a_slow_send_goes_out_without_waiting_for_it(sessions: Any) -> None:
    bus = EventBus()
    bus.bind(sessions)
    sender = FakeSender()
    senders = SenderRegistry()
    senders.register(sender)
    slow_conversation = await conversation_with(sessions, "slow")
    fast_conversation = await conversation_with(sessions, "fast")
    release = asyncio.Event()

    async def hang() -> None:
        await release.wait()

    sender.script["slow"] = [hang]
    dispatcher = OutboxDispatcher(sessions, senders, bus, poll_interval=60)
    dispatcher.start()
    try:
        async with sessions() as s:
            message_send(s, await s.get(Conversation, slow_conversation), OutboundPayload("slow"), author=Author.bot)
            await s.commit()
        await wait_for(lambda: asyncio.sleep(0, result="slow" in sender.texts))
        async with sessions() as s:  # the round now waits for the slow send
            message_send(s, await s.get(Conversation, fast_conversation), OutboundPayload("fast"), author=Author.bot)
            await s.commit()
        await wait_for(lambda: asyncio.sleep(0, result="fast" in sender.texts), timeout=5)
        assert not release.is_set()  # sent while the slow one still hangs
        release.set()
        await wait_for(lambda: all_sent(sessions))
    finally:
        release.set()
        await dispatcher.stop(timeout=5)


async def test_a_committed_batch_wakes_the_outbox_at_once(sessions: Any, settings: Any) -> None:
    from bot.pipeline import Pipeline

    woken: list[int] = []
    pipeline = Pipeline(sessions=sessions, bus=EventBus(), settings=settings)
    pipeline.on_commit = lambda: woken.append(1)
    a = await record(sessions, "a", "a1", "where is my order")
    b = await record(sessions, "b", "b1", "hello")
    outcomes = await pipeline.process_many(sorted([a.message_id, b.message_id]))
    assert outcomes == {a.message_id: None, b.message_id: None}
    assert woken == [1]  # once, for the batch's one commit
