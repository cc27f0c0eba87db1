"""inbox.worker on SQLite and PostgreSQL: per-conversation serialization, bounds, failures, sweep, stop."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from sqlmodel import select

from inbox.actions.message_mark_processed import message_mark_processed
from inbox.actions.message_record import RecordResult, message_record
from inbox.messages import InboundMessage
from inbox.models import Channel, Message
from inbox.queries.messages import unprocessed_message_ids
from inbox.worker import InboundWorker


async def record(sessions: Any, contact: str, key: str, text: str = "hello") -> RecordResult:
    return await message_record(sessions, InboundMessage(Channel.telegram, key, contact, text))


class Recorder:
    """A processor that marks messages processed, and measures concurrency."""

    def __init__(self, sessions: Any, delay: float = 0.02, fail: set[int] | None = None) -> None:
        self.sessions = sessions
        self.delay = delay
        self.fail = fail or set()
        self.order: list[int] = []
        self.running: dict[int, int] = defaultdict(int)
        self.max_per_conversation = 0
        self.total_running = 0
        self.max_total = 0
        self.finished: list[int] = []

    async def __call__(self, message_id: int) -> None:
        async with self.sessions() as s:
            conversation_id = (await s.get(Message, message_id)).conversation_id
        self.order.append(message_id)
        self.running[conversation_id] += 1
        self.total_running += 1
        self.max_per_conversation = max(self.max_per_conversation, self.running[conversation_id])
        self.max_total = max(self.max_total, self.total_running)
        try:
            await asyncio.sleep(self.delay)
            if message_id in self.fail:
                raise ValueError("customer said: my email is ann@example.test")
            async with self.sessions() as s:
                await message_mark_processed(s, message_id)
                await s.commit()
            self.finished.append(message_id)
        finally:
            self.running[conversation_id] -= 1
            self.total_running -= 1


async def test_one_message_per_conversation_at_a_time_in_order_with_bounded_concurrency(sessions):
    ids: dict[str, list[int]] = defaultdict(list)
    for i in range(4):
        for c in ("a", "b", "c", "d", "e"):
            ids[c].append((await record(sessions, c, f"{c}{i}")).message_id)
    processor = Recorder(sessions, delay=0.03)
    worker = InboundWorker(sessions, processor, concurrency=3, sweep_interval=None)
    for i in range(4):
        for c in ("e", "d", "c", "b", "a"):
            worker.submit(ids[c][i])
    await worker.join()
    assert sorted(processor.finished) == sorted(m for v in ids.values() for m in v)
    assert processor.max_per_conversation == 1
    assert 1 < processor.max_total <= 3
    for message_ids in ids.values():
        assert [m for m in processor.order if m in message_ids] == message_ids  # oldest first
    await worker.stop()


async def test_failures_are_logged_by_id_and_left_for_the_next_sweep(sessions, caplog):
    bad = (await record(sessions, "a", "a1", "my email is ann@example.test")).message_id
    good = (await record(sessions, "b", "b1")).message_id
    processor = Recorder(sessions, delay=0, fail={bad})
    worker = InboundWorker(sessions, processor, sweep_interval=None)
    caplog.set_level(logging.INFO, logger="inbox.worker")
    await worker.start()  # the startup sweep finds both
    await worker.join()
    assert processor.finished == [good]
    assert str(bad) in caplog.text and "ValueError" in caplog.text
    assert "ann@example.test" not in caplog.text and "my email" not in caplog.text
    async with sessions() as s:
        assert await unprocessed_message_ids(s) == [bad]
    processor.fail.clear()
    assert await worker.sweep() == 1
    await worker.join()
    assert processor.finished == [good, bad]
    assert await worker.sweep() == 0
    await worker.stop()


async def test_duplicate_and_processed_submissions_are_ignored(sessions):
    mid = (await record(sessions, "a", "a1")).message_id
    processor = Recorder(sessions, delay=0.02)
    worker = InboundWorker(sessions, processor, sweep_interval=None)
    worker.submit(mid)
    worker.submit(mid)
    await worker.sweep()
    await worker.join()
    worker.submit(mid)  # processed by now: looked up and skipped
    worker.submit(424242)  # no such message
    await worker.join()
    assert processor.order == [mid]
    await worker.stop()


async def test_stop_waits_for_in_flight_and_leaves_queued_unprocessed(sessions):
    first = (await record(sessions, "a", "a1")).message_id
    second = (await record(sessions, "a", "a2")).message_id
    processor = Recorder(sessions, delay=0.2)
    worker = InboundWorker(sessions, processor, sweep_interval=None)
    await worker.start()
    while not processor.order:
        await asyncio.sleep(0.01)
    await worker.stop()
    assert processor.finished == [first]  # the one in flight completed; the queued one did not start
    async with sessions() as s:
        assert await unprocessed_message_ids(s) == [second]
        assert (await s.exec(select(Message.processed).where(Message.id == first))).one() is True
    restarted = InboundWorker(sessions, processor, sweep_interval=None)
    await restarted.start()
    await restarted.join()
    assert processor.finished == [first, second]
    await restarted.stop()


async def test_periodic_sweep_picks_up_missed_messages(sessions):
    processor = Recorder(sessions, delay=0)
    worker = InboundWorker(sessions, processor, sweep_interval=0.05)
    await worker.start()
    mid = (await record(sessions, "a", "a1")).message_id  # never submitted
    for _ in range(500):
        if processor.finished:
            break
        await asyncio.sleep(0.02)
    await worker.stop()
    assert processor.finished == [mid]


async def test_a_database_outage_is_retried_soon_in_order_and_not_counted(sessions, caplog):
    """While the database is away the worker neither gives up nor lets a conversation's later
    message overtake the one that failed: it sweeps again after a short back-off, and once
    the database answers every message is processed, oldest first."""
    from sqlalchemy.exc import OperationalError

    class Outage(Recorder):
        down = True

        async def __call__(self, message_id: int) -> None:
            if self.down:
                self.order.append(-message_id)
                raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
            await super().__call__(message_id)

    first = (await record(sessions, "a", "a1")).message_id
    second = (await record(sessions, "a", "a2")).message_id
    other = (await record(sessions, "b", "b1")).message_id
    processor = Outage(sessions, delay=0)
    worker = InboundWorker(sessions, processor, sweep_interval=None, retry_delay=0.05, max_failures=1)
    caplog.set_level(logging.INFO, logger="inbox.worker")
    await worker.start()
    for _ in range(200):  # several retries while the database is down (more than max_failures)
        if sum(1 for m in processor.order if m == -first) >= 3:
            break
        await asyncio.sleep(0.02)
    assert sum(1 for m in processor.order if m == -first) >= 3
    assert -second not in processor.order  # never tried before the first one of its conversation
    processor.down = False
    for _ in range(500):
        if len(processor.finished) == 3:
            break
        await asyncio.sleep(0.02)
    assert processor.finished.index(first) < processor.finished.index(second)
    assert sorted(processor.finished) == sorted([first, second, other])
    assert "waits for the database" in caplog.text and "failed (" not in caplog.text
    await worker.stop()


async def test_the_bot_does_not_apologise_for_a_database_outage(sessions, settings, monkeypatch):
    """A lost connection during a turn is not a bot failure: no apology, no hand-over; the
    error reaches the worker, which retries."""
    import pytest
    from sqlalchemy.exc import OperationalError

    from bot.pipeline import Pipeline
    from inbox.events import EventBus
    from inbox.models import Conversation, OutboxMessage, Owner

    mid = (await record(sessions, "a", "a1", "hi")).message_id
    pipeline = Pipeline(sessions=sessions, bus=EventBus(), settings=settings)

    async def lost(_message_id: int) -> None:
        raise OperationalError("SELECT 1", {}, ConnectionResetError("server closed the connection"))

    monkeypatch.setattr(pipeline, "_process", lost)
    with pytest.raises(OperationalError):
        await pipeline.process(mid)
    async with sessions() as s:
        assert (await s.exec(select(OutboxMessage))).all() == []
        conversation = (await s.exec(select(Conversation))).one()
        assert conversation.owner != Owner.agent
        assert (await s.get(Message, mid)).processed is False


def test_what_counts_as_the_database_being_away() -> None:
    """Connection trouble is transient; a broken message (a missing file, a bug) is not, so the
    bot's fail-safe still apologises and hands over for it."""
    import errno

    from sqlalchemy.exc import IntegrityError, OperationalError

    from shopbase.dberrors import is_database_unavailable

    assert is_database_unavailable(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    assert is_database_unavailable(OSError("Multiple exceptions: [Errno 111] Connect call failed"))
    assert is_database_unavailable(OperationalError("x", {}, Exception("database is locked")))
    assert is_database_unavailable(OperationalError("x", {}, Exception("terminating connection due to administrator command")))
    try:
        try:
            raise ConnectionResetError(errno.ECONNRESET, "reset")
        except ConnectionResetError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert is_database_unavailable(outer)  # found through the cause
    assert not is_database_unavailable(FileNotFoundError(errno.ENOENT, "label.pdf"))
    assert not is_database_unavailable(OSError(errno.ENOSPC, "disk full"))
    assert not is_database_unavailable(ValueError("bad input"))
    assert not is_database_unavailable(IntegrityError("x", {}, Exception("duplicate key value violates unique")))
