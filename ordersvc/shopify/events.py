"""Shopify ``fulfillment_events/create``: a carrier's tracking event onto its shipment.

Shopify sends one fulfillment event per carrier scan it learns of (``status``:
``in_transit``, ``out_for_delivery``, ``attempted_delivery``, ``delivered``, ``failure`` …,
``happened_at``, ``message``, the place, ``estimated_delivery_at``). The payload is the event
object itself (``{"id": …, "fulfillment_id": …, "order_id": …, "status": …}``); the REST
shape wrapped in ``{"fulfillment_event": {…}}`` is accepted too.

The event goes through :func:`ordersvc.shipment_updates.record_tracking_event`, the one
writer of tracking history: it is kept in the history (deduplicated by the event's id, and
by time and text), and moves the shipment's status forward only. When the new status is news
for the customer, the ``shipment_update`` row is written in the same transaction, so the
proactive update cannot be lost and is never sent twice.

Bad input: a payload without ``id``, ``fulfillment_id`` or ``status`` is refused (422,
nothing written). An event of an order or fulfillment we do not know (yet) changes nothing
and is logged: the order or fulfillment webhook that follows carries the status anyway.
Older, repeated and backwards events are kept in the history at most once and change nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import Order, Shipment, SourceChannel
from ordersvc.shipment_updates import record_tracking_event
from ordersvc.shopify.payloads import (
    ShopifyId,
    Text64,
    Text255,
    UtcDatetime,
    _In,
    payload_refused,
    validate_payload,
)
from ordersvc.tracking import status_from_shopify
from shopbase.clock import utcnow

__all__ = ["FulfillmentEventIn", "EventResult", "apply_fulfillment_event"]

log = logging.getLogger(__name__)


class FulfillmentEventIn(_In):
    id: ShopifyId
    fulfillment_id: ShopifyId
    order_id: ShopifyId | None = None
    status: Text64
    message: Text255 = None
    happened_at: UtcDatetime | None = None
    created_at: UtcDatetime | None = None
    estimated_delivery_at: UtcDatetime | None = None
    city: Text64 = None
    province: Text64 = None
    country: Text64 = None


@dataclass(frozen=True)
class EventResult:
    order_id: int | None
    shipment_id: int | None
    changed: bool
    detail: str  # for the log: ids and statuses only


async def _shipment_of(session: AsyncSession, data: FulfillmentEventIn) -> tuple[Order | None, Shipment | None]:
    stmt = select(Shipment, Order).join(Order, Order.id == Shipment.order_id).where(  # type: ignore[arg-type]
        Shipment.external_id == data.fulfillment_id
    )
    if data.order_id is not None:
        # every source listed: the lookup probes the (source, external_id) index instead of scanning orders,
        # then the shipment comes from its (order_id, external_id) index
        stmt = stmt.where(col(Order.source).in_(list(SourceChannel)), Order.external_id == data.order_id)
    found = (await session.exec(stmt.with_for_update(of=Shipment))).first()
    if found is None:
        return None, None
    shipment, order = found
    return order, shipment


async def apply_fulfillment_event(session: AsyncSession, payload: dict[str, Any]) -> EventResult:
    """Apply one fulfillment event (caller's transaction; flushes, never commits)."""
    inner = payload.get("fulfillment_event") if isinstance(payload, dict) else None
    data = validate_payload(FulfillmentEventIn, inner if isinstance(inner, dict) else payload, "fulfillment_event")
    if not data.status:
        raise payload_refused("status: required")
    order, shipment = await _shipment_of(session, data)
    if shipment is None or shipment.id is None:
        log.info("fulfillment event %s: fulfillment %s is not known; nothing changed", data.id, data.fulfillment_id)
        return EventResult(None, None, False, f"event={data.id} unknown fulfillment={data.fulfillment_id}")
    status = status_from_shopify(data.status)
    occurred = data.happened_at or data.created_at or utcnow()
    place = ", ".join(part for part in (data.city, data.province, data.country) if part) or None
    eta_changed = False
    if data.estimated_delivery_at is not None and shipment.eta != data.estimated_delivery_at \
            and (shipment.last_event_at is None or occurred >= shipment.last_event_at):
        shipment.eta = data.estimated_delivery_at
        session.add(shipment)
        eta_changed = True
    moved = await record_tracking_event(
        session, shipment.id, occurred_at=occurred, status=status,
        # the carrier's words, else Shopify's status name (two scans at the same second stay two rows)
        message=data.message or data.status, location=place, external_id=data.id,
    )
    detail = f"event={data.id} shipment={shipment.id} status={status.value} {'moved' if moved else 'unchanged'}"
    return EventResult(shipment.order_id, shipment.id, moved or eta_changed, detail)
