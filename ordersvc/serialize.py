"""JSON-ready documents of orders, shipments, returns and stock (for the API and the CLI).

Conventions: money is a string with two or more decimals (``"404.95"``) next to its
currency; platform ids are strings (they may exceed 2^53); datetimes are ISO 8601 in UTC
with a ``Z``; enums are their values. Row ids of our own database are plain integers under
keys named ``id`` / ``*_id``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import (
    Customer,
    InventoryLevel,
    Order,
    OrderLine,
    Refund,
    ReturnAuthorization,
    ReturnLine,
    StoreCredit,
    TrackingEvent,
    Warehouse,
)
from ordersvc.service import (
    OrderBundle,
    ReturnBundle,
    ShipmentBundle,
    expected_ship_date,
    order_bundle,
    order_bundles,
    shipment_is_late,
    shipping_policy,
)
from shopbase.clock import utcnow

__all__ = [
    "money",
    "timestamp",
    "order_document",
    "order_documents",
    "bundle_document",
    "order_summary",
    "customer_document",
    "line_document",
    "shipment_document",
    "event_document",
    "return_document",
    "refund_document",
    "store_credit_document",
    "inventory_document",
]

_CENT = Decimal("0.01")

#: the RMA timestamps in lifecycle order, as (document key, attribute)
RMA_STEPS: tuple[tuple[str, str], ...] = (
    ("requested", "requested_at"),
    ("approved", "approved_at"),
    ("label_issued", "label_issued_at"),
    ("in_transit", "in_transit_at"),
    ("received", "received_at"),
    ("refunded", "refunded_at"),
    ("exchanged", "exchanged_at"),
    ("credited", "credited_at"),
    ("rejected", "rejected_at"),
    ("cancelled", "cancelled_at"),
)


def money(amount: Decimal | None) -> str | None:
    """``Decimal("404.9")`` → ``"404.90"``; sub-cent precision is kept (``"0.0050"`` → ``"0.005"``)."""
    if amount is None:
        return None
    value = Decimal(amount)
    cents = value.quantize(_CENT)
    if cents == value:
        return format(cents, "f")
    return format(value.normalize(), "f")


def timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # defensive: the models refuse naive datetimes
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _enum(value: Any) -> Any:
    return getattr(value, "value", value)


def customer_document(customer: Customer | None) -> dict[str, Any] | None:
    if customer is None:
        return None
    return {
        "id": customer.id,
        "external_id": customer.external_id,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "name": customer.display_name,
        "email": customer.email,
        "phone": customer.phone,
        "locale": customer.locale,
        "redacted": customer.redacted_at is not None,
    }


def line_document(line: OrderLine) -> dict[str, Any]:
    total = line.unit_price * line.quantity - line.total_discount
    return {
        "id": line.id,
        "external_id": line.external_id,
        "sku": line.sku,
        "title": line.title,
        "variant_title": line.variant_title,
        "product_type": line.product_type,
        "quantity": line.quantity,
        "fulfilled_quantity": line.fulfilled_quantity,
        "unit_price": money(line.unit_price),
        "total_discount": money(line.total_discount),
        "total": money(total),
        "returnable": line.returnable,
        "final_sale": line.final_sale,
    }


def event_document(event: TrackingEvent) -> dict[str, Any]:
    return {
        "occurred_at": timestamp(event.occurred_at),
        "status": _enum(event.status),
        "message": event.message,
        "location": event.location,
    }


def shipment_document(
    bundle: ShipmentBundle, *, now: datetime | None = None, order: Order | None = None
) -> dict[str, Any]:
    """A shipment with its items and tracking events (newest first); ``late`` is judged at ``now``."""
    s = bundle.shipment
    doc: dict[str, Any] = {
        "id": s.id,
        "external_id": s.external_id,
        "name": s.name,
        "status": _enum(s.status),
        "late": shipment_is_late(s, now or utcnow()),
        "carrier": s.carrier,
        "tracking_number": s.tracking_number,
        "tracking_url": s.tracking_url,
        "eta": timestamp(s.eta),
        "shipped_at": timestamp(s.shipped_at),
        "delivered_at": timestamp(s.delivered_at),
        "last_event_at": timestamp(s.last_event_at),
        "lines": [
            {"line_id": item.line.id, "sku": item.line.sku, "title": item.line.title, "quantity": item.quantity}
            for item in bundle.lines
        ],
        "events": [event_document(ev) for ev in bundle.events],
    }
    if order is not None:
        doc["order"] = {"id": order.id, "name": order.name}
    return doc


def return_document(
    bundle: ReturnBundle,
    *,
    lines_by_id: dict[int, OrderLine] | None = None,
    order: Order | None = None,
) -> dict[str, Any]:
    """An RMA with the timestamp of each step it reached and its lines."""
    rma: ReturnAuthorization = bundle.rma
    lines_by_id = lines_by_id or {}

    def return_line(rl: ReturnLine) -> dict[str, Any]:
        ol = lines_by_id.get(rl.order_line_id)
        return {
            "order_line_id": rl.order_line_id,
            "sku": ol.sku if ol else None,
            "title": ol.title if ol else None,
            "quantity": rl.quantity,
            "reason": _enum(rl.reason),
            "reason_note": rl.reason_note,
            "condition": _enum(rl.condition),
            "exchange_sku": rl.exchange_sku,
        }

    doc: dict[str, Any] = {
        "id": rma.id,
        "rma_number": rma.rma_number,
        "status": _enum(rma.status),
        "resolution": _enum(rma.resolution),
        "method": _enum(rma.method),
        "currency": rma.currency,
        "refund_amount": money(rma.refund_amount),
        "credit_amount": money(rma.credit_amount),
        "label_carrier": rma.label_carrier,
        "label_tracking_number": rma.label_tracking_number,
        "note": rma.note,
        "created_by": rma.created_by,
        "steps": {key: timestamp(getattr(rma, attr)) for key, attr in RMA_STEPS},
        "lines": [return_line(rl) for rl in bundle.lines],
    }
    if order is not None:
        doc["order"] = {"id": order.id, "name": order.name}
    return doc


def refund_document(refund: Refund, rma_numbers: dict[int, str] | None = None) -> dict[str, Any]:
    return {
        "id": refund.id,
        "external_id": refund.external_id,
        "amount": money(refund.amount),
        "currency": refund.currency,
        "note": refund.note,
        "rma_number": (rma_numbers or {}).get(refund.rma_id) if refund.rma_id is not None else None,
        "processed_at": timestamp(refund.processed_at),
    }


def store_credit_document(credit: StoreCredit, rma_numbers: dict[int, str] | None = None) -> dict[str, Any]:
    return {
        "id": credit.id,
        "code": credit.code,
        "amount": money(credit.amount),
        "currency": credit.currency,
        "rma_number": (rma_numbers or {}).get(credit.rma_id) if credit.rma_id is not None else None,
        "created_at": timestamp(credit.created_at),
    }


def order_summary(order: Order) -> dict[str, Any]:
    """The order's own fields, without lines, shipments or returns (for listings)."""
    return {
        "id": order.id,
        "name": order.name,
        "source": _enum(order.source),
        "external_id": order.external_id,
        "customer_id": order.customer_id,
        "email": order.email,
        "phone": order.phone,
        "currency": order.currency,
        "subtotal_price": money(order.subtotal_price),
        "total_tax": money(order.total_tax),
        "total_shipping": money(order.total_shipping),
        "total_discounts": money(order.total_discounts),
        "total_price": money(order.total_price),
        "financial_status": _enum(order.financial_status),
        "fulfillment_status": _enum(order.fulfillment_status),
        "cancelled": order.is_cancelled,
        "cancelled_at": timestamp(order.cancelled_at),
        "cancel_reason": order.cancel_reason,
        "closed_at": timestamp(order.closed_at),
        "placed_at": timestamp(order.placed_at),
        "updated_at": timestamp(order.updated_at),
        "shipping_postal_code": order.shipping_postal_code,
        "tags": list(order.tags or []),
    }


def bundle_document(
    bundle: OrderBundle, *, now: datetime | None = None, policy: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The full document of an already loaded order bundle."""
    order = bundle.order
    now = now or utcnow()
    lines_by_id = {ln.id: ln for ln in bundle.lines if ln.id is not None}
    rma_numbers = {rb.rma.id: rb.rma.rma_number for rb in bundle.returns if rb.rma.id is not None}
    doc = order_summary(order)
    doc.update(
        {
            "customer": customer_document(bundle.customer),
            "note": order.note,
            "expected_ship_at": timestamp(expected_ship_date(order, policy)),
            "stock_reserved": order.stock_reserved,
            "shipping_address": dict(order.shipping_address) if order.shipping_address else None,
            "billing_address": dict(order.billing_address) if order.billing_address else None,
            "lines": [line_document(ln) for ln in bundle.lines],
            "shipments": [shipment_document(sb, now=now) for sb in bundle.shipments],
            "returns": [return_document(rb, lines_by_id=lines_by_id) for rb in bundle.returns],
            "refunds": [refund_document(rf, rma_numbers) for rf in bundle.refunds],
            "store_credits": [store_credit_document(sc, rma_numbers) for sc in bundle.store_credits],
        }
    )
    return doc


async def order_document(session: AsyncSession, order: Order, *, now: datetime | None = None) -> dict[str, Any]:
    """One order as a JSON-ready dict: lines, shipments with events, returns, refunds, credits."""
    if order.id is None:
        raise ValueError("the order has not been saved")
    bundle = await order_bundle(session, order.id)
    return bundle_document(bundle, now=now, policy=await shipping_policy(session))


async def order_documents(
    session: AsyncSession, orders: list[Order], *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """``order_document`` for many orders, loaded with a fixed number of queries."""
    policy = await shipping_policy(session)
    now = now or utcnow()
    return [bundle_document(b, now=now, policy=policy) for b in await order_bundles(session, orders)]


def inventory_document(level: InventoryLevel, warehouse: Warehouse | None = None) -> dict[str, Any]:
    return {
        "id": level.id,
        "warehouse": warehouse.code if warehouse is not None else None,
        "warehouse_id": level.warehouse_id,
        "sku": level.sku,
        "on_hand": level.on_hand,
        "reserved": level.reserved,
        "available": level.available,
        "safety_stock": level.safety_stock,
        "low": level.is_low,
        "updated_at": timestamp(level.updated_at),
    }
