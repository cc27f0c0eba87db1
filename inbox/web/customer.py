"""The customer sidebar of a conversation and the order actions agents take from it.

Order details appear only for a VERIFIED customer (``Contact.customer_id`` set together with
``verified_at`` after the customer proved who they are). Every action re-checks that the order
belongs to that customer, so an agent cannot act on an arbitrary order id, writes an
AuditEvent and an internal system line in the transcript, all in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.events import Event, EventType, collect
from inbox.messages import OutboundPayload
from inbox.models import Agent, Author, Contact, Conversation, Direction, Message
from inbox.replies import reply_label
from inbox.store import add_outbound, write_audit
from ordersvc.models import Customer, ItemCondition, Order, Resolution, ReturnMethod, ReturnReason, utcnow
from ordersvc.service import OrderBundle, order_bundle, orders_for_customer

__all__ = [
    "SIDEBAR_ORDERS",
    "Sidebar",
    "ActionError",
    "load_sidebar",
    "verified_customer_id",
    "order_for_conversation",
    "add_system_line",
    "do_cancel_order",
    "do_create_return",
    "do_resend_tracking",
    "RESOLUTIONS",
    "METHODS",
    "REASONS",
]

SIDEBAR_ORDERS = 5
RESOLUTIONS = [r.value for r in Resolution]
METHODS = [m.value for m in ReturnMethod]
REASONS = [r.value for r in ReturnReason]


class ActionError(ValueError):
    """An order action that was refused; ``str(exc)`` is one line for the agent."""


@dataclass
class Sidebar:
    contact: Contact
    customer: Customer | None
    orders: list[OrderBundle] = field(default_factory=list)
    more_orders: bool = False


def verified_customer_id(contact: Contact) -> int | None:
    if contact.customer_id is None or contact.verified_at is None:
        return None
    return contact.customer_id


async def load_sidebar(db: AsyncSession, conversation: Conversation) -> Sidebar:
    contact = await db.get(Contact, conversation.contact_id)
    assert contact is not None
    customer_id = verified_customer_id(contact)
    if customer_id is None:
        return Sidebar(contact=contact, customer=None)
    customer = await db.get(Customer, customer_id)
    orders = await orders_for_customer(db, customer_id, limit=SIDEBAR_ORDERS + 1)
    bundles = [await order_bundle(db, o.id) for o in orders[:SIDEBAR_ORDERS] if o.id is not None]
    return Sidebar(contact=contact, customer=customer, orders=bundles, more_orders=len(orders) > SIDEBAR_ORDERS)


async def order_for_conversation(db: AsyncSession, conversation: Conversation, order_id: int) -> tuple[Contact, Order]:
    """The order, if it belongs to the conversation's verified customer; else ActionError."""
    contact = await db.get(Contact, conversation.contact_id)
    assert contact is not None
    customer_id = verified_customer_id(contact)
    if customer_id is None:
        raise ActionError("The customer is not verified, so no order actions are available.")
    order = await db.get(Order, order_id)
    if order is None or order.customer_id != customer_id:
        raise ActionError("That order does not belong to this customer.")
    return contact, order


def add_system_line(db: AsyncSession, conversation: Conversation, text: str, *, agent: Agent | None) -> Message:
    """An internal line in the transcript saying what was done (never sent to the customer)."""
    now = utcnow()
    line = Message(
        conversation_id=conversation.id,  # type: ignore[arg-type]
        channel=conversation.channel,
        direction=Direction.outbound,
        author=Author.system,
        agent_id=agent.id if agent is not None else None,
        is_internal=True,
        text=text[:2000],
        processed=True,
        created_at=now,
    )
    db.add(line)
    conversation.updated_at = now
    db.add(conversation)
    conversation_id = conversation.id
    collect(
        db,
        lambda: Event(
            EventType.message_created.value,
            conversation_id,
            {"message_id": line.id, "direction": "out", "author": "system", "is_internal": True, "preview": ""},
        ),
    )
    return line


def _who(agent: Agent) -> str:
    return agent.name or agent.email.split("@", 1)[0]


_CANCEL_REFUSALS = {
    "already_cancelled": "The order is already cancelled.",
    "already_fulfilled": "The order has shipped, so it cannot be cancelled. Offer a return instead.",
    "partially_fulfilled": "Part of the order has shipped, so it cannot be cancelled.",
}


async def do_cancel_order(db: AsyncSession, conversation: Conversation, agent: Agent, order_id: int) -> str:
    from ordersvc.actions import cancel_order

    _contact, order = await order_for_conversation(db, conversation, order_id)
    result = await cancel_order(db, order, reason="agent request", actor="agent")
    if not result.ok:
        fallback = f"The order cannot be cancelled ({result.reason})."
        raise ActionError(_CANCEL_REFUSALS.get(result.reason or "", fallback))
    refund = f" Refund {result.refund.amount} {result.refund.currency}." if result.refund is not None else ""
    write_audit(db, conversation.id, "order.cancelled", agent=agent,
                detail={"order_id": order.id, "refund_id": result.refund.id if result.refund else None})
    add_system_line(db, conversation, f"{_who(agent)} cancelled order {order.name}.{refund}", agent=agent)
    return f"Order {order.name} cancelled."


def _choice(value: Any, allowed: list[str], what: str) -> str:
    text = str(value or "")
    if text not in allowed:
        raise ActionError(f"Choose a {what}.")
    return text


async def do_create_return(
    db: AsyncSession, conversation: Conversation, agent: Agent, order_id: int, form: Any
) -> str:
    """Open a return for the lines ticked in ``form`` (``line_<id>`` = quantity)."""
    from ordersvc.returns import create_rma
    from shopbase.refusal import Refused

    _contact, order = await order_for_conversation(db, conversation, order_id)
    resolution = _choice(form.get("resolution"), RESOLUTIONS, "resolution")
    method = _choice(form.get("method"), METHODS, "return method")
    reason = _choice(form.get("reason"), REASONS, "reason")
    exchange_sku = str(form.get("exchange_sku") or "").strip()[:64] or None
    items: list[dict[str, Any]] = []
    for key in form.keys():
        if not key.startswith("line_"):
            continue
        try:
            line_id = int(key[5:])
            quantity = int(str(form.get(key) or "0"))
        except ValueError:
            raise ActionError("Quantities must be whole numbers.") from None
        if quantity <= 0:
            continue
        item: dict[str, Any] = {
            "order_line_id": line_id,
            "quantity": quantity,
            "reason": reason,
            "condition": ItemCondition.unopened.value,
        }
        if resolution == Resolution.exchange.value and exchange_sku:
            item["exchange_sku"] = exchange_sku
        items.append(item)
    if not items:
        raise ActionError("Pick at least one line and a quantity to return.")
    try:
        created = await create_rma(db, order, items, resolution, method, created_by="agent")
    except Refused as refusal:
        raise ActionError(f"The return was refused: {refusal.message}.") from None
    rma = created.rma
    write_audit(db, conversation.id, "order.return_created", agent=agent,
                detail={"order_id": order.id, "rma_id": rma.id, "lines": len(created.lines)})
    add_system_line(
        db,
        conversation,
        f"{_who(agent)} opened return {rma.rma_number} for order {order.name} "
        f"({resolution.replace('_', ' ')}, {method.replace('_', ' ')}; status {rma.status.value.replace('_', ' ')}).",
        agent=agent,
    )
    return f"Return {rma.rma_number} created."


async def do_resend_tracking(db: AsyncSession, conversation: Conversation, agent: Agent, order_id: int) -> str:
    """Send the customer the tracking of one order again (through the outbox)."""
    from inbox.replies import render_reply

    contact, order = await order_for_conversation(db, conversation, order_id)
    bundle = await order_bundle(db, order_id)
    if not bundle.shipments:
        raise ActionError("The order has no shipments yet, so there is no tracking to send.")
    lang = conversation.language or contact.language
    shipments = [
        {
            "name": sb.shipment.name,
            "status": sb.shipment.status.value,
            "status_text": reply_label("status_" + sb.shipment.status.value, lang),
            "carrier": sb.shipment.carrier,
            "tracking_number": sb.shipment.tracking_number,
            "tracking_url": sb.shipment.tracking_url
            if (sb.shipment.tracking_url or "").lower().startswith(("https://", "http://"))
            else None,
        }
        for sb in bundle.shipments
    ]
    text = render_reply("tracking_update", lang, order=order, shipments=shipments)
    message = add_outbound(db, conversation, OutboundPayload(text=text), author=Author.agent, agent_id=agent.id)
    await db.flush()
    write_audit(db, conversation.id, "order.tracking_resent", agent=agent,
                detail={"order_id": order.id, "message_id": message.id})
    add_system_line(db, conversation, f"{_who(agent)} re-sent the tracking of order {order.name}.", agent=agent)
    return "Tracking sent."
