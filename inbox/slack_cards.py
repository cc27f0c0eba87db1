"""Read helpers for the Slack connector: what an alert or a ``/order`` answer shows.

The connector renders Block Kit from these plain values; it never reads the order store
itself. Order details go to the shop's own people only (agents linked in Slack).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.alerts.text import alert_translations
from inbox.models import Agent, Author, Contact, Conversation, ConversationStatus, ExternalThread, Message
from ordersvc.insight import find_products, product_returns, return_comments
from ordersvc.models import Customer, Order, ReturnAuthorization
from ordersvc.returns import load_rma_lines
from ordersvc.serialize import order_document
from ordersvc.service import find_customer_by_email, find_order, orders_for_customer

__all__ = [
    "ConversationCard",
    "MirroredMessage",
    "OrderLookup",
    "ProductReturnsCard",
    "ReturnCard",
    "agent_by_id",
    "conversation_card",
    "escalation_thread",
    "linked_agent",
    "mirrored_message",
    "order_card",
    "order_lookup",
    "return_card",
    "returns_lookup",
    "thread_at",
    "unlinked_agent_by_email",
    "unlinked_agents",
]


def _value(member: Any) -> str:
    return str(getattr(member, "value", member))


@dataclass(frozen=True)
class ConversationCard:
    """An escalated conversation as an alert shows it."""

    conversation_id: int
    customer: str  # display name, "(verified)" when linked to a customer, @username
    channel: str
    intent: str | None
    priority: str
    summary: str | None
    bot_state: dict[str, Any]
    resolved: bool
    claimed: bool
    assignee: Agent | None
    #: the customer's most recent order (verified customers only), when the bot named none
    recent_order_id: int | None = None


async def conversation_card(session: AsyncSession, conversation_id: int, *,
                            locale: str = "en") -> ConversationCard | None:
    """The card's data; its own words ("Customer", "(verified)") in ``locale`` (the shop's language)."""
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        return None
    t = alert_translations(locale)
    contact = await session.get(Contact, conversation.contact_id)
    customer_name = contact.display_name if contact and contact.display_name else t.gettext("Customer")
    recent: int | None = None
    if contact is not None and contact.customer_id is not None:
        customer = await session.get(Customer, contact.customer_id)
        if customer is not None:
            customer_name = t.gettext("%(name)s (verified)") % {"name": customer.display_name}
        orders = await orders_for_customer(session, contact.customer_id, limit=1)
        recent = orders[0].id if orders else None
    if contact is not None and contact.username:
        customer_name += f" @{contact.username}"
    assignee = await session.get(Agent, conversation.assignee_id) if conversation.assignee_id else None
    return ConversationCard(
        conversation_id=conversation_id,
        customer=customer_name,
        channel=_value(conversation.channel),
        intent=conversation.last_intent,
        priority=_value(conversation.priority),
        summary=conversation.summary,
        bot_state=dict(conversation.bot_state or {}),
        resolved=conversation.status == ConversationStatus.resolved,
        claimed=conversation.assignee_id is not None,
        assignee=assignee,
        recent_order_id=recent,
    )


async def order_card(session: AsyncSession, order_id: int | None) -> dict[str, Any] | None:
    """The order as a JSON-ready document (lines, shipments, returns), or None."""
    if order_id is None:
        return None
    order = await session.get(Order, order_id)
    return await order_document(session, order) if order is not None else None


@dataclass(frozen=True)
class ReturnCard:
    rma_id: int
    rma_number: str
    order_name: str
    resolution: str
    method: str
    amount: Decimal
    currency: str
    items: list[str] = field(default_factory=list)
    reason_notes: list[str] = field(default_factory=list)


async def return_card(session: AsyncSession, rma_id: int) -> ReturnCard | None:
    rma = await session.get(ReturnAuthorization, rma_id)
    if rma is None or rma.id is None:
        return None
    order = await session.get(Order, rma.order_id)
    rows = await load_rma_lines(session, rma)
    items = [f"{rl.quantity} × {ol.title} ({_value(rl.reason).replace('_', ' ')})" for rl, ol in rows]
    resolution = _value(rma.resolution)
    amount = rma.credit_amount if resolution == "store_credit" else rma.refund_amount
    return ReturnCard(rma_id=rma.id, rma_number=rma.rma_number, order_name=order.name if order else "?",
                      resolution=resolution, method=_value(rma.method), amount=amount, currency=rma.currency,
                      items=items, reason_notes=[rl.reason_note for rl, _ in rows if rl.reason_note])


@dataclass(frozen=True)
class OrderLookup:
    order: dict[str, Any]
    others: list[str]  # the customer's other recent order names (email lookups)
    conversation_id: int | None  # the customer's latest conversation


async def order_lookup(session: AsyncSession, query: str) -> OrderLookup | None:
    """``/order <number or email>``: the order (the latest, for an email), or None."""
    others: list[str] = []
    order: Order | None
    if "@" in query:
        customer = await find_customer_by_email(session, query)
        orders = await orders_for_customer(session, customer.id, limit=6) if customer and customer.id else []
        order = orders[0] if orders else None
        others = [o.name for o in orders[1:]]
    else:
        order = await find_order(session, query)
    if order is None:
        return None
    doc = await order_document(session, order)
    return OrderLookup(order=doc, others=others, conversation_id=await _latest_conversation(session, order.customer_id))


async def _latest_conversation(session: AsyncSession, customer_id: int | None) -> int | None:
    if customer_id is None:
        return None
    row = (
        await session.exec(
            select(Conversation.id)
            .join(Contact, col(Contact.id) == col(Conversation.contact_id))
            .where(Contact.customer_id == customer_id)
            .order_by(col(Conversation.last_message_at).desc())
            .limit(1)
        )
    ).first()
    return int(row) if row is not None else None


@dataclass(frozen=True)
class ProductReturnsCard:
    """``/returns``: one product over the last ``days`` days (``comments`` are customers' words)."""

    product_key: str
    title: str
    days: int
    sold: int
    returned: int
    rate: Decimal | None
    reasons: list[tuple[str, int]]
    comments: list[str]


async def returns_lookup(session: AsyncSession, query: str, now: datetime, *,
                         days: int = 30) -> tuple[ProductReturnsCard | None, list[tuple[str, str]]]:
    """The product ``query`` names (SKU, product key or part of its title) and, when it names
    several, the candidates ``(key, title)`` instead of a card."""
    matches = await find_products(session, query)
    if len(matches) != 1:
        return None, matches
    key, title = matches[0]
    since = now - timedelta(days=days)
    found = await product_returns(session, since, now, product_key=key, top_reasons=5)
    comments = [c.text for c in await return_comments(session, key, since, now, limit=5)]
    if not found:
        return ProductReturnsCard(key, title, days, 0, 0, None, [], comments), []
    p = found[0]
    return ProductReturnsCard(key, p.title, days, p.sold, p.returned, p.rate, p.reasons, comments), []


# -- threads ----------------------------------------------------------------------------------


async def thread_at(session: AsyncSession, kind: str, channel_ref: str, thread_ref: str) -> ExternalThread | None:
    return (
        await session.exec(
            select(ExternalThread).where(ExternalThread.kind == kind, ExternalThread.channel_ref == channel_ref,
                                         ExternalThread.thread_ref == thread_ref)
        )
    ).first()


async def escalation_thread(session: AsyncSession, kind: str, conversation_id: int | None,
                            purpose: str = "escalation") -> ExternalThread | None:
    if conversation_id is None:
        return None
    return (
        await session.exec(
            select(ExternalThread)
            .where(ExternalThread.kind == kind, ExternalThread.conversation_id == conversation_id,
                   ExternalThread.purpose == purpose)
            .order_by(col(ExternalThread.id).desc())
            .limit(1)
        )
    ).first()


@dataclass(frozen=True)
class MirroredMessage:
    author: str
    text: str
    files: list[str]


async def mirrored_message(session: AsyncSession, message_id: int) -> MirroredMessage | None:
    """A customer's (not internal) message as a thread copy shows it, else None."""
    message = await session.get(Message, message_id)
    if message is None or message.author != Author.customer or message.is_internal:
        return None
    conversation = await session.get(Conversation, message.conversation_id)
    contact = await session.get(Contact, conversation.contact_id) if conversation else None
    author = contact.display_name if contact and contact.display_name else "Customer"
    files = [str(a.get("filename") or a.get("kind") or "file") for a in message.attachments or []]
    return MirroredMessage(author=author, text=message.text, files=files)


# -- agents -----------------------------------------------------------------------------------


async def agent_by_id(session: AsyncSession, agent_id: int | None) -> Agent | None:
    return await session.get(Agent, agent_id) if agent_id is not None else None


async def linked_agent(session: AsyncSession, slack_user_id: str) -> Agent | None:
    return (
        await session.exec(select(Agent).where(Agent.slack_user_id == slack_user_id, col(Agent.is_active).is_(True)))
    ).first()


async def unlinked_agent_by_email(session: AsyncSession, email: str) -> Agent | None:
    return (
        await session.exec(
            select(Agent).where(sa.func.lower(Agent.email) == email.lower(), col(Agent.is_active).is_(True),
                                col(Agent.slack_user_id).is_(None))
        )
    ).first()


async def unlinked_agents(session: AsyncSession, limit: int = 50) -> list[Agent]:
    return list(
        (
            await session.exec(
                select(Agent).where(col(Agent.slack_user_id).is_(None), col(Agent.is_active).is_(True))
                .order_by(col(Agent.id)).limit(limit)
            )
        ).all()
    )
