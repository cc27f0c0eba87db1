"""Sends that end together write their outcomes a few at a time (issue 16: a hanging Bot API
must not delay the webhooks).

When the Bot API hangs, every send in flight reaches its read timeout at the same moment and
each one's outcome ("unknown") is a transaction of its own; a flood wait refuses them all at
once the same way. The dispatcher writes those outcomes through at most ``result_writers``
sessions at a time, so the wave never takes the connection pool from the webhooks that record
customers' messages. Counted here: the sessions the dispatcher has open at once while eight
sends time out together, on SQLite and PostgreSQL; every outcome is still written, once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from inbox.channels import OutcomeUnknown, RetryLater, SenderRegistry
from inbox.events import EventBus
from inbox.messages import OutboundPayload
from inbox.models import Contact, OutboxMessage, OutboxStatus
from inbox.outbox import OutboxDispatcher
from tests.db_helpers import rows
from tests.test_outbox import conversation_with

SENDS = 8


class CountingSessions:
    """A session factory that counts the sessions open at once (what the pool is asked for)."""

    def __init__(self, sessions: Any) -> None:
        self.inner = sessions
        self.open = 0
        self.peak = 0

    @property
    def kw(self) -> Any:
        return self.inner.kw

    def configure(self, **kw: Any) -> None:
        self.inner.configure(**kw)

    def __call__(self) -> Any:
        return _Counted(self, self.inner())


class _Counted:
    def __init__(self, owner: CountingSessions, session: Any) -> None:
        self.owner, self.session = owner, session

    async def __aenter__(self) -> Any:
        self.owner.open += 1
        self.owner.peak = max(self.owner.peak, self.owner.open)
        await asyncio.sleep(0.01)  # hold it a moment, as a loaded database does
        return await self.session.__aenter__()

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self.session.__aexit__(*exc)
        finally:
            self.owner.open -= 1


class TogetherSender:
    """Holds every send until all ``SENDS`` are in flight, then fails them all at once."""

    def __init__(self, outcome: Exception) -> None:
        from inbox.models import Channel

        self.channel = Channel.telegram
        self.outcome = outcome
        self.calls = 0
        self.all_in = asyncio.Event()

    async def send(self, contact: Contact, payload: OutboundPayload) -> str | None:
        self.calls += 1
        if self.calls >= SENDS:
            self.all_in.set()
        await self.all_in.wait()
        raise self.outcome


async def _wave(sessions: Any, outcome: Exception, result_writers: int) -> tuple[CountingSessions, TogetherSender]:
    for i in range(SENDS):
        await conversation_with(sessions, f"chat-{i}", f"reply {i}")
    sender = TogetherSender(outcome)
    registry = SenderRegistry()
    registry.register(sender)
    counting = CountingSessions(sessions)
    dispatcher = OutboxDispatcher(counting, registry, EventBus(), concurrency=SENDS,  # type: ignore[arg-type]
                                  result_writers=result_writers)
    counting.peak = 0
    await dispatcher.run_once()
    return counting, sender


async def test_outcomes_of_sends_that_time_out_together_are_written_a_few_at_a_time(sessions: Any) -> None:
    counting, sender = await _wave(sessions, OutcomeUnknown("no answer in time"), result_writers=2)
    assert sender.calls == SENDS
    assert [r.status for r in await rows(sessions, OutboxMessage)] == [OutboxStatus.unknown] * SENDS
    # two outcome writers, and at most the claim of the next round beside them: never one each
    assert counting.peak <= 3, counting.peak


async def test_a_refused_wave_is_rescheduled_a_few_at_a_time(sessions: Any) -> None:
    counting, sender = await _wave(sessions, RetryLater(30, "429", rate_limited=True), result_writers=2)
    found = await rows(sessions, OutboxMessage)
    assert [(r.status, r.attempts) for r in found] == [(OutboxStatus.pending, 0)] * SENDS  # a 429 uses none up
    assert counting.peak <= 3, counting.peak


async def test_one_writer_per_send_when_asked(sessions: Any) -> None:
    """The bound is what keeps the wave small: with a writer per send, all of them write at once."""
    counting, _ = await _wave(sessions, OutcomeUnknown("no answer in time"), result_writers=SENDS)
    assert counting.peak >= SENDS
    assert [r.status for r in await rows(sessions, OutboxMessage)] == [OutboxStatus.unknown] * SENDS
