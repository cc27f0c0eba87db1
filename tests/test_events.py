"""inbox.events: published after commit, never on rollback, subscribers isolated, a transport seam."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from inbox.events import Event, EventBus, collect, pending_events
from inbox.models import Team


@pytest.fixture
def seen(bus: EventBus) -> list[Event]:
    out: list[Event] = []
    bus.subscribe(out.append)
    return out


def ev(name: str, **data: Any) -> Event:
    return Event("conversation.updated", None, {"name": name, **data})


async def test_events_are_published_only_after_commit(sessions, bus, seen):
    async with sessions() as s:
        s.add(Team(name="one"))
        collect(s, ev("a"))
        await s.flush()
        collect(s, ev("b"))
        await asyncio.sleep(0.01)
        await bus.wait_idle()
        assert seen == []
        assert len(pending_events(s)) == 2
        await s.commit()
        assert pending_events(s) == []
    await bus.wait_idle()
    assert [e.data["name"] for e in seen] == ["a", "b"]


async def test_rollback_and_close_without_commit_discard_events(sessions, bus, seen):
    async with sessions() as s:
        s.add(Team(name="one"))
        collect(s, ev("rolled-back"))
        await s.rollback()
        collect(s, ev("closed"))
    async with sessions() as s:
        collect(s, ev("kept"))
        await s.commit()
        await s.commit()  # a second commit publishes nothing again
    await bus.wait_idle()
    assert [e.data["name"] for e in seen] == ["kept"]


async def test_failed_transaction_publishes_nothing(sessions, bus, seen):
    async with sessions() as s:
        s.add(Team(name="dup"))
        await s.commit()
    with pytest.raises(IntegrityError):
        async with sessions() as s:
            collect(s, ev("never"))
            s.add(Team(name="dup"))
            await s.commit()
    await bus.wait_idle()
    assert seen == []


async def test_savepoint_rollback_drops_only_its_own_events(sessions, bus, seen):
    async with sessions() as s:
        collect(s, ev("outer"))
        nested = await s.begin_nested()
        collect(s, ev("inner-dropped"))
        await nested.rollback()
        async with s.begin_nested():
            collect(s, ev("inner-kept"))
        await bus.wait_idle()
        assert seen == []  # releasing a savepoint is not a commit
        await s.commit()
    await bus.wait_idle()
    assert [e.data["name"] for e in seen] == ["outer", "inner-kept"]


async def test_event_factories_run_after_commit_with_flushed_ids(sessions, bus, seen):
    async with sessions() as s:
        team = Team(name="late")
        s.add(team)
        collect(s, lambda: Event("conversation.updated", None, {"team_id": team.id}))
        await s.commit()
    await bus.wait_idle()
    assert seen[0].data["team_id"] == team.id is not None


async def test_failing_subscribers_are_logged_and_isolated(sessions, bus, caplog):
    got: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    async def slow_async(event: Event) -> None:
        await asyncio.sleep(0.001)
        got.append("async:" + event.data["name"])

    bus.subscribe(broken)
    bus.subscribe(slow_async)
    unsubscribe = bus.subscribe(lambda e: got.append("sync:" + e.data["name"]))
    caplog.set_level(logging.ERROR, logger="inbox.events")
    async with sessions() as s:
        collect(s, ev("x"))
        await s.commit()  # the publisher never sees the subscriber's error
    await bus.wait_idle()
    unsubscribe()
    unsubscribe()  # idempotent
    await bus.publish(ev("y"))
    assert got == ["async:x", "sync:x", "async:y"]
    assert sum("failed on conversation.updated" in r.getMessage() for r in caplog.records) == 2


async def test_order_is_kept_across_commits(sessions, bus, seen):
    for i in range(5):
        async with sessions() as s:
            collect(s, ev(str(i)))
            await s.commit()
    await bus.wait_idle()
    assert [e.data["name"] for e in seen] == ["0", "1", "2", "3", "4"]


async def test_transport_seam_carries_events_to_the_other_process(sessions):
    class LoopbackTransport:
        """Stands in for LISTEN/NOTIFY: serialize, then deliver to the other process's bus."""

        def __init__(self, other: EventBus) -> None:
            self.wire: list[dict[str, Any]] = []
            self.other = other

        async def send(self, event: Event) -> None:
            self.wire.append(event.to_json())
            await self.other.deliver(Event.from_json(self.wire[-1]))

    other = EventBus()
    transport = LoopbackTransport(other)
    bus = EventBus(transport=transport)
    bus.bind(sessions)
    here: list[Event] = []
    there: list[Event] = []
    bus.subscribe(here.append)
    other.subscribe(there.append)
    async with sessions() as s:
        collect(s, Event("message.created", 7, {"message_id": 1}))
        await s.commit()
    await bus.wait_idle()
    assert transport.wire == [{"type": "message.created", "conversation_id": 7, "data": {"message_id": 1}}]
    # delivered once in this process (before it was sent) and once in the other
    assert here == [Event("message.created", 7, {"message_id": 1})]
    assert there == here


async def test_bus_collect_binds_an_unbound_session(engine):
    from shopdesk.db import session_maker

    sessions = session_maker(engine)  # not bound
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    async with sessions() as s:
        bus.collect(s, ev("direct"))
        await s.commit()
    await bus.wait_idle()
    assert [e.data["name"] for e in seen] == ["direct"]
