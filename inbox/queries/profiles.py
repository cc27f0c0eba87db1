"""Customer profiles as agents read them: who the customer is on every channel, their lifetime
orders and spend, returns and reasons, every conversation on a timeline, notes, tags, merges;
and the open conversations of a customer for the conversation list's badge."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import cast

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import (
    Agent,
    Contact,
    Conversation,
    ConversationStatus,
    CustomerIdentity,
    CustomerMerge,
    CustomerNote,
    CustomerProfile,
)
from inbox.queries.access import access_condition
from inbox.queries.customers import verified_customer_id
from ordersvc.models import Customer, Order, ReturnAuthorization, ReturnLine

__all__ = [
    "TIMELINE_LIMIT",
    "ReturnSummary",
    "TimelineEntry",
    "NoteEntry",
    "MergeEntry",
    "ProfileView",
    "ProfileSummary",
    "profile_id_of_contact",
    "profile_contact_ids",
    "profile_customer_ids",
    "load_profile",
    "load_contact_profile",
    "profile_summary",
    "open_groups",
    "profile_visible",
]

TIMELINE_LIMIT = 200


@dataclass
class ReturnSummary:
    rma_number: str
    order_name: str
    status: str
    requested_at: datetime
    reasons: list[str]


@dataclass
class TimelineEntry:
    conversation_id: int
    channel: str
    status: str
    created_at: datetime
    last_message_at: datetime
    last_intent: str | None
    contact_name: str


@dataclass
class NoteEntry:
    id: int
    body: str
    agent_name: str
    created_at: datetime


@dataclass
class MergeEntry:
    id: int
    source_id: int
    source_name: str
    agent_name: str
    created_at: datetime


@dataclass
class ProfileView:
    profile: CustomerProfile | None
    name: str
    contacts: list[Contact]
    customers: list[Customer]
    order_count: int = 0
    spend: list[tuple[Decimal, str]] = field(default_factory=list)
    returns: list[ReturnSummary] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    notes: list[NoteEntry] = field(default_factory=list)
    merges: list[MergeEntry] = field(default_factory=list)
    hidden_conversations: int = 0

    @property
    def emails(self) -> list[str]:
        return [c.email for c in self.customers if c.email]

    @property
    def open_count(self) -> int:
        return sum(1 for t in self.timeline if t.status != ConversationStatus.resolved.value)


@dataclass
class ProfileSummary:
    """What the conversation sidebar shows about the customer."""

    profile_id: int | None
    contact_id: int
    order_count: int
    spend: list[tuple[Decimal, str]]
    returns: list[ReturnSummary]
    conversation_count: int
    open_count: int
    tags: list[str]
    notes: list[NoteEntry]
    channels: list[str]


async def profile_id_of_contact(session: AsyncSession, contact_id: int) -> int | None:
    stmt = select(CustomerIdentity.profile_id).where(col(CustomerIdentity.contact_id) == contact_id)
    return (await session.exec(stmt)).first()


async def profile_contact_ids(session: AsyncSession, profile_id: int) -> list[int]:
    stmt = select(CustomerIdentity.contact_id).where(
        col(CustomerIdentity.profile_id) == profile_id, col(CustomerIdentity.contact_id).is_not(None))
    return sorted(int(c) for c in (await session.exec(stmt)).all() if c is not None)


async def profile_customer_ids(session: AsyncSession, profile_id: int) -> list[int]:
    stmt = select(CustomerIdentity.customer_id).where(
        col(CustomerIdentity.profile_id) == profile_id, col(CustomerIdentity.customer_id).is_not(None))
    return sorted(int(c) for c in (await session.exec(stmt)).all() if c is not None)


def _name(customers: list[Customer], contacts: list[Contact], fallback: str) -> str:
    for customer in customers:
        if customer.first_name or customer.last_name:
            return customer.display_name
    for contact in contacts:
        if contact.display_name:
            return contact.display_name
        if contact.username:
            return f"@{contact.username}"
    return fallback


async def _orders(session: AsyncSession, customer_ids: list[int]) -> tuple[int, list[tuple[Decimal, str]]]:
    """Lifetime orders (cancelled ones count as orders but not as spend) and spend per currency."""
    if not customer_ids:
        return 0, []
    count = (await session.exec(select(sa.func.count()).select_from(Order).where(
        col(Order.customer_id).in_(customer_ids)))).one()
    stmt = (
        select(col(Order.currency), col(Order.total_price))
        .where(col(Order.customer_id).in_(customer_ids), col(Order.cancelled_at).is_(None))
    )
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for currency, total in (await session.exec(stmt)).all():
        totals[currency] += Decimal(total or 0)
    return int(count), sorted(((amount, currency) for currency, amount in totals.items()), key=lambda t: t[1])


async def _returns(session: AsyncSession, customer_ids: list[int]) -> list[ReturnSummary]:
    if not customer_ids:
        return []
    stmt = (
        select(ReturnAuthorization, Order.name)
        .join(Order, col(Order.id) == ReturnAuthorization.order_id)
        .where(col(ReturnAuthorization.customer_id).in_(customer_ids))
        .order_by(col(ReturnAuthorization.requested_at).desc())
        .limit(50)
    )
    rows = list((await session.exec(stmt)).all())
    rma_ids = [rma.id for rma, _ in rows]
    reasons: dict[int, list[str]] = defaultdict(list)
    if rma_ids:
        for rma_id, reason in (await session.exec(
                select(ReturnLine.rma_id, ReturnLine.reason).where(col(ReturnLine.rma_id).in_(rma_ids)))).all():
            value = getattr(reason, "value", reason)
            if value not in reasons[rma_id]:
                reasons[rma_id].append(value)
    return [
        ReturnSummary(rma_number=rma.rma_number, order_name=name, status=getattr(rma.status, "value", rma.status),
                      requested_at=rma.requested_at, reasons=reasons.get(rma.id or 0, []))
        for rma, name in rows
    ]


async def _timeline(
    session: AsyncSession, agent: Agent, contacts: list[Contact]
) -> tuple[list[TimelineEntry], int]:
    """The contacts' conversations the agent may see, newest first; and how many are hidden."""
    ids = [c.id for c in contacts if c.id is not None]
    if not ids:
        return [], 0
    names = {c.id: c.display_name or (f"@{c.username}" if c.username else "") for c in contacts}
    stmt = (
        select(Conversation)
        .where(col(Conversation.contact_id).in_(ids), access_condition(agent))
        .order_by(col(Conversation.last_message_at).desc(), col(Conversation.id).desc())
        .limit(TIMELINE_LIMIT)
    )
    rows = list((await session.exec(stmt)).all())
    total = (await session.exec(select(sa.func.count()).select_from(Conversation).where(
        col(Conversation.contact_id).in_(ids)))).one()
    visible = len(rows) if len(rows) < TIMELINE_LIMIT else (await session.exec(
        select(sa.func.count()).select_from(Conversation).where(
            col(Conversation.contact_id).in_(ids), access_condition(agent)))).one()
    timeline = [
        TimelineEntry(conversation_id=c.id or 0, channel=getattr(c.channel, "value", c.channel),
                      status=getattr(c.status, "value", c.status), created_at=c.created_at,
                      last_message_at=c.last_message_at, last_intent=c.last_intent,
                      contact_name=names.get(c.contact_id, ""))
        for c in rows
    ]
    return timeline, max(0, int(total) - int(visible))


async def _notes(session: AsyncSession, profile_id: int) -> list[NoteEntry]:
    stmt = (
        select(CustomerNote, Agent.name, Agent.email)
        .outerjoin(Agent, col(Agent.id) == CustomerNote.agent_id)
        .where(col(CustomerNote.profile_id) == profile_id)
        .order_by(col(CustomerNote.created_at).desc(), col(CustomerNote.id).desc())
        .limit(100)
    )
    return [
        NoteEntry(id=note.id or 0, body=note.body, agent_name=name or (email or "").split("@", 1)[0],
                  created_at=note.created_at)
        for note, name, email in (await session.exec(stmt)).all()
    ]


async def _merges(session: AsyncSession, profile_id: int) -> list[MergeEntry]:
    stmt = (
        select(CustomerMerge, CustomerProfile.display_name, Agent.name, Agent.email)
        .join(CustomerProfile, col(CustomerProfile.id) == CustomerMerge.source_id)
        .outerjoin(Agent, col(Agent.id) == CustomerMerge.agent_id)
        .where(col(CustomerMerge.target_id) == profile_id, col(CustomerMerge.undone_at).is_(None))
        .order_by(col(CustomerMerge.created_at).desc())
    )
    return [
        MergeEntry(id=m.id or 0, source_id=m.source_id, source_name=source_name or f"#{m.source_id}",
                   agent_name=name or (email or "").split("@", 1)[0], created_at=m.created_at)
        for m, source_name, name, email in (await session.exec(stmt)).all()
    ]


async def _load(
    session: AsyncSession, agent: Agent, profile: CustomerProfile | None, contacts: list[Contact],
    customer_ids: list[int],
) -> ProfileView:
    customers = (
        list((await session.exec(select(Customer).where(col(Customer.id).in_(customer_ids)))).all())
        if customer_ids else []
    )
    fallback = f"Customer #{profile.id}" if profile is not None else "Customer"
    view = ProfileView(profile=profile, name=_name(customers, contacts, profile.display_name if profile and
                                                   profile.display_name else fallback),
                       contacts=contacts, customers=customers)
    view.order_count, view.spend = await _orders(session, customer_ids)
    view.returns = await _returns(session, customer_ids)
    view.timeline, view.hidden_conversations = await _timeline(session, agent, contacts)
    if profile is not None and profile.id is not None:
        view.notes = await _notes(session, profile.id)
        view.merges = await _merges(session, profile.id)
    return view


async def load_profile(session: AsyncSession, agent: Agent, profile_id: int) -> ProfileView | None:
    """The profile as its page shows it, or None when there is no such profile."""
    profile = await session.get(CustomerProfile, profile_id)
    if profile is None:
        return None
    contact_ids = await profile_contact_ids(session, profile_id)
    contacts = (
        list((await session.exec(select(Contact).where(col(Contact.id).in_(contact_ids)).order_by(
            col(Contact.id)))).all()) if contact_ids else []
    )
    return await _load(session, agent, profile, contacts, await profile_customer_ids(session, profile_id))


async def load_contact_profile(session: AsyncSession, agent: Agent, contact: Contact) -> ProfileView:
    """A contact that has no profile yet, shown the same way (itself and its verified customer)."""
    customer_id = verified_customer_id(contact)
    return await _load(session, agent, None, [contact], [customer_id] if customer_id is not None else [])


async def profile_summary(session: AsyncSession, agent: Agent, contact: Contact) -> ProfileSummary:
    """The sidebar's customer block for the conversation's contact."""
    assert contact.id is not None
    profile_id = await profile_id_of_contact(session, contact.id)
    if profile_id is not None:
        view = await load_profile(session, agent, profile_id)
        assert view is not None
    else:
        view = await load_contact_profile(session, agent, contact)
    return ProfileSummary(
        profile_id=profile_id, contact_id=contact.id, order_count=view.order_count, spend=view.spend,
        returns=view.returns[:5], conversation_count=len(view.timeline) + view.hidden_conversations,
        open_count=view.open_count, tags=list(view.profile.tags) if view.profile else [],
        notes=view.notes[:3], channels=sorted({getattr(c.channel, "value", c.channel) for c in view.contacts}),
    )


def _open_groups_statement() -> sa.Select[tuple[int, int, int]]:
    identity = cast(sa.Table, CustomerIdentity.__table__)  # type: ignore[attr-defined]
    me, mate = identity.alias("me"), identity.alias("mate")
    opened = sa.func.count(col(Conversation.id))
    return (
        sa.select(me.c.contact_id, me.c.profile_id, opened)
        .join(mate, sa.and_(mate.c.profile_id == me.c.profile_id, mate.c.contact_id.is_not(None)))
        .join(Conversation, sa.and_(col(Conversation.contact_id) == mate.c.contact_id,
                                    col(Conversation.status) != ConversationStatus.resolved))
        .where(me.c.contact_id.in_(sa.bindparam("contact_ids", expanding=True)))
        .group_by(me.c.contact_id, me.c.profile_id)
        .having(opened > 1)
    )


_OPEN_GROUPS = _open_groups_statement()  # built once: building it costs more than running it


async def open_groups(session: AsyncSession, contact_ids: list[int]) -> dict[int, tuple[int, int]]:
    """For the conversation list: contact id -> (profile id, open conversations of that profile),
    only for contacts whose profile has more than one open conversation. One statement over the
    page's contacts, each step index-backed: the identity by contact (unique), the profile's other
    identities (``ix_customer_identity_profile_id``), their active conversation (the partial
    unique index ``uq_conversation_active_contact``)."""
    if not contact_ids:
        return {}
    rows = (await session.exec(_OPEN_GROUPS, params={"contact_ids": list(contact_ids)})).all()  # type: ignore[call-overload]
    return {int(cid): (int(pid), int(n)) for cid, pid, n in rows}


async def profile_visible(session: AsyncSession, agent: Agent, profile_id: int) -> bool:
    """May ``agent`` open the profile? Admins: any. Other agents: a profile (or the one it was
    merged into) with at least one conversation they may see (the inbox's one access rule)."""
    if not agent.is_active:
        return False
    if agent.is_admin:
        return True
    seen: set[int] = set()
    current = await session.get(CustomerProfile, profile_id)
    while current is not None and current.merged_into_id is not None and current.merged_into_id not in seen:
        seen.add(current.merged_into_id)
        current = await session.get(CustomerProfile, current.merged_into_id)
    if current is None or current.id is None:
        return False
    contact_ids = await profile_contact_ids(session, current.id)
    if not contact_ids:
        return False
    stmt = select(Conversation.id).where(col(Conversation.contact_id).in_(contact_ids),
                                         access_condition(agent)).limit(1)
    return (await session.exec(stmt)).first() is not None
