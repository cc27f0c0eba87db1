"""What every action shares: the audit row, the conversation event, the internal transcript
line, and the checks that several actions make (a conversation may become active again; an
order belongs to the conversation's verified customer)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.events import Event, EventType, collect
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
    Owner,
    Priority,
)
from inbox.queries.customers import verified_customer_id
from ordersvc.models import Order
from shopbase.clock import utcnow
from shopbase.refusal import Refused

__all__ = [
    "PREVIEW_CHARS",
    "NAMELESS_CHANNELS",
    "write_audit",
    "customer_changed",
    "conversation_event",
    "message_event",
    "touch",
    "add_internal_line",
    "add_system_line",
    "agent_name",
    "make_active",
    "parse_priority",
    "parse_status",
    "order_for_conversation",
]

PREVIEW_CHARS = 140
SYSTEM_LINE_CHARS = 2000
# Channels whose contacts carry no name of their own: once verified, the customer's name is shown.
NAMELESS_CHANNELS = frozenset({Channel.webchat})


def customer_changed(session: AsyncSession, *profile_ids: int | None) -> None:
    """Tell the agents' open tabs (after commit) that these customer profiles changed."""
    ids = sorted({int(p) for p in profile_ids if p is not None})
    if ids:
        collect(session, Event(EventType.customer_updated.value, None, {"profile_ids": ids}))


def write_audit(
    session: AsyncSession,
    conversation_id: int | None,
    action: str,
    *,
    agent: Agent | None = None,
    actor: str | None = None,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEvent:
    """Add one audit row (ids and states only, never message text or emails)."""
    audit = AuditEvent(
        conversation_id=conversation_id,
        agent_id=agent.id if agent is not None else None,
        actor=actor or ("agent" if agent is not None else "system"),
        action=action,
        detail=detail or {},
        created_at=now or utcnow(),
    )
    session.add(audit)
    return audit


def conversation_event(kind: EventType, conversation: Conversation, **data: Any) -> Event:
    """A conversation event carrying its state (status, owner, priority, assignee) plus ``data``."""
    base: dict[str, Any] = {
        "status": ConversationStatus(conversation.status).value,
        "owner": Owner(conversation.owner).value,
        "priority": Priority(conversation.priority).value,
        "assignee_id": conversation.assignee_id,
    }
    base.update(data)
    return Event(kind.value, conversation.id, base)


def message_event(session: AsyncSession, message: Message, conversation_id: int | None, **extra: Any) -> None:
    """Collect ``message.created`` for ``message``; built after commit, so the id is known."""

    def build() -> Event:
        data: dict[str, Any] = {
            "message_id": message.id,
            "direction": Direction(message.direction).value,
            "author": Author(message.author).value,
        }
        data.update(extra)
        return Event(EventType.message_created.value, conversation_id, data)

    collect(session, build)


def touch(session: AsyncSession, conversation: Conversation, now: datetime) -> None:
    conversation.updated_at = now
    session.add(conversation)


def add_internal_line(
    session: AsyncSession,
    conversation: Conversation,
    text: str,
    *,
    author: Author,
    agent: Agent | None,
    preview: str = "",
) -> Message:
    """A line in the transcript that is never sent to the customer (a note, a system line)."""
    now = utcnow()
    line = Message(
        conversation_id=conversation.id,  # type: ignore[arg-type]
        channel=conversation.channel,
        direction=Direction.outbound,
        author=author,
        agent_id=agent.id if agent is not None else None,
        is_internal=True,
        text=text,
        processed=True,
        created_at=now,
    )
    session.add(line)
    touch(session, conversation, now)
    extra: dict[str, Any] = {"agent_id": agent.id} if author == Author.agent and agent is not None else {}
    message_event(session, line, conversation.id, **extra, is_internal=True, preview=preview)
    return line


def add_system_line(
    session: AsyncSession, conversation: Conversation, text: str, *, agent: Agent | None
) -> Message:
    """An internal line in the transcript saying what was done (never sent to the customer)."""
    return add_internal_line(session, conversation, text[:SYSTEM_LINE_CHARS], author=Author.system, agent=agent)


def agent_name(agent: Agent) -> str:
    """How a transcript line names an agent."""
    return agent.name or agent.email.split("@", 1)[0]


async def make_active(session: AsyncSession, conversation: Conversation) -> None:
    """Check that a resolved conversation may become active again (one active per contact)."""
    if conversation.status != ConversationStatus.resolved:
        return
    other = (
        await session.exec(
            select(Conversation.id).where(
                Conversation.contact_id == conversation.contact_id,
                Conversation.status != ConversationStatus.resolved,
                Conversation.id != conversation.id,
            )
        )
    ).first()
    if other is not None:
        raise Refused("other_active", f"this customer already has an active conversation (#{other})")
    conversation.resolved_at = None


def parse_priority(value: Any) -> Priority:
    try:
        return Priority(value)
    except ValueError:
        raise Refused("unknown_priority", f"unknown priority {value!r}", status=400) from None


def parse_status(value: Any) -> ConversationStatus:
    try:
        return ConversationStatus(value)
    except ValueError:
        raise Refused("unknown_status", f"unknown status {value!r}", status=400) from None


async def order_for_conversation(
    session: AsyncSession, conversation: Conversation, order_id: int
) -> tuple[Contact, Order]:
    """The order, if it belongs to the conversation's verified customer; else Refused."""
    contact = await session.get(Contact, conversation.contact_id)
    assert contact is not None
    customer_id = verified_customer_id(contact)
    if customer_id is None:
        raise Refused("not_verified", "The customer is not verified, so no order actions are available.",
                      status=403)
    order = await session.get(Order, order_id)
    if order is None or order.customer_id != customer_id:
        raise Refused("not_their_order", "That order does not belong to this customer.", status=404)
    return contact, order
