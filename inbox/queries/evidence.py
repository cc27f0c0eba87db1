"""The dispute evidence bundle's facts (the read side): one order or the customer's orders, with
payment, fulfillment, every shipment and its tracking events, proof of delivery, return
authorizations, refunds, and the whole conversation transcript with timestamps.

:func:`load_evidence` reads; :func:`evidence_json` is the complete machine-readable form (every
message, however many); ``inbox.evidence_pdf`` prints the same facts, bounded. Access is the
caller's check: the conversation comes from ``get_conversation`` and an order must belong to
its verified customer (``inbox.actions.base.order_for_conversation``).

Internal notes are left out: the bundle is what the customer and the shop said to each other.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Agent, Contact, Conversation, Message
from inbox.queries.customers import verified_customer_id
from ordersvc.models import Order
from ordersvc.service import OrderBundle, ShipmentBundle, order_bundles
from ordersvc.tracking import ShipmentStatus

__all__ = ["Evidence", "TranscriptLine", "MAX_ORDERS", "load_evidence", "load_evidence_by_ids", "evidence_json",
           "evidence_json_bytes", "file_stem", "proof_of_delivery"]

#: a conversation-wide bundle holds the customer's most recent orders, at most this many
MAX_ORDERS = 10
FORMAT_VERSION = 1


@dataclass(frozen=True)
class TranscriptLine:
    id: int
    at: datetime
    direction: str
    author: str
    agent: str | None
    text: str
    attachments: tuple[str, ...]
    delivery: str | None


@dataclass(frozen=True)
class Evidence:
    generated_at: datetime
    conversation: Conversation
    contact: Contact
    orders: tuple[OrderBundle, ...]
    #: the customer's older orders left out of a conversation-wide bundle
    orders_omitted: int
    messages: tuple[TranscriptLine, ...]
    #: the order the bundle was asked for (None: the conversation's)
    order_id: int | None = None


def _value(x: Any) -> str:
    return str(getattr(x, "value", x))


async def _transcript(session: AsyncSession, conversation_id: int) -> list[TranscriptLine]:
    rows = (await session.exec(  # type: ignore[call-overload]  # a Core select of eight columns
        sa.select(col(Message.id), col(Message.created_at), col(Message.direction), col(Message.author),
                  col(Message.agent_id), col(Message.text), col(Message.attachments), col(Message.delivery_status))
        .where(col(Message.conversation_id) == conversation_id, col(Message.is_internal).is_(False))
        .order_by(col(Message.id))
    )).all()
    agent_ids = {r[4] for r in rows if r[4] is not None}
    names: dict[int, str] = {}
    if agent_ids:
        for agent_id, name in (await session.exec(select(Agent.id, Agent.name).where(col(Agent.id).in_(agent_ids)))).all():
            if agent_id is not None:
                names[agent_id] = name
    lines = []
    for mid, at, direction, author, agent_id, text, attachments, delivery in rows:
        files = tuple(str(a.get("name") or a.get("type") or "file")[:120] for a in (attachments or [])
                      if isinstance(a, dict))
        lines.append(TranscriptLine(id=int(mid or 0), at=at, direction=_value(direction), author=_value(author),
                                    agent=names.get(agent_id) if agent_id is not None else None, text=text or "",
                                    attachments=files, delivery=delivery))
    return lines


async def load_evidence(session: AsyncSession, conversation: Conversation, order: Order | None,
                        *, now: datetime) -> Evidence:
    """The bundle for ``order`` (already checked against the conversation), or for the conversation:
    its transcript plus the verified customer's most recent orders."""
    contact = await session.get(Contact, conversation.contact_id)
    assert contact is not None
    omitted = 0
    if order is not None:
        orders = [order]
    else:
        customer_id = verified_customer_id(contact)
        orders = []
        if customer_id is not None:
            found = list((await session.exec(
                select(Order).where(col(Order.customer_id) == customer_id)
                .order_by(col(Order.placed_at).desc(), col(Order.id).desc()).limit(MAX_ORDERS + 1)
            )).all())
            orders = found[:MAX_ORDERS]
            if len(found) > MAX_ORDERS:
                total = len((await session.exec(select(Order.id).where(col(Order.customer_id) == customer_id))).all())
                omitted = total - MAX_ORDERS
    bundles = await order_bundles(session, orders) if orders else []
    messages = await _transcript(session, conversation.id or 0)
    return Evidence(generated_at=now, conversation=conversation, contact=contact, orders=tuple(bundles),
                    orders_omitted=omitted, messages=tuple(messages),
                    order_id=order.id if order is not None else None)


async def load_evidence_by_ids(session: AsyncSession, conversation_id: int, order_id: int | None,
                               *, now: datetime) -> Evidence | None:
    """The bundle again, for a job after the agent's request (the Slack upload); None when the
    conversation is gone or the order no longer belongs to its verified customer."""
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        return None
    order = None
    if order_id is not None:
        contact = await session.get(Contact, conversation.contact_id)
        order = await session.get(Order, order_id)
        if contact is None or order is None or order.customer_id is None \
                or order.customer_id != verified_customer_id(contact):
            return None
    return await load_evidence(session, conversation, order, now=now)


def file_stem(evidence: Evidence) -> str:
    """``evidence-<order>-c<conversation>``: only letters, digits and dashes."""
    order = evidence.orders[0].order.name if evidence.order_id is not None and evidence.orders else ""
    order = re.sub(r"[^A-Za-z0-9]+", "", order)[:32]
    return f"evidence-{order + '-' if order else ''}c{evidence.conversation.id}"


def evidence_json_bytes(evidence: Evidence, *, shop_name: str, contact_details: bool = True) -> bytes:
    data = evidence_json(evidence, shop_name=shop_name, contact_details=contact_details)
    return json.dumps(data, ensure_ascii=False, indent=1).encode()


def proof_of_delivery(shipment: ShipmentBundle) -> dict[str, Any] | None:
    """The carrier's delivery scan (time, place, words) and the shipment's delivered time, if delivered."""
    delivered = [e for e in shipment.events if _value(e.status) == ShipmentStatus.DELIVERED.value]
    s = shipment.shipment
    if not delivered and s.delivered_at is None:
        return None
    scan = min(delivered, key=lambda e: e.occurred_at) if delivered else None
    return {
        "delivered_at": _iso(s.delivered_at or (scan.occurred_at if scan else None)),
        "scan_at": _iso(scan.occurred_at) if scan else None,
        "location": scan.location if scan else None,
        "carrier_message": scan.message if scan else None,
        "carrier": s.carrier,
        "tracking_number": s.tracking_number,
        "tracking_url": s.tracking_url,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _money(value: Decimal | None) -> str | None:
    return str(value) if value is not None else None


def _order_json(b: OrderBundle, contact_details: bool) -> dict[str, Any]:
    o = b.order
    return {
        "id": o.id,
        "name": o.name,
        "source": _value(o.source),
        "external_id": o.external_id,
        "placed_at": _iso(o.placed_at),
        "cancelled_at": _iso(o.cancelled_at),
        "cancel_reason": o.cancel_reason,
        "customer": None if b.customer is None else {
            "id": b.customer.id, "name": b.customer.display_name,
            **({"email": b.customer.email, "phone": b.customer.phone} if contact_details else {}),
        },
        **({"email": o.email} if contact_details else {}),
        "shipping_address": o.shipping_address,
        "billing_address": o.billing_address,
        "lines": [{"id": ln.id, "sku": ln.sku, "title": ln.title, "variant": ln.variant_title,
                   "quantity": ln.quantity, "unit_price": _money(ln.unit_price),
                   "discount": _money(ln.total_discount), "fulfilled_quantity": ln.fulfilled_quantity}
                  for ln in b.lines],
        "payment": {
            "financial_status": _value(o.financial_status),
            "currency": o.currency,
            "subtotal": _money(o.subtotal_price),
            "discounts": _money(o.total_discounts),
            "shipping": _money(o.total_shipping),
            "tax": _money(o.total_tax),
            "total": _money(o.total_price),
            "refunds": [{"id": r.id, "amount": _money(r.amount), "currency": r.currency, "processed_at":
                         _iso(r.processed_at), "rma_id": r.rma_id, "note": r.note} for r in b.refunds],
            "store_credits": [{"code": c.code, "amount": _money(c.amount), "currency": c.currency,
                               "created_at": _iso(c.created_at)} for c in b.store_credits],
        },
        "fulfillment": {
            "status": _value(o.fulfillment_status),
            "expected_ship_at": _iso(o.expected_ship_at),
            "shipments": [{
                "id": sb.shipment.id,
                "name": sb.shipment.name,
                "carrier": sb.shipment.carrier,
                "tracking_number": sb.shipment.tracking_number,
                "tracking_url": sb.shipment.tracking_url,
                "status": _value(sb.shipment.status),
                "shipped_at": _iso(sb.shipment.shipped_at),
                "eta": _iso(sb.shipment.eta),
                "delivered_at": _iso(sb.shipment.delivered_at),
                "lines": [{"order_line_id": sl.line.id, "sku": sl.line.sku, "title": sl.line.title,
                           "quantity": sl.quantity} for sl in sb.lines],
                # oldest first, like a carrier's history
                "tracking_events": [{"occurred_at": _iso(e.occurred_at), "status": _value(e.status),
                                     "message": e.message, "location": e.location}
                                    for e in sorted(sb.events, key=lambda e: (e.occurred_at, e.id or 0))],
                "proof_of_delivery": proof_of_delivery(sb),
            } for sb in b.shipments],
        },
        "returns": [{
            "rma_number": rb.rma.rma_number,
            "status": _value(rb.rma.status),
            "resolution": _value(rb.rma.resolution),
            "method": _value(rb.rma.method),
            "refund_amount": _money(rb.rma.refund_amount),
            "credit_amount": _money(rb.rma.credit_amount),
            "currency": rb.rma.currency,
            "label_carrier": rb.rma.label_carrier,
            "label_tracking_number": rb.rma.label_tracking_number,
            "requested_at": _iso(rb.rma.requested_at),
            "approved_at": _iso(rb.rma.approved_at),
            "received_at": _iso(rb.rma.received_at),
            "refunded_at": _iso(rb.rma.refunded_at),
            "rejected_at": _iso(rb.rma.rejected_at),
            "cancelled_at": _iso(rb.rma.cancelled_at),
            "lines": [{"order_line_id": rl.order_line_id, "quantity": rl.quantity, "reason": _value(rl.reason),
                       "reason_note": rl.reason_note, "condition": _value(rl.condition),
                       "exchange_sku": rl.exchange_sku} for rl in rb.lines],
        } for rb in b.returns],
    }


def evidence_json(evidence: Evidence, *, shop_name: str, contact_details: bool = True) -> dict[str, Any]:
    """Everything in the bundle, every message included (the PDF is bounded; this is not).
    ``contact_details=False`` (the copy posted to Slack) leaves out the customer's email and phone."""
    c = evidence.conversation
    return {
        "format": "shopdesk.dispute_evidence",
        "version": FORMAT_VERSION,
        "generated_at": evidence.generated_at.isoformat(),
        "shop": shop_name,
        "order_id": evidence.order_id,
        "conversation": {
            "id": c.id, "channel": _value(c.channel), "status": _value(c.status), "language": c.language,
            "created_at": _iso(c.created_at), "resolved_at": _iso(c.resolved_at),
            "contact": {"id": evidence.contact.id, "name": evidence.contact.display_name,
                        "username": evidence.contact.username, "channel": _value(evidence.contact.channel)},
        },
        "orders": [_order_json(b, contact_details) for b in evidence.orders],
        "orders_omitted": evidence.orders_omitted,
        "transcript": {
            "count": len(evidence.messages),
            "messages": [{"id": m.id, "at": m.at.isoformat(), "direction": m.direction, "author": m.author,
                          "agent": m.agent, "text": m.text, "attachments": list(m.attachments),
                          "delivery": m.delivery} for m in evidence.messages],
        },
    }
