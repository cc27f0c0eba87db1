"""inbox.actions and inbox.queries on SQLite and PostgreSQL: recording, lifecycle, actions, reads."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

import inbox.actions.message_record as message_record_module
from inbox.actions.contact_link import contact_link
from inbox.actions.conversation_assign import conversation_assign, conversation_claim
from inbox.actions.conversation_escalate import conversation_escalate
from inbox.actions.conversation_handback import conversation_handback
from inbox.actions.conversation_labels import conversation_labels
from inbox.actions.conversation_priority import conversation_priority
from inbox.actions.conversation_status import conversation_status, conversation_wake_snoozed
from inbox.actions.message_mark_processed import message_mark_processed
from inbox.actions.message_note import message_note
from inbox.actions.message_record import message_record
from inbox.actions.message_send import agent_reply, message_send
from inbox.messages import Attachment, InboundMessage, InvalidMessage, OutboundPayload, QuickReply
from inbox.models import (
    Agent,
    AuditEvent,
    Author,
    Channel,
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    OutboxMessage,
    OutboxStatus,
    Owner,
    Priority,
    Role,
    Team,
)
from inbox.queries.conversations import count_conversations, get_conversation, list_conversations
from inbox.queries.filters import InvalidQuery
from inbox.queries.messages import transcript, unprocessed_message_ids
from inbox.search import fts5_query
from ordersvc.models import Customer
from shopbase.refusal import Refused
from tests.db_helpers import count


def utc(**delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


def inbound(key: str, contact: str = "tg-100", text: str = "hello", **kw: Any) -> InboundMessage:
    kw.setdefault("channel", Channel.telegram)
    return InboundMessage(dedupe_key=key, contact_external_id=contact, text=text, **kw)



async def make_agent(sessions: Any, email: str, *, admin: bool = False, team: str | None = None,
                     name: str = "") -> Agent:
    async with sessions() as s:
        team_id = None
        if team is not None:
            existing = (await s.exec(select(Team).where(Team.name == team))).first()
            if existing is None:
                existing = Team(name=team)
                s.add(existing)
                await s.flush()
            team_id = existing.id
        agent = Agent(email=email, name=name or email.split("@")[0], password_hash="x",
                      role=Role.admin if admin else Role.agent, team_id=team_id)
        s.add(agent)
        await s.commit()
        return agent


async def audit_actions(sessions: Any, conversation_id: int) -> list[str]:
    async with sessions() as s:
        rows = await s.exec(select(AuditEvent.action).where(AuditEvent.conversation_id == conversation_id)
                            .order_by(col(AuditEvent.id)))
        return list(rows.all())


async def get_conv(sessions: Any, conversation_id: int) -> Conversation:
    async with sessions() as s:
        conv = await s.get(Conversation, conversation_id)
        assert conv is not None
        return conv


# --------------------------------------------------------------------------- recording


async def test_record_inbound_creates_contact_conversation_and_unprocessed_message(sessions, published, bus):
    result = await message_record(
        sessions,
        inbound("u1", text="  <b>Where is</b> my order?\r\nThanks\r ", display_name="Ann\x07 Lee",
                username="ann", language_hint="de", channel_message_id="55",
                attachments=(Attachment(kind="photo", filename="a.jpg", url="javascript:alert(1)"),)),
    )
    assert result.duplicate is False and result.new_conversation is True and result.reopened is False
    async with sessions() as s:
        msg = await s.get(Message, result.message_id)
        contact = await s.get(Contact, result.contact_id)
        conv = await s.get(Conversation, result.conversation_id)
    assert msg.text == "<b>Where is</b> my order?\nThanks"  # plain text, newlines normalized, stripped
    assert msg.processed is False and msg.direction == Direction.inbound and msg.author == Author.customer
    assert msg.attachments == [{"kind": "photo", "filename": "a.jpg", "url": None, "mime": None, "size": None}]
    assert msg.channel_message_id == "55"
    assert contact.display_name == "Ann Lee" and contact.username == "ann" and contact.language == "de"
    assert conv.status == ConversationStatus.open and conv.owner == Owner.bot and conv.contact_id == contact.id
    assert await audit_actions(sessions, conv.id) == ["conversation.created"]
    await bus.wait_idle()
    assert [e.type for e in published] == ["conversation.updated", "message.created"]
    assert published[1].data["message_id"] == result.message_id


async def test_postback_and_start_payload_are_kept(sessions):
    result = await message_record(sessions, inbound("u1", text="", postback="order:7", start_payload="ref42"))
    async with sessions() as s:
        msg = await s.get(Message, result.message_id)
    assert (msg.text, msg.postback, msg.start_payload) == ("", "order:7", "ref42")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "message is empty"),
        ("   \r\n ", "message is empty"),
        ("a\x00b", "NUL"),
        ("bad \udc80 surrogate", "surrogate"),
        ("x" * 11, "message too long: 11 characters, at most 10"),
    ],
)
async def test_invalid_texts_are_rejected_and_nothing_is_stored(sessions, text, reason):
    with pytest.raises(InvalidMessage) as info:
        await message_record(sessions, inbound("u1", text=text), max_chars=10)
    assert reason in str(info.value)
    assert await count(sessions, Message) == 0
    assert await count(sessions, Contact) == 0


async def test_text_at_the_limit_after_stripping_is_accepted(sessions):
    result = await message_record(sessions, inbound("u1", text="  " + "é" * 10 + "\n"), max_chars=10)
    async with sessions() as s:
        assert (await s.get(Message, result.message_id)).text == "é" * 10


async def test_duplicate_delivery_returns_first_ids(sessions):
    first = await message_record(sessions, inbound("u1"))
    again = await message_record(sessions, inbound("u1", text="hello (retried)"))
    assert again.duplicate is True
    assert (again.message_id, again.conversation_id, again.contact_id) == (
        first.message_id, first.conversation_id, first.contact_id)
    assert await count(sessions, Message) == 1


async def test_delivery_id_of_another_sender_is_refused(sessions):
    await message_record(sessions, inbound("u1", contact="alice"))
    with pytest.raises(InvalidMessage, match="another sender"):
        await message_record(sessions, inbound("u1", contact="mallory"))
    assert await count(sessions, Message) == 1


async def test_ten_identical_deliveries_at_once_store_one_of_everything(sessions):
    results = await asyncio.gather(*(message_record(sessions, inbound("same")) for _ in range(10)))
    assert sum(not r.duplicate for r in results) == 1
    assert len({(r.message_id, r.conversation_id, r.contact_id) for r in results}) == 1
    assert await count(sessions, Message) == 1
    assert await count(sessions, Contact) == 1
    assert await count(sessions, Conversation) == 1


async def test_ten_first_messages_of_a_new_contact_at_once_share_one_conversation(sessions):
    results = await asyncio.gather(
        *(message_record(sessions, inbound(f"k{i}", text=f"message {i}")) for i in range(10))
    )
    assert not any(r.duplicate for r in results)
    assert len({r.conversation_id for r in results}) == 1
    assert sum(r.new_conversation for r in results) == 1
    assert await count(sessions, Message) == 10
    assert await count(sessions, Contact) == 1
    assert await count(sessions, Conversation) == 1


async def test_concurrent_messages_after_an_old_resolved_conversation_start_one_new(sessions):
    first = await message_record(sessions, inbound("old"))
    async with sessions() as s:
        await s.exec(sa.update(Conversation).values(status=ConversationStatus.resolved, resolved_at=utc(days=-30)))
        await s.commit()
    results = await asyncio.gather(*(message_record(sessions, inbound(f"n{i}")) for i in range(10)))
    assert len({r.conversation_id for r in results}) == 1
    assert results[0].conversation_id != first.conversation_id
    assert await count(sessions, Conversation) == 2
    assert await count(sessions, Conversation, Conversation.status != ConversationStatus.resolved) == 1


async def test_resolved_conversation_reopens_within_reopen_days(sessions):
    agent = await make_agent(sessions, "a@example.test")
    first = await message_record(sessions, inbound("u1"))
    async with sessions() as s:
        conv = await s.get(Conversation, first.conversation_id)
        await conversation_assign(s, conv, agent, by=agent)
        await conversation_status(s, conv, ConversationStatus.resolved, by=agent)
        await s.commit()
    again = await message_record(sessions, inbound("u2", text="one more thing"), reopen_days=7)
    assert again.conversation_id == first.conversation_id
    assert again.reopened is True and again.new_conversation is False
    conv = await get_conv(sessions, first.conversation_id)
    assert conv.status == ConversationStatus.open and conv.owner == Owner.bot and conv.resolved_at is None
    assert conv.assignee_id == agent.id  # kept: a new escalation returns to the same person
    assert (await audit_actions(sessions, conv.id))[-1] == "conversation.reopened"


async def test_resolved_conversation_older_than_reopen_days_starts_a_new_one(sessions):
    first = await message_record(sessions, inbound("u1"))
    async with sessions() as s:
        conv = await s.get(Conversation, first.conversation_id)
        await conversation_status(s, conv, ConversationStatus.resolved, by=None)
        conv.resolved_at = utc(days=-8)
        await s.commit()
    again = await message_record(sessions, inbound("u2"), reopen_days=7)
    assert again.conversation_id != first.conversation_id and again.new_conversation is True
    assert (await get_conv(sessions, first.conversation_id)).status == ConversationStatus.resolved


async def test_customer_message_wakes_a_snoozed_conversation(sessions):
    first = await message_record(sessions, inbound("u1"))
    async with sessions() as s:
        conv = await s.get(Conversation, first.conversation_id)
        await conversation_status(s, conv, ConversationStatus.snoozed, by=None, snoozed_until=utc(days=2))
        await s.commit()
    again = await message_record(sessions, inbound("u2"))
    assert again.conversation_id == first.conversation_id
    conv = await get_conv(sessions, first.conversation_id)
    assert conv.status == ConversationStatus.open and conv.snoozed_until is None
    assert "conversation.woken" in await audit_actions(sessions, conv.id)


async def test_wake_snoozed_wakes_only_due_conversations(sessions, published, bus):
    a = await message_record(sessions, inbound("u1", contact="a"))
    b = await message_record(sessions, inbound("u2", contact="b"))
    async with sessions() as s:
        for rid, hours in ((a.conversation_id, 1), (b.conversation_id, 5)):
            conv = await s.get(Conversation, rid)
            await conversation_status(s, conv, "snoozed", by=None, snoozed_until=utc(hours=hours))
        await s.commit()
    await bus.wait_idle()  # the snoozes' own events are out before the ones this test looks at
    published.clear()
    async with sessions() as s:
        woken = await conversation_wake_snoozed(s, utc(hours=2))
        await s.commit()
    assert woken == [a.conversation_id]
    assert (await get_conv(sessions, a.conversation_id)).status == ConversationStatus.open
    assert (await get_conv(sessions, b.conversation_id)).status == ConversationStatus.snoozed
    await bus.wait_idle()
    assert [(e.type, e.conversation_id) for e in published] == [("conversation.updated", a.conversation_id)]


async def test_unprocessed_ids_and_mark_processed(sessions):
    r1 = await message_record(sessions, inbound("u1"))
    r2 = await message_record(sessions, inbound("u2"))
    async with sessions() as s:
        assert await unprocessed_message_ids(s) == [r1.message_id, r2.message_id]
        await message_mark_processed(s, r1.message_id)
        await s.commit()
    async with sessions() as s:
        assert await unprocessed_message_ids(s) == [r2.message_id]


async def test_inbound_message_makes_a_blocked_contact_reachable_again(sessions):
    r = await message_record(sessions, inbound("u1"))
    async with sessions() as s:
        await s.exec(sa.update(Contact).values(undeliverable_at=utc()))
        await s.commit()
    await message_record(sessions, inbound("u2"))
    async with sessions() as s:
        assert (await s.get(Contact, r.contact_id)).undeliverable_at is None


# --------------------------------------------------------------------------- outbound and actions


async def test_add_outbound_writes_message_and_pending_outbox_in_callers_transaction(sessions, published, bus):
    r = await message_record(sessions, inbound("u1"))
    await bus.wait_idle()
    published.clear()
    payload = OutboundPayload("Pick one", quick_replies=(QuickReply("Yes", "y"),),
                              attachments=(Attachment("file", "label.pdf", url="https://x.test/l.pdf"),))
    async with sessions() as s:
        conv = await s.get(Conversation, r.conversation_id)
        msg = message_send(s, conv, payload, author=Author.bot)
        await s.flush()
        await bus.wait_idle()
        assert published == []  # not before commit
        await s.commit()
    async with sessions() as s:
        row = (await s.exec(select(OutboxMessage))).one()
        stored = await s.get(Message, msg.id)
    assert row.message_id == msg.id and row.status == OutboxStatus.pending and row.contact_id == r.contact_id
    # the outbox row also says who speaks, so a sender shows it without reading the message back
    assert OutboundPayload.from_json(row.payload) == dataclasses.replace(payload, author="bot")
    assert stored.direction == Direction.outbound and stored.delivery_status == "pending"
    assert stored.quick_replies == [{"label": "Yes", "value": "y"}]
    await bus.wait_idle()
    assert [(e.type, e.data["message_id"], e.data["direction"]) for e in published] == [
        ("message.created", msg.id, "out")]


async def test_rolled_back_action_publishes_nothing_and_leaves_nothing(sessions, published, bus):
    agent = await make_agent(sessions, "a@example.test")
    r = await message_record(sessions, inbound("u1"))
    await bus.wait_idle()
    published.clear()
    async with sessions() as s:
        conv = await s.get(Conversation, r.conversation_id)
        await agent_reply(s, conv, agent, "hello")
        await s.rollback()
    await bus.wait_idle()
    assert published == []
    assert await count(sessions, OutboxMessage) == 0
    assert await count(sessions, AuditEvent, AuditEvent.action == "message.agent_reply") == 0


async def test_agent_reply_takes_ownership_and_sets_first_response_once(sessions, published, bus):
    agent = await make_agent(sessions, "a@example.test")
    r = await message_record(sessions, inbound("u1"))
    async with sessions() as s:
        conv = await s.get(Conversation, r.conversation_id)
        first = await agent_reply(s, conv, agent, " On it!\r\n")
        await s.commit()
    conv = await get_conv(sessions, r.conversation_id)
    assert conv.owner == Owner.agent and conv.assignee_id == agent.id and conv.first_response_at is not None
    first_response = conv.first_response_at
    async with sessions() as s:
        conv = await s.get(Conversation, r.conversation_id)
        await agent_reply(s, conv, agent, "Found it.")
        await s.commit()
    assert (await get_conv(sessions, r.conversation_id)).first_response_at == first_response
    async with sessions() as s:
        msg = await s.get(Message, first.id)
        outbox = (await s.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
    assert msg.text == "On it!" and msg.author == Author.agent and msg.agent_id == agent.id
    assert [o.message_id for o in outbox][0] == first.id and len(outbox) == 2
    assert (await audit_actions(sessions, r.conversation_id)).count("message.agent_reply") == 2
    await bus.wait_idle()
    assert "conversation.assigned" in [e.type for e in published]
    with pytest.raises(InvalidMessage):
        async with sessions() as s:
            conv = await s.get(Conversation, r.conversation_id)
            await agent_reply(s, conv, agent, "   ")


async def test_note_is_internal_and_never_queued(sessions):
    agent = await make_agent(sessions, "a@example.test")
    r = await message_record(sessions, inbound("u1"))
    async with sessions() as s:
        conv = await s.get(Conversation, r.conversation_id)
        note = await message_note(s, conv, agent, "customer sounds upset")
        await s.commit()
    async with sessions() as s:
        stored = await s.get(Message, note.id)
    assert stored.is_internal is True and stored.delivery_status is None
    assert await count(sessions, OutboxMessage) == 0
    assert "message.note" in await audit_actions(sessions, r.conversation_id)


async def test_escalate_and_hand_back_move_ownership(sessions, published, bus):
    r = await message_record(sessions, inbound("u1"))
    async with sessions() as s:
        conv = await s.get(Conversation, r.conversation_id)
        await conversation_priority(s, conv, Priority.high, by=None)
        await conversation_escalate(s, conv, priority=Priority.normal, summary="wants a refund\x00", reason="refund")
        await s.commit()
    conv = await get_conv(sessions, r.conversation_id)
    assert conv.owner == Owner.agent and conv.assignee_id is None  # the unassigned queue
    assert conv.priority == Priority.high  # escalation never lowers the priority
    assert conv.summary == "wants a refund"
    await bus.wait_idle()
    escalated = [e for e in published if e.type == "conversation.escalated"]
    assert len(escalated) == 1 and escalated[0].data["reason"] == "refund"

    agent = await make_agent(sessions, "a@example.test")
    async with sessions() as s:
        conv = await s.get(Conversation, r.conversation_id)
        await conversation_claim(s, conv, agent)
        await conversation_escalate(s, conv, priority="urgent", summary="again", reason="angry")
        await s.commit()
    conv = await get_conv(sessions, r.conversation_id)
    assert conv.assignee_id == agent.id and conv.priority == Priority.urgent  # stays with the agent who has it

    async with sessions() as s:
        conv = await s.get(Conversation, r.conversation_id)
        await conversation_handback(s, conv, agent)
        await s.commit()
    conv = await get_conv(sessions, r.conversation_id)
    assert conv.owner == Owner.bot and conv.assignee_id is None
    assert await audit_actions(sessions, r.conversation_id) == [
        "conversation.created", "conversation.priority", "conversation.escalated", "conversation.claimed",
        "conversation.escalated", "conversation.handed_back"]


async def test_concurrent_claims_have_one_winner(sessions):
    a = await make_agent(sessions, "a@example.test")
    b = await make_agent(sessions, "b@example.test")
    r = await message_record(sessions, inbound("u1"))

    async def try_claim(agent: Agent) -> bool:
        async with sessions() as s:
            conv = await s.get(Conversation, r.conversation_id)
            try:
                await conversation_claim(s, conv, agent)
            except Refused as refusal:
                assert refusal.code == "taken"
                return False
            await s.commit()
            return True

    results = await asyncio.gather(try_claim(a), try_claim(b))
    assert sorted(results) == [False, True]
    winner = a if results[0] else b
    assert (await get_conv(sessions, r.conversation_id)).assignee_id == winner.id
    assert await count(sessions, AuditEvent, AuditEvent.action == "conversation.claimed") == 1


async def test_assign_status_priority_labels_write_audit_and_events(sessions, published, bus):
    admin = await make_agent(sessions, "boss@example.test", admin=True)
    agent = await make_agent(sessions, "a@example.test")
    r = await message_record(sessions, inbound("u1"))
    await bus.wait_idle()
    published.clear()
    async with sessions() as s:
        conv = await s.get(Conversation, r.conversation_id)
        before = conv.updated_at
        await conversation_assign(s, conv, agent, by=admin)
        await conversation_labels(s, conv, [" VIP ", "vip", "damaged"], by=admin)
        await conversation_priority(s, conv, "urgent", by=admin)
        await conversation_status(s, conv, "pending", by=admin)
        await conversation_status(s, conv, ConversationStatus.resolved, by=admin)
        await conversation_assign(s, conv, None, by=admin)
        await s.commit()
    conv = await get_conv(sessions, r.conversation_id)
    assert conv.labels == ["vip", "damaged"] and conv.priority == Priority.urgent
    assert conv.status == ConversationStatus.resolved and conv.resolved_at is not None
    assert conv.updated_at > before and conv.assignee_id is None
    async with sessions() as s:
        audits = (await s.exec(select(AuditEvent).where(AuditEvent.conversation_id == conv.id)
                               .order_by(col(AuditEvent.id)))).all()
    assert [a.action for a in audits][1:] == [
        "conversation.assigned", "conversation.labels", "conversation.priority", "conversation.status",
        "conversation.status", "conversation.assigned"]
    assert all(a.agent_id == admin.id and a.actor == "agent" for a in audits[1:])
    assert audits[2].detail == {"added": ["vip", "damaged"], "removed": []}
    await bus.wait_idle()
    assert [e.type for e in published] == [
        "conversation.assigned", "conversation.updated", "conversation.updated", "conversation.updated",
        "conversation.updated", "conversation.assigned"]


async def test_invalid_actions_are_refused(sessions):
    r1 = await message_record(sessions, inbound("u1"))
    async with sessions() as s:
        conv = await s.get(Conversation, r1.conversation_id)
        with pytest.raises(Refused):
            await conversation_status(s, conv, "snoozed", by=None, snoozed_until=utc(hours=-1))
        with pytest.raises(Refused):
            await conversation_status(s, conv, "nonsense", by=None)
        with pytest.raises(Refused):
            await conversation_priority(s, conv, "critical", by=None)
        await conversation_status(s, conv, "resolved", by=None)
        await s.commit()
    r2 = await message_record(sessions, inbound("u2"), reopen_days=0)
    assert r2.conversation_id != r1.conversation_id
    async with sessions() as s:
        old = await s.get(Conversation, r1.conversation_id)
        with pytest.raises(Refused, match="already has an active conversation"):
            await conversation_status(s, old, "open", by=None)


async def test_link_contact_to_customer(sessions, published, bus):
    r = await message_record(sessions, inbound("u1"))
    async with sessions() as s:
        customer = Customer(first_name="Ann")
        s.add(customer)
        await s.flush()
        contact = await s.get(Contact, r.contact_id)
        await contact_link(s, contact, customer.id)
        await s.commit()
    async with sessions() as s:
        contact = await s.get(Contact, r.contact_id)
    assert contact.customer_id == customer.id and contact.verified_at is not None
    assert "contact.verified" in await audit_actions(sessions, r.conversation_id)
    await bus.wait_idle()
    assert any(e.type == "contact.updated" and e.data["customer_id"] == customer.id for e in published)


async def test_verified_web_visitor_is_shown_by_the_customers_name(sessions, bus):
    web = dict(channel=Channel.webchat, contact="visitor-1", display_name="Web visitor 7F3A")
    tg = dict(channel=Channel.telegram, contact="tg-7", display_name="Lan on Telegram")
    r_web = await message_record(sessions, inbound("w1", **web))
    r_tg = await message_record(sessions, inbound("t1", **tg))
    async with sessions() as s:
        customer = Customer(first_name="Lan", last_name="Pham")
        s.add(customer)
        await s.flush()
        for r in (r_web, r_tg):
            await contact_link(s, await s.get(Contact, r.contact_id), customer.id)
        await s.commit()
    # the widget keeps sending its placeholder label; a verified visitor keeps the customer's name
    await message_record(sessions, inbound("w2", **web))
    await message_record(sessions, inbound("t2", **{**tg, "display_name": "Lan P."}))
    async with sessions() as s:
        assert (await s.get(Contact, r_web.contact_id)).display_name == "Lan Pham"
        assert (await s.get(Contact, r_tg.contact_id)).display_name == "Lan P."  # Telegram names its users


# --------------------------------------------------------------------------- reads


class QueryCounter:
    def __init__(self, engine: Any) -> None:
        self.statements: list[str] = []
        self.engine = engine

    def __enter__(self) -> QueryCounter:
        sa.event.listen(self.engine.sync_engine, "before_cursor_execute", self._on)
        return self

    def __exit__(self, *exc: Any) -> None:
        sa.event.remove(self.engine.sync_engine, "before_cursor_execute", self._on)

    def _on(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            self.statements.append(statement)


async def seed_inbox(sessions: Any) -> dict[str, Any]:
    """Five conversations: two unassigned escalated (urgent older, normal newer), one mine, one bot, one resolved."""
    me = await make_agent(sessions, "me@example.test", name="Me")
    ids = {}
    for i, (name, text) in enumerate([("Urgent Ursula", "my parcel arrived damaged"),
                                      ("Normal Nora", "where is order 1001"),
                                      ("Mine Max", "x" * 300),
                                      ("Bot Bea", "what are your opening hours"),
                                      ("Done Dora", "thanks, all good")]):
        r = await message_record(sessions, inbound(f"s{i}", contact=f"c{i}", text=text, display_name=name,
                                                         channel=Channel.webchat if i == 3 else Channel.telegram))
        ids[name.split()[0].lower()] = r.conversation_id
        await asyncio.sleep(0.002)  # distinct last_message_at
    async with sessions() as s:
        conv = await s.get(Conversation, ids["urgent"])
        await conversation_escalate(s, conv, priority="urgent", summary="damaged", reason="damage")
        conv.last_message_at = utc(hours=-1)
        conv = await s.get(Conversation, ids["normal"])
        await conversation_escalate(s, conv, priority="normal", summary="wismo", reason="asked_human")
        conv.last_intent = "track_order"
        conv = await s.get(Conversation, ids["mine"])
        await conversation_assign(s, conv, me, by=me)
        await conversation_labels(s, conv, ["vip"], by=me)
        conv = await s.get(Conversation, ids["done"])
        await conversation_status(s, conv, "resolved", by=me)
        await s.commit()
    async with sessions() as s:
        conv = await s.get(Conversation, ids["mine"])
        await message_note(s, conv, me, "internal note is not a preview")
        await s.commit()
    return {"me": me, **ids}


async def test_views_order_previews_and_unread(sessions, engine):
    seeded = await seed_inbox(sessions)
    me = seeded["me"]
    async with sessions() as s:
        queue = await list_conversations(s, me, view="unassigned")
        mine = await list_conversations(s, me, view="mine")
        everything = await list_conversations(s, me, view="all")
        with QueryCounter(engine) as counter:
            rows = await list_conversations(s, me, view="all", status="open")
    assert [r.id for r in queue] == [seeded["urgent"], seeded["normal"]]  # priority first, then activity
    assert [r.id for r in mine] == [seeded["mine"]]
    assert len(everything) == 5 and everything[-1].id == seeded["urgent"]  # last activity an hour ago
    assert len(counter.statements) == 2  # rows + last messages: no query per row
    assert {r.id for r in rows} == {seeded[k] for k in ("urgent", "normal", "mine", "bot")}
    row = mine[0]
    assert row.contact_name == "Mine Max" and row.assignee_name == "Me" and row.labels == ("vip",)
    assert row.preview == "x" * 140 and row.unread is True
    assert queue[1].last_intent == "track_order" and queue[0].priority == Priority.urgent


async def test_filters_counts_and_search(sessions, engine):
    seeded = await seed_inbox(sessions)
    me = seeded["me"]
    async with sessions() as s:
        assert [r.id for r in await list_conversations(s, me, channel="webchat")] == [seeded["bot"]]
        assert [r.id for r in await list_conversations(s, me, label="vip")] == [seeded["mine"]]
        assert [r.id for r in await list_conversations(s, me, intent="track_order")] == [seeded["normal"]]
        assert [r.id for r in await list_conversations(s, me, priority="urgent")] == [seeded["urgent"]]
        assert [r.id for r in await list_conversations(s, me, q="DAMAGED parcel")] == [seeded["urgent"]]
        assert [r.id for r in await list_conversations(s, me, q="nora")] == [seeded["normal"]]  # name
        assert await list_conversations(s, me, q="parcel opening") == []  # all words must match
        for hostile in ['"', 'a"b', "AND", "NEAR(x y)", "*", "col:val", "' OR 1=1 --", "(", "\x00", "%_"]:
            await list_conversations(s, me, q=hostile)  # never a syntax error
        with pytest.raises(InvalidQuery):
            await list_conversations(s, me, view="everything")  # type: ignore[arg-type]
        with pytest.raises(InvalidQuery):
            await list_conversations(s, me, status="closed")
        with QueryCounter(engine) as counter:
            counts = await count_conversations(s, me, status="open")
    assert len(counter.statements) == 1
    assert counts == {"mine": 1, "unassigned": 2, "all": 4, "open": 4, "pending": 0, "snoozed": 0, "resolved": 1}
    async with sessions() as s:
        assert (await count_conversations(s, me, view="unassigned"))["open"] == 2


async def test_keyset_pagination(sessions):
    seeded = await seed_inbox(sessions)
    me = seeded["me"]
    async with sessions() as s:
        full = [r.id for r in await list_conversations(s, me, view="all")]
        pages: list[int] = []
        before = None
        while True:
            page = await list_conversations(s, me, view="all", limit=2, before=before)
            if not page:
                break
            pages += [r.id for r in page]
            before = page[-1].cursor
        queue = await list_conversations(s, me, view="unassigned", limit=1)
        rest = await list_conversations(s, me, view="unassigned", before=queue[0].cursor)
        with pytest.raises(InvalidQuery):
            await list_conversations(s, me, before="garbage")
    assert pages == full
    assert [r.id for r in queue + rest] == [seeded["urgent"], seeded["normal"]]


async def test_access_is_limited_to_own_team_unassigned_teams_and_assignments(sessions):
    admin = await make_agent(sessions, "admin@example.test", admin=True)
    alice = await make_agent(sessions, "alice@example.test", team="A")
    bob = await make_agent(sessions, "bob@example.test", team="B")
    loner = await make_agent(sessions, "loner@example.test")
    ra = await message_record(sessions, inbound("u1", contact="x"))
    rb = await message_record(sessions, inbound("u2", contact="y"))
    rn = await message_record(sessions, inbound("u3", contact="z"))
    async with sessions() as s:
        (await s.get(Conversation, ra.conversation_id)).team_id = alice.team_id
        (await s.get(Conversation, rb.conversation_id)).team_id = bob.team_id
        await s.commit()
    async with sessions() as s:
        assert await get_conversation(s, alice, rb.conversation_id) is None
        assert (await get_conversation(s, admin, rb.conversation_id)).id == rb.conversation_id
        assert (await get_conversation(s, alice, ra.conversation_id)).id == ra.conversation_id
        assert (await get_conversation(s, alice, rn.conversation_id)).id == rn.conversation_id
        assert await get_conversation(s, alice, 999999) is None
        assert await get_conversation(s, loner, ra.conversation_id) is None
        assert {r.id for r in await list_conversations(s, alice)} == {ra.conversation_id, rn.conversation_id}
        assert {r.id for r in await list_conversations(s, alice, q="hello")} == {ra.conversation_id,
                                                                                      rn.conversation_id}
        assert (await count_conversations(s, alice))["all"] == 2
        assert (await count_conversations(s, admin))["all"] == 3
        conv_b = await s.get(Conversation, rb.conversation_id)
        with pytest.raises(Refused):
            await conversation_assign(s, conv_b, alice, by=admin)  # alice could not even see it
        await conversation_assign(s, conv_b, bob, by=admin)
        await s.commit()
    bob.is_active = False
    async with sessions() as s:
        assert await get_conversation(s, bob, rb.conversation_id) is None


async def test_transcript_is_chronological_and_limited(sessions):
    agent = await make_agent(sessions, "a@example.test")
    r = await message_record(sessions, inbound("u1", text="one"))
    async with sessions() as s:
        conv = await s.get(Conversation, r.conversation_id)
        await agent_reply(s, conv, agent, "two")
        await message_note(s, conv, agent, "three")
        await s.commit()
    await message_record(sessions, inbound("u2", text="four"))
    async with sessions() as s:
        assert [m.text for m in await transcript(s, r.conversation_id)] == ["one", "two", "three", "four"]
        assert [m.text for m in await transcript(s, r.conversation_id, limit=2)] == ["three", "four"]
        assert [m.text for m in await transcript(s, r.conversation_id, include_internal=False)] == [
            "one", "two", "four"]


async def test_search_index_follows_updates_and_deletes(sessions):
    agent = await make_agent(sessions, "a@example.test", admin=True)
    r = await message_record(sessions, inbound("u1", text="alpha"))
    other = await message_record(sessions, inbound("u2", text="charlie"))
    async with sessions() as s:
        (await s.get(Message, r.message_id)).text = "bravo"  # an ORM change re-derives search_text
        await s.exec(sa.delete(Message).where(col(Message.id) == other.message_id))
        await s.commit()
    async with sessions() as s:
        assert await list_conversations(s, agent, q="alpha") == []
        assert await list_conversations(s, agent, q="charlie") == []
        assert [x.id for x in await list_conversations(s, agent, q="bravo")] == [r.conversation_id]


def test_fts5_query_quotes_every_token():
    assert fts5_query('say "hi" OR NEAR(x)') == '"say"* AND "hi"* AND "or"* AND "near"* AND "x"'
    assert fts5_query("  ") is None
    assert fts5_query('" \' -') is None


async def test_database_is_locked_is_retried_and_other_errors_are_not(sessions, monkeypatch):
    import sqlite3

    from sqlalchemy.exc import OperationalError

    real = message_record_module._record
    calls = 0

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise OperationalError("INSERT INTO message ...", {}, sqlite3.OperationalError("database is locked"))
        return await real(*args, **kwargs)

    monkeypatch.setattr(message_record_module, "_record", flaky)
    result = await message_record(sessions, inbound("u1"))
    assert calls == 3 and result.duplicate is False
    assert await count(sessions, Message) == 1

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT ...", {}, sqlite3.OperationalError("no such table: message"))

    monkeypatch.setattr(message_record_module, "_record", broken)
    with pytest.raises(OperationalError):  # a new customer (on PostgreSQL a known one's is one statement)
        await message_record(sessions, inbound("u2", contact="tg-200"))
