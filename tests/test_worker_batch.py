"""Micro-batches: the worker hands the ready messages of different conversations to
``batch(ids)`` together, and ``Pipeline.process_many`` answers them in one transaction
(group commit), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import col, select

from inbox.actions.message_mark_processed import message_mark_processed
from inbox.actions.message_record import RecordResult, message_record
from inbox.messages import InboundMessage
from inbox.models import Channel, Conversation, Direction, Message, OutboxMessage, Owner
from inbox.worker import InboundWorker


async def record(sessions: Any, contact: str, key: str, text: str = "hello") -> RecordResult:
    return await message_record(sessions, InboundMessage(Channel.telegram, key, contact, text))


class Batches:
    """A batch function that marks its messages processed (one transaction) and remembers
    every batch; ``errors`` maps a message id to the error its outcome reports."""

    def __init__(self, sessions: Any, errors: dict[int, Exception] | None = None) -> None:
        self.sessions = sessions
        self.errors = errors or {}
        self.batches: list[list[int]] = []
        self.finished: list[int] = []

    async def __call__(self, ids: list[int]) -> dict[int, Exception | None]:
        self.batches.append(list(ids))
        await asyncio.sleep(0.01)
        outcomes: dict[int, Exception | None] = {}
        async with self.sessions() as s:
            for message_id in ids:
                error = self.errors.get(message_id)
                outcomes[message_id] = error
                if error is None:
                    await message_mark_processed(s, message_id)
            await s.commit()
        self.finished += [m for m in ids if outcomes[m] is None]
        return outcomes


async def never(_message_id: int) -> None:
    raise AssertionError("a batching worker must not call the one-message processor")


async def conversations_of(sessions: Any, ids: list[int]) -> dict[int, int]:
    async with sessions() as s:
        rows = (await s.exec(select(Message.id, Message.conversation_id).where(col(Message.id).in_(ids)))).all()
    return {int(m): int(c) for m, c in rows}


async def test_batches_take_one_message_per_conversation_in_order(sessions):
    ids: dict[str, list[int]] = defaultdict(list)
    for i in range(3):
        for c in ("a", "b", "c", "d"):
            ids[c].append((await record(sessions, c, f"{c}{i}")).message_id)
    batch = Batches(sessions)
    worker = InboundWorker(sessions, never, sweep_interval=None, batch=batch, batch_size=3)
    for i in range(3):
        for c in ("d", "c", "b", "a"):
            worker.submit(ids[c][i])
    await worker.join()
    everything = [m for v in ids.values() for m in v]
    assert sorted(batch.finished) == sorted(everything)
    conversation = await conversations_of(sessions, everything)
    for ids_of_batch in batch.batches:
        owners = [conversation[m] for m in ids_of_batch]
        assert len(owners) == len(set(owners))  # never two messages of one conversation together
        assert owners == sorted(owners)  # conversation order: row locks always taken in one order
        assert len(ids_of_batch) <= 3
    assert max(len(b) for b in batch.batches) > 1  # ready messages were processed together
    for message_ids in ids.values():
        assert [m for m in batch.finished if m in message_ids] == message_ids  # oldest first
    await worker.stop()


async def test_batch_outcomes_are_booked_per_message(sessions, caplog):
    """A failed message is counted and logged by id, the rest of its batch is done; a database
    outage in a batch is retried, the conversation's later message never overtaking it."""
    bad = (await record(sessions, "a", "a1", "my email is ann@example.test")).message_id
    good = (await record(sessions, "b", "b1")).message_id
    away = (await record(sessions, "c", "c1")).message_id
    later = (await record(sessions, "c", "c2")).message_id
    outage = OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
    batch = Batches(sessions, errors={bad: ValueError("customer said: my email is ann@example.test"), away: outage})
    worker = InboundWorker(sessions, never, sweep_interval=None, retry_delay=0.05, max_failures=1, batch=batch)
    caplog.set_level(logging.INFO, logger="inbox.worker")
    await worker.start()
    for _ in range(200):
        if sum(b.count(away) for b in batch.batches) >= 2:
            break
        await asyncio.sleep(0.02)
    assert sum(b.count(away) for b in batch.batches) >= 2  # tried again after the back-off
    assert not any(later in b for b in batch.batches)  # never before the first one of its conversation
    del batch.errors[away]  # the database is back
    for _ in range(300):
        if later in batch.finished:
            break
        await asyncio.sleep(0.02)
    assert batch.finished.index(away) < batch.finished.index(later)
    assert good in batch.finished and bad not in batch.finished
    assert f"processing inbound message {bad} failed (ValueError, failure 1)" in caplog.text
    assert "ann@example.test" not in caplog.text
    await worker.sweep()
    await worker.join()
    assert bad not in batch.finished  # max_failures reached: not offered again in this process
    await worker.stop()


async def test_stop_leaves_queued_batched_messages_unprocessed(sessions):
    first = (await record(sessions, "a", "a1")).message_id
    second = (await record(sessions, "a", "a2")).message_id
    batch = Batches(sessions)
    worker = InboundWorker(sessions, never, sweep_interval=None, batch=batch)
    worker.submit(first)
    worker.submit(second)
    for _ in range(100):
        if batch.batches:
            break
        await asyncio.sleep(0.005)
    await worker.stop()
    assert batch.finished == [first]  # in flight: finished; its successor: left for the next start
    async with sessions() as s:
        assert (await s.get(Message, second)).processed is False


# --------------------------------------------------------------------------- the pipeline's side


@pytest.fixture
def pipeline(sessions, settings) -> Any:
    from bot.pipeline import Pipeline
    from inbox.events import EventBus

    return Pipeline(sessions=sessions, bus=EventBus(), settings=settings)


async def replies_of(sessions: Any, message_id: int) -> list[str]:
    async with sessions() as s:
        conversation_id = (await s.get(Message, message_id)).conversation_id
        rows = (await s.exec(select(Message.text).join(OutboxMessage, col(OutboxMessage.message_id) == Message.id)
                             .where(col(Message.conversation_id) == conversation_id,
                                    col(Message.direction) == Direction.outbound))).all()
    return [str(t) for t in rows]


async def test_process_many_answers_every_message_in_one_commit(sessions, pipeline):
    a = (await record(sessions, "a", "a1", "hi")).message_id
    b = (await record(sessions, "b", "b1", "what is your return policy?")).message_id
    turns: list[str] = []
    pipeline.on_turn = lambda stats: turns.append(stats.outcome)
    assert await pipeline.process_many([a, b]) == {a: None, b: None}
    async with sessions() as s:
        assert (await s.get(Message, a)).processed and (await s.get(Message, b)).processed
    assert await replies_of(sessions, a) and await replies_of(sessions, b)
    assert turns == ["answered", "answered"]
    # a replay of the batch changes nothing: both are processed already
    assert await pipeline.process_many([a, b]) == {a: None, b: None}
    assert len(await replies_of(sessions, a)) == 1 and len(await replies_of(sessions, b)) == 1


async def test_a_failing_turn_does_not_lose_the_others(sessions, pipeline, monkeypatch):
    import bot.pipeline as pipeline_module

    good = (await record(sessions, "a", "a1", "hi")).message_id
    bad = (await record(sessions, "b", "b1", "hello there")).message_id
    respond = pipeline_module.respond

    async def flaky(turn: Any) -> None:
        if turn.text == "hello there":
            raise RuntimeError("a handler bug")
        await respond(turn)

    monkeypatch.setattr(pipeline_module, "respond", flaky)
    assert await pipeline.process_many([good, bad]) == {good: None, bad: None}
    async with sessions() as s:
        assert (await s.get(Message, good)).processed and (await s.get(Message, bad)).processed
        owner_of_bad = (await s.get(Conversation, (await s.get(Message, bad)).conversation_id)).owner
        owner_of_good = (await s.get(Conversation, (await s.get(Message, good)).conversation_id)).owner
    assert len(await replies_of(sessions, good)) == 1  # answered once, by its own turn
    assert len(await replies_of(sessions, bad)) == 1  # the apology
    assert owner_of_bad == Owner.agent and owner_of_good == Owner.bot


async def test_a_database_outage_fails_the_whole_batch_and_keeps_nothing(sessions, pipeline, monkeypatch):
    first = (await record(sessions, "a", "a1", "hi")).message_id
    second = (await record(sessions, "b", "b1", "hi")).message_id
    turn = pipeline._turn

    async def lost(session: Any, message_id: int, *batch: Any) -> Any:
        if message_id == second:
            raise OperationalError("SELECT 1", {}, ConnectionResetError("server closed the connection"))
        return await turn(session, message_id, *batch)

    monkeypatch.setattr(pipeline, "_turn", lost)
    outcomes = await pipeline.process_many([first, second])
    assert set(outcomes) == {first, second}
    assert all(isinstance(e, OperationalError) for e in outcomes.values())
    async with sessions() as s:
        assert (await s.exec(select(OutboxMessage))).all() == []  # the first turn's reply went with it
        assert (await s.get(Message, first)).processed is False
        assert (await s.get(Message, second)).processed is False
        assert all(c.owner == Owner.bot for c in (await s.exec(select(Conversation))).all())


async def test_one_batch_at_a_time_gathers_what_arrives_meanwhile_into_the_next(sessions):
    """The SQLite server runs one batch at a time (its one connection could only make a second
    batch wait): the messages that arrive while a batch runs wait in the worker and go together
    in the next batch, not one batch each."""
    first = (await record(sessions, "first", "f0")).message_id
    later = [(await record(sessions, f"c{i}", f"k{i}")).message_id for i in range(5)]
    batch = Batches(sessions)
    worker = InboundWorker(sessions, never, sweep_interval=None, batch=batch, concurrency=1)
    worker.submit(first)
    while not batch.batches:  # the first batch is running (it sleeps 10 ms before its commit)
        await asyncio.sleep(0)
    for message_id in later:  # one by one, on separate loop turns, as webhooks arrive
        worker.submit(message_id)
        await asyncio.sleep(0)
    await worker.join()
    assert batch.batches == [[first], later]
    assert sorted(batch.finished) == sorted([first, *later])
