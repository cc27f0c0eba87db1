"""The SLA clock kept by the actions, on SQLite and PostgreSQL: first response after the bot hands
over, paused while waiting on the customer, next response after an agent's answer, cleared on
resolve, re-targeted on a priority change, counted in business hours (weekends, holidays), breached
once by the SLA job; the policy is saved only valid, by admins, audited."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from inbox.actions.conversation_escalate import conversation_escalate
from inbox.actions.conversation_handback import conversation_handback
from inbox.actions.conversation_priority import conversation_priority
from inbox.actions.conversation_status import conversation_status, conversation_wake_snoozed
from inbox.actions.message_record import message_record
from inbox.actions.message_send import agent_reply
from inbox.actions.sla_policy_save import sla_policy_save
from inbox.messages import InboundMessage
from inbox.models import Agent, AuditEvent, Channel, Conversation, Priority, Role
from inbox.sla import SlaJob, SlaPolicy, load_policy, sla_start, sla_state
from shopbase.refusal import Refused

_keys = itertools.count(1)
ALWAYS = {day: ["00:00", "24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
# Wednesday 2026-11-18 10:00 in New York
T0 = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
NY = ZoneInfo("America/New_York")
_PATCHED = ["inbox.actions.conversation_escalate", "inbox.actions.conversation_status", "inbox.actions.message_send",
            "inbox.actions.conversation_priority", "inbox.actions.conversation_handback", "inbox.actions.base"]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    import importlib

    c = Clock(T0)
    for name in _PATCHED:
        monkeypatch.setattr(importlib.import_module(name), "utcnow", c)
    return c


async def admin(sessions: Any) -> Agent:
    async with sessions() as s:
        boss = Agent(email=f"boss{next(_keys)}@shop.test", name="Boss", password_hash="x", role=Role.admin)
        s.add(boss)
        await s.commit()
        await s.refresh(boss)
        return boss


async def policy(sessions: Any, **fields: Any) -> None:
    raw = {"timezone": "America/New_York", "hours": ALWAYS} | fields
    async with sessions() as s:
        await sla_policy_save(s, raw, by=await admin(sessions))
        await s.commit()


async def customer_writes(sessions: Any, clock: Clock, contact: str = "c1", text: str = "hello") -> int:
    result = await message_record(sessions, InboundMessage(channel=Channel.telegram, dedupe_key=f"k{next(_keys)}",
                                                            contact_external_id=contact, text=text), now=clock.now)
    return result.conversation_id


async def run(sessions: Any, cid: int, action: Any) -> Conversation:
    async with sessions() as s:
        conversation = await s.get(Conversation, cid)
        await action(s, conversation)
        await s.commit()
        await s.refresh(conversation)
        return conversation


async def load(sessions: Any, cid: int) -> Conversation:
    async with sessions() as s:
        found = await s.get(Conversation, cid)
        assert found is not None
        return found


async def escalate(sessions: Any, cid: int, priority: Priority = Priority.normal) -> Conversation:
    return await run(sessions, cid, lambda s, c: conversation_escalate(s, c, priority=priority, summary="",
                                                                        reason="handoff"))


async def an_agent(sessions: Any) -> Agent:
    async with sessions() as s:
        agent = Agent(email=f"ana{next(_keys)}@shop.test", name="Ana", password_hash="x")
        s.add(agent)
        await s.commit()
        await s.refresh(agent)
        return agent


async def test_first_response_pause_resume_and_next_response(sessions: Any, clock: Clock) -> None:
    await policy(sessions, targets={"normal": {"first": 60, "next": 120}, "high": {"first": 30, "next": 45}})
    cid = await customer_writes(sessions, clock)
    assert (await load(sessions, cid)).sla_due_at is None  # the bot is handling it: no clock

    conv = await escalate(sessions, cid)
    assert (conv.sla_kind, conv.sla_due_at) == ("first", T0 + timedelta(minutes=60))
    clock.advance(minutes=10)
    await customer_writes(sessions, clock)  # the customer writes again: the clock keeps running
    conv = await load(sessions, cid)
    assert conv.sla_due_at == T0 + timedelta(minutes=60)

    # waiting on the customer pauses it with the time left; back to open resumes it
    agent = await an_agent(sessions)
    conv = await run(sessions, cid, lambda s, c: conversation_status(s, c, "pending", by=agent))
    assert (conv.sla_due_at, conv.sla_paused_seconds, conv.sla_kind) == (None, 50 * 60, "first")
    clock.advance(hours=5)
    conv = await run(sessions, cid, lambda s, c: conversation_status(s, c, "open", by=agent))
    assert (conv.sla_due_at, conv.sla_paused_seconds) == (clock.now + timedelta(minutes=50), None)

    # an agent answers: the clock stops; the customer's next message starts a next-response clock
    clock.advance(minutes=20)
    conv = await run(sessions, cid, lambda s, c: agent_reply(s, c, agent, "On it!"))
    assert (conv.sla_due_at, conv.sla_kind, conv.first_response_at) == (None, None, clock.now)
    clock.advance(minutes=3)
    await customer_writes(sessions, clock, text="thanks, any news?")
    conv = await load(sessions, cid)
    assert (conv.sla_kind, conv.sla_due_at) == ("next", clock.now + timedelta(minutes=120))

    # a higher priority keeps the time spent and takes its own target
    clock.advance(minutes=30)
    conv = await run(sessions, cid, lambda s, c: conversation_priority(s, c, Priority.high, by=agent))
    assert conv.sla_due_at == clock.now + timedelta(minutes=45 - 30)

    # resolving clears it
    conv = await run(sessions, cid, lambda s, c: conversation_status(s, c, "resolved", by=agent))
    assert (conv.sla_due_at, conv.sla_kind, conv.sla_paused_seconds) == (None, None, None)


async def test_waiting_on_the_customer_then_they_write_starts_a_fresh_clock(sessions: Any, clock: Clock) -> None:
    await policy(sessions, targets={"normal": {"first": 60, "next": 90}})
    cid = await customer_writes(sessions, clock, contact="c2")
    await escalate(sessions, cid)
    agent = await an_agent(sessions)
    await run(sessions, cid, lambda s, c: agent_reply(s, c, agent, "Could you send a photo?"))
    conv = await run(sessions, cid, lambda s, c: conversation_status(s, c, "pending", by=agent))
    assert conv.sla_due_at is None and conv.sla_paused_seconds is None  # nothing was running
    clock.advance(days=2)
    await customer_writes(sessions, clock, contact="c2", text="here it is")
    conv = await load(sessions, cid)
    assert (conv.status.value, conv.sla_kind, conv.sla_due_at) == ("open", "next", clock.now + timedelta(minutes=90))


async def test_snooze_pauses_and_waking_resumes(sessions: Any, clock: Clock) -> None:
    await policy(sessions)
    cid = await customer_writes(sessions, clock, contact="c3")
    await escalate(sessions, cid, Priority.urgent)  # default urgent first response: 30 minutes
    agent = await an_agent(sessions)
    clock.advance(minutes=10)
    until = clock.now + timedelta(hours=3)
    conv = await run(sessions, cid, lambda s, c: conversation_status(s, c, "snoozed", by=agent, snoozed_until=until))
    assert (conv.sla_due_at, conv.sla_paused_seconds) == (None, 20 * 60)
    clock.advance(hours=3)
    async with sessions() as s:
        assert await conversation_wake_snoozed(s, clock.now) == [cid]
        await s.commit()
    conv = await load(sessions, cid)
    assert conv.sla_due_at == clock.now + timedelta(minutes=20)
    # handed back to the bot: no clock
    conv = await run(sessions, cid, lambda s, c: conversation_handback(s, c, agent))
    assert conv.sla_due_at is None and conv.sla_kind is None


async def test_business_hours_weekends_and_holidays(sessions: Any, clock: Clock) -> None:
    office = {d: ["09:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    await policy(sessions, hours=office, holidays=["2026-11-26", "2026-11-27"],
                 targets={"normal": {"first": 120, "next": 240}})
    # Wednesday 17:00 New York: one hour today, Thursday and Friday are holidays, then the weekend
    clock.now = datetime(2026, 11, 25, 17, 0, tzinfo=NY).astimezone(UTC)
    cid = await customer_writes(sessions, clock, contact="c4")
    conv = await escalate(sessions, cid)
    assert conv.sla_due_at == datetime(2026, 11, 30, 10, 0, tzinfo=NY)
    # a country's public holidays close the shop too (the holidays package): US Thanksgiving
    await policy(sessions, hours=office, holiday_country="US", targets={"normal": {"first": 120, "next": 240}})
    async with sessions() as s:
        loaded = await load_policy(s)
    conv2 = Conversation(contact_id=1, channel=Channel.telegram, priority=Priority.normal)
    sla_start(conv2, loaded, datetime(2026, 11, 25, 17, 0, tzinfo=NY))
    assert conv2.sla_due_at == datetime(2026, 11, 27, 10, 0, tzinfo=NY)  # Friday after Thanksgiving is open


def test_dst_changes_in_the_shop_zone() -> None:
    p = SlaPolicy(timezone="America/New_York", hours=ALWAYS, targets={"normal": {"first": 24 * 60, "next": 60}})
    conv = Conversation(contact_id=1, channel=Channel.telegram, priority=Priority.normal)
    # spring forward (2026-03-08 is 23 hours long): 24 business hours end at 01:00 the next day
    sla_start(conv, p, datetime(2026, 3, 8, 0, 0, tzinfo=NY))
    assert conv.sla_due_at == datetime(2026, 3, 9, 1, 0, tzinfo=NY)
    # fall back (2026-11-01 is 25 hours long): 24 business hours end at 23:00 the same day
    sla_start(conv, p, datetime(2026, 11, 1, 0, 0, tzinfo=NY))
    assert conv.sla_due_at == datetime(2026, 11, 1, 23, 0, tzinfo=NY)
    # office hours across the change: Friday 17:00 + 2 h = Monday 10:00 local, whatever the offset
    office = SlaPolicy(timezone="America/New_York", targets={"normal": {"first": 120, "next": 60}})
    sla_start(conv, office, datetime(2026, 10, 30, 17, 0, tzinfo=NY))
    assert conv.sla_due_at == datetime(2026, 11, 2, 10, 0, tzinfo=NY)
    sla_start(conv, office, datetime(2026, 3, 6, 17, 0, tzinfo=NY))
    assert conv.sla_due_at == datetime(2026, 3, 9, 10, 0, tzinfo=NY)


def test_channel_overrides_and_the_countdown_state() -> None:
    p = SlaPolicy(timezone="UTC", hours=ALWAYS, targets={"normal": {"first": 60, "next": 60}},
                  channel_targets={"webchat": {"normal": {"first": 5, "next": 10}}})
    conv = Conversation(contact_id=1, channel=Channel.webchat, priority=Priority.normal)
    sla_start(conv, p, T0)
    assert conv.sla_due_at == T0 + timedelta(minutes=5)
    assert sla_state(conv, T0, warn_minutes=3) == "ok"
    assert sla_state(conv, T0 + timedelta(minutes=3), warn_minutes=3) == "warn"
    assert sla_state(conv, T0 + timedelta(minutes=5), warn_minutes=3) == "breached"
    conv.channel = Channel.telegram
    sla_start(conv, p, T0)
    assert conv.sla_due_at == T0 + timedelta(minutes=60)
    assert sla_state(Conversation(contact_id=1, channel=Channel.telegram), T0) is None


async def test_the_job_breaches_each_clock_once(sessions: Any, clock: Clock) -> None:
    await policy(sessions, targets={"normal": {"first": 15, "next": 30}})
    cid = await customer_writes(sessions, clock, contact="c5")
    await escalate(sessions, cid)
    job = SlaJob(sessions, clock=clock)
    assert await job.run_once(clock.now + timedelta(minutes=14)) == []
    assert await job.run_once(clock.now + timedelta(minutes=16)) == [cid]
    assert await job.run_once(clock.now + timedelta(minutes=30)) == []
    async with sessions() as s:
        audits = (await s.exec(select(AuditEvent).where(AuditEvent.action == "conversation.sla_breached"))).all()
        conv = await s.get(Conversation, cid)
    assert len(audits) == 1 and audits[0].detail["kind"] == "first"
    assert conv is not None and conv.sla_breached_at == clock.now + timedelta(minutes=16)


async def test_the_policy_is_checked_whole_and_only_admins_save_it(sessions: Any) -> None:
    boss = await admin(sessions)
    agent = await an_agent(sessions)
    bad = [
        {"timezone": "Mars/Olympus"},
        {"hours": {"mon": ["18:00", "09:00"]}},
        {"hours": {"mon": ["9am", "18:00"]}},
        {"hours": {}},  # never open
        {"targets": {"normal": {"first": 0}}},
        {"targets": {"someday": {"first": 5}}},
        {"channel_targets": {"fax": {"normal": {"first": 5}}}},
        {"holiday_country": "XX"},
        {"holidays": ["not a date"]},
    ]
    async with sessions() as s:
        for raw in bad:
            with pytest.raises(Refused) as refused:
                await sla_policy_save(s, raw, by=boss)
            assert refused.value.status == 400, raw
        with pytest.raises(Refused):
            await sla_policy_save(s, {}, by=agent)
        await s.rollback()
        assert (await load_policy(s)) == SlaPolicy()
        saved = await sla_policy_save(s, {"timezone": "Europe/Madrid", "holidays": ["2026-12-25"], "warn_minutes": 10},
                                      by=boss)
        await s.commit()
        assert saved.holidays == [date(2026, 12, 25)]
        assert (await load_policy(s)).timezone == "Europe/Madrid"
        audit = (await s.exec(select(AuditEvent).where(AuditEvent.action == "sla_policy.saved"))).one()
        assert audit.agent_id == boss.id and "timezone" in audit.detail["changed"]


async def test_the_unassigned_queue_orders_by_priority_then_due_time_and_pages_through(sessions: Any) -> None:
    from inbox.models import Contact, Owner
    from inbox.queries.conversations import list_conversations

    async with sessions() as s:
        me = Agent(email="me@shop.test", name="Me", password_hash="x", role=Role.admin)
        s.add(me)
        wanted = [  # (name, priority, due in minutes or None, last activity minutes ago)
            ("urgent-none", Priority.urgent, None, 1),
            ("high-soon", Priority.high, 5, 50),
            ("high-later", Priority.high, 40, 2),
            ("high-none-old", Priority.high, None, 30),  # the longest waiting first (inbox.queries.triage)
            ("high-none-new", Priority.high, None, 3),
            ("normal-late", Priority.normal, -10, 60),
        ]
        for name, priority, due, ago in wanted:
            contact = Contact(channel=Channel.telegram, external_id=name, display_name=name)
            s.add(contact)
            await s.flush()
            s.add(Conversation(contact_id=contact.id, channel=Channel.telegram, owner=Owner.agent, priority=priority,
                               sla_due_at=None if due is None else T0 + timedelta(minutes=due),
                               last_message_at=T0 - timedelta(minutes=ago)))
        await s.commit()
        rows = await list_conversations(s, me, view="unassigned")
        names = [r.contact_name for r in rows]
        assert names == [w[0] for w in wanted]
        paged: list[str] = []
        before = None
        while True:
            page = await list_conversations(s, me, view="unassigned", limit=1, before=before)
            if not page:
                break
            paged.append(page[0].contact_name)
            before = page[0].cursor
        assert paged == names


async def test_a_breach_never_lands_on_a_clock_that_changed_meanwhile(sessions: Any, clock: Clock) -> None:
    import sqlalchemy as sa

    from inbox.actions.conversation_sla_breach import conversation_sla_breach

    await policy(sessions, targets={"normal": {"first": 15, "next": 30}})
    cid = await customer_writes(sessions, clock, contact="c6")
    await escalate(sessions, cid)
    async with sessions() as s:
        stale = await s.get(Conversation, cid)
        assert stale is not None and stale.sla_due_at is not None
        # an agent's answer committed after the job read the row: the clock is gone
        await s.exec(sa.update(Conversation).where(Conversation.id == cid).values(sla_due_at=None, sla_kind=None)
                     .execution_options(synchronize_session=False))
        assert await conversation_sla_breach(s, stale, now=clock.now + timedelta(hours=1)) is None
        await s.commit()
    conv = await load(sessions, cid)
    assert conv.sla_breached_at is None and conv.sla_due_at is None
