"""Writing Shopify orders, fulfillments, refunds and cancellations onto the order store (rules: see the package)."""

from __future__ import annotations

import enum
import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.inventory import release_order, reserve_order, ship_sku
from ordersvc.models import (
    Customer,
    FinancialStatus,
    FulfillmentStatus,
    Order,
    OrderLine,
    ProductVariant,
    Refund,
    Shipment,
    ShipmentLine,
    SourceChannel,
)
from ordersvc.service import order_lines
from ordersvc.shipment_updates import note_status
from ordersvc.shopify.payloads import (
    CustomerIn,
    FulfillmentIn,
    LineItemIn,
    OrderIn,
    RefundIn,
    parse_order,
    payload_refused,
    validate_payload,
)
from ordersvc.tracking import Carrier, ShipmentStatus, detect_carrier, tracking_url
from shopbase.clock import utcnow
from shopbase.text import postal_code_for_storage, storable

log = logging.getLogger(__name__)

FINAL_SALE_TAG = "final-sale"
_COMPANY_PREFIXES = (("usps", Carrier.USPS), ("ups", Carrier.UPS), ("fedex", Carrier.FEDEX), ("dhl", Carrier.DHL))
_CARRIER_NAMES = {Carrier.UPS: "UPS", Carrier.USPS: "USPS", Carrier.FEDEX: "FedEx", Carrier.DHL: "DHL Express"}
_FALSY = frozenset({"false", "no", "0", "off", "n"})


class Outcome(str, enum.Enum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"


@dataclass(frozen=True)
class UpsertResult:
    """What an upsert did to one order; ``events`` name what changed (``order.updated`` …)."""

    status: Outcome
    order: Order
    events: tuple[str, ...] = ()


def assign_changed(row: Any, values: dict[str, Any]) -> bool:
    """Set the attributes that differ; True when anything changed."""
    changed = False
    for key, value in values.items():
        if getattr(row, key) != value:
            setattr(row, key, value)
            changed = True
    return changed


def _is_stale(incoming: datetime | None, stored: datetime | None) -> bool:
    if stored is None:
        return False
    return incoming is None or incoming <= stored


def _slug(text: Any) -> str:
    return re.sub(r"[\s_]+", "-", str(text).strip().lower()).lstrip("-")


def _is_final_sale(
    item: LineItemIn, order_tags: Sequence[str], variant: ProductVariant | None
) -> bool:
    if item.final_sale is not None:
        return item.final_sale
    for prop in item.properties:
        if prop.name and _slug(prop.name) == FINAL_SALE_TAG:
            if prop.value is None or _slug(prop.value) not in _FALSY:
                return True
        if prop.value is not None and _slug(prop.value) == FINAL_SALE_TAG:
            return True
    if any(_slug(tag) == FINAL_SALE_TAG for tag in (*item.tags, *item.product_tags)):
        return True
    if variant is not None and variant.final_sale:
        return True
    for tag in order_tags:
        name, _, sku = tag.partition(":")
        if _slug(name) == FINAL_SALE_TAG and (not sku or (item.sku and sku.strip().lower() == item.sku.lower())):
            return True
    return False


def _carrier_from_company(company: str | None) -> Carrier | None:
    if not company:
        return None
    key = company.strip().lower()
    for prefix, carrier in _COMPANY_PREFIXES:
        if key.startswith(prefix):
            return carrier
    return None


def _web_url(value: str | None) -> str | None:
    if value and value.strip().lower().startswith(("https://", "http://")) and len(value.strip()) <= 1024:
        return value.strip()
    return None


async def _find_shopify_order(session: AsyncSession, external_id: str) -> Order | None:
    """A Shopify order by its id; the online store first if several sources hold the id."""
    stmt = (
        select(Order)
        .where(Order.external_id == external_id)
        .order_by(sa.case((col(Order.source) == SourceChannel.online_store, 0), else_=1), col(Order.id))
    )
    return (await session.exec(stmt)).first()


# --------------------------------------------------------------------------- customers


async def _upsert_customer(
    session: AsyncSession, data: CustomerIn | None, email: str | None, locale: str | None
) -> tuple[Customer | None, bool]:
    external_id = data.id if data else None
    email = (data.email if data else None) or email
    if external_id is None and email is None:
        return None, False
    customer: Customer | None = None
    if external_id is not None:
        stmt = select(Customer).where(Customer.external_id == external_id)
        customer = (await session.exec(stmt)).first()
    if customer is None and email is not None:
        same_account = sa.or_(col(Customer.external_id).is_(None), col(Customer.external_id) == external_id)
        stmt = select(Customer).where(Customer.email == email, same_account).order_by(col(Customer.id))
        customer = (await session.exec(stmt)).first()
    created = customer is None
    if customer is None:
        customer = Customer(external_id=external_id, email=email)
        session.add(customer)
    if customer.redacted_at is not None:
        return customer, False
    values: dict[str, Any] = {}
    if external_id is not None and customer.external_id is None:
        values["external_id"] = external_id
    if email:
        values["email"] = email
    if data is not None:
        for key in ("phone", "first_name", "last_name"):
            if getattr(data, key):
                values[key] = getattr(data, key)
    if (data and data.locale) or locale:
        values["locale"] = (data.locale if data and data.locale else locale)
    changed = assign_changed(customer, values)
    if changed and not created:
        customer.updated_at = utcnow()
    await session.flush()
    return customer, created or changed


# --------------------------------------------------------------------------- order parts


async def _upsert_lines(
    session: AsyncSession, order: Order, items: Sequence[LineItemIn], order_tags: Sequence[str]
) -> tuple[bool, dict[str, OrderLine]]:
    existing = {line.external_id: line for line in await order_lines(session, order.id)}
    skus = sorted({item.sku for item in items if item.sku})
    variants: dict[str, ProductVariant] = {}
    if skus:
        found = await session.exec(select(ProductVariant).where(col(ProductVariant.sku).in_(skus)))
        variants = {v.sku: v for v in found.all()}
    seen: set[str] = set()
    changed = False
    for index, item in enumerate(items):
        if item.id in seen:
            raise payload_refused(f"line_items.{index}.id: duplicate line item id")
        seen.add(item.id)
        variant = variants.get(item.sku) if item.sku else None
        final_sale = _is_final_sale(item, order_tags, variant)
        values: dict[str, Any] = {
            "sku": item.sku,
            "title": item.title or item.name or "",
            "variant_title": item.variant_title,
            "quantity": item.quantity,
            "unit_price": item.price,
            "total_discount": item.total_discount,
            "product_type": item.product_type or (variant.product_type if variant else None),
            "final_sale": final_sale,
            "returnable": not (final_sale or bool(item.gift_card)),
        }
        line = existing.get(item.id)
        if line is None:
            assert order.id is not None
            line = OrderLine(order_id=order.id, external_id=item.id, **values)
            session.add(line)
            existing[item.id] = line
            changed = True
        else:
            changed |= assign_changed(line, values)
    await session.flush()
    return changed, {key: line for key, line in existing.items() if key is not None}


async def _apply_fulfillment(
    session: AsyncSession, order: Order, data: FulfillmentIn, lines: dict[str, OrderLine]
) -> bool:
    """Create, update or remove the shipment of one fulfillment; True when anything changed."""
    assert order.id is not None
    stmt = select(Shipment).where(Shipment.order_id == order.id, Shipment.external_id == data.id)
    shipment = (await session.exec(stmt)).first()
    if shipment is not None and _is_stale(data.updated_at, shipment.source_updated_at):
        return False
    if not data.active:
        if shipment is None:
            return False
        await session.exec(sa.delete(ShipmentLine).where(col(ShipmentLine.shipment_id) == shipment.id))
        await session.delete(shipment)
        await session.flush()
        return True

    quantities: dict[int, int] = defaultdict(int)
    for index, item in enumerate(data.line_items):
        line = lines.get(item.id)
        if line is None or line.id is None:
            raise payload_refused(
                f"fulfillments.line_items.{index}.id: line item {item.id} is not on order {order.name}"
            )
        quantities[line.id] += item.quantity

    numbers = [n for n in (data.tracking_number, *data.tracking_numbers) if n and n.strip()]
    number = storable(numbers[0]).strip() if numbers else None
    if number is not None and (len(number) > 64 or not number):
        number = None
    carrier_code = (detect_carrier(number) if number else None) or _carrier_from_company(data.tracking_company)
    url = _web_url(data.tracking_url) or next((u for u in map(_web_url, data.tracking_urls) if u), None)
    if url is None and number and carrier_code is not None:
        url = tracking_url(carrier_code, number)
    carrier = data.tracking_company or (_CARRIER_NAMES.get(carrier_code) if carrier_code else None)

    status = data.shipment_status
    previous = ShipmentStatus(shipment.status) if shipment is not None else None
    if shipment is not None and previous is not None and previous != status and previous.is_final \
            and not status.is_final:
        # a delivered parcel does not start moving again: keep the status (never news)
        log.info("shipment %s: ignored a move back from %s to %s", shipment.id, previous.value, status.value)
        status = previous
    delivered_at: datetime | None = None
    if status is ShipmentStatus.DELIVERED:
        delivered_at = (shipment.delivered_at if shipment else None) or data.updated_at or utcnow()
    values: dict[str, Any] = {
        "name": data.name,
        "carrier": carrier,
        "tracking_number": number,
        "tracking_url": url,
        "status": status,
        "delivered_at": delivered_at,
    }
    if data.created_at is not None or shipment is None:
        values["shipped_at"] = data.created_at
    changed = False
    if shipment is None:
        shipment = Shipment(order_id=order.id, external_id=data.id, **values)
        session.add(shipment)
        changed = True
    elif assign_changed(shipment, values):
        shipment.updated_at = utcnow()
        changed = True
    if data.updated_at is not None:
        shipment.source_updated_at = data.updated_at
    await session.flush()
    await note_status(session, shipment, previous, status)  # the customer's update, same transaction

    assert shipment.id is not None
    stmt_lines = select(ShipmentLine).where(ShipmentLine.shipment_id == shipment.id)
    current = {sl.order_line_id: sl for sl in (await session.exec(stmt_lines)).all()}
    for line_id, quantity in quantities.items():
        row = current.get(line_id)
        if row is None:
            session.add(ShipmentLine(shipment_id=shipment.id, order_line_id=line_id, quantity=quantity))
            changed = True
        elif row.quantity != quantity:
            row.quantity = quantity
            changed = True
    await session.flush()
    return changed


async def _sync_fulfilled_quantities(
    session: AsyncSession, order: Order, fully_fulfilled: set[str] | None = None
) -> bool:
    """``OrderLine.fulfilled_quantity`` from the shipments; newly shipped units consume stock."""
    stmt = (
        select(col(ShipmentLine.order_line_id), sa.func.sum(col(ShipmentLine.quantity)))
        .join(Shipment, col(Shipment.id) == col(ShipmentLine.shipment_id))
        .where(Shipment.order_id == order.id)
        .group_by(col(ShipmentLine.order_line_id))
    )
    shipped = {line_id: int(total or 0) for line_id, total in (await session.exec(stmt)).all()}
    everything = order.fulfillment_status is FulfillmentStatus.fulfilled
    changed = False
    for line in await order_lines(session, order.id):
        full = everything or (fully_fulfilled is not None and line.external_id in fully_fulfilled)
        done = line.quantity if full else min(line.quantity, shipped.get(line.id or 0, 0))
        if done != line.fulfilled_quantity:
            delta = done - line.fulfilled_quantity
            line.fulfilled_quantity = done
            changed = True
            if delta > 0 and order.stock_reserved and line.sku:
                await ship_sku(session, line.sku, delta)
    await session.flush()
    return changed


async def _apply_refund(session: AsyncSession, order: Order, data: RefundIn) -> bool:
    assert order.id is not None
    stmt = select(Refund).where(Refund.order_id == order.id, Refund.external_id == data.id)
    refund = (await session.exec(stmt)).first()
    currency = next((t.currency for t in data.transactions if t.currency), None) or order.currency
    values: dict[str, Any] = {"amount": data.amount, "currency": currency, "note": data.note}
    when = data.processed_at or data.created_at
    if when is not None:
        values["processed_at"] = when
    if refund is None:
        session.add(Refund(order_id=order.id, external_id=data.id, **values))
        await session.flush()
        return True
    changed = assign_changed(refund, values)
    await session.flush()
    return changed


def _order_values(data: OrderIn, customer: Customer | None) -> dict[str, Any]:
    shipping = data.shipping_address.to_json() if data.shipping_address else None
    billing = data.billing_address.to_json() if data.billing_address else None
    email = data.email or data.contact_email or (customer.email if customer else None)
    phone = data.phone or (customer.phone if customer else None)
    note = data.note
    if customer is not None and customer.redacted_at is not None:
        email = phone = note = None
        shipping = billing = None
    values: dict[str, Any] = {
        "name": data.display_name,
        "customer_id": customer.id if customer else None,
        "email": email,
        "phone": phone,
        "currency": data.currency,
        "subtotal_price": data.subtotal_price,
        "total_tax": data.total_tax,
        "total_shipping": data.total_shipping,
        "total_discounts": data.total_discounts,
        "total_price": data.total_price,
        "financial_status": data.financial_status or FinancialStatus.pending,
        "fulfillment_status": data.fulfillment_status or FulfillmentStatus.unfulfilled,
        "cancelled_at": data.cancelled_at,
        "cancel_reason": data.cancel_reason,
        "closed_at": data.closed_at,
        "shipping_address": shipping,
        "billing_address": billing,
        "shipping_postal_code": postal_code_for_storage(shipping.get("zip") if shipping else None),
        "tags": list(data.tags),
        "note": note,
    }
    placed_at = data.processed_at or data.created_at
    if placed_at is not None:
        values["placed_at"] = placed_at
    return values


# --------------------------------------------------------------------------- public API


async def upsert_order(
    session: AsyncSession,
    data: OrderIn,
    *,
    source: SourceChannel | str = SourceChannel.online_store,
) -> UpsertResult:
    """Create or update one validated order with its lines, shipments, refunds and customer."""
    source = SourceChannel(source)
    stmt = select(Order).where(Order.source == source, Order.external_id == data.id)
    order = (await session.exec(stmt)).first()
    if order is not None and _is_stale(data.updated_at, order.source_updated_at):
        return UpsertResult(Outcome.unchanged, order)

    customer, customer_changed = await _upsert_customer(
        session, data.customer, data.email or data.contact_email, data.customer_locale
    )
    values = _order_values(data, customer)
    created = order is None
    was_cancelled = False
    if order is None:
        order = Order(source=source, external_id=data.id, source_updated_at=data.updated_at, **values)
        session.add(order)
        changed = True
    else:
        was_cancelled = order.is_cancelled
        changed = assign_changed(order, values)
        if data.updated_at is not None:
            order.source_updated_at = data.updated_at
    await session.flush()

    lines_changed, lines = await _upsert_lines(session, order, data.line_items, data.tags)
    shipments_changed = False
    seen_fulfillments: set[str] = set()
    for index, fulfillment in enumerate(data.fulfillments):
        if fulfillment.id in seen_fulfillments:
            raise payload_refused(f"fulfillments.{index}.id: duplicate fulfillment id")
        seen_fulfillments.add(fulfillment.id)
        shipments_changed |= await _apply_fulfillment(session, order, fulfillment, lines)
    fully = {item.id for item in data.line_items if item.fulfillment_status == "fulfilled"}
    lines_changed |= await _sync_fulfilled_quantities(session, order, fully)
    refunds_created = False
    for refund in data.refunds:
        refunds_created |= await _apply_refund(session, order, refund)

    events: list[str] = []
    cancelled_now = order.is_cancelled and not was_cancelled and not created
    if created:
        events.append("order.created")
        open_order = order.fulfillment_status in (FulfillmentStatus.unfulfilled, FulfillmentStatus.partial)
        if not order.is_cancelled and open_order:
            await reserve_order(session, order)
    elif cancelled_now:
        await release_order(session, order)
        events.append("order.cancelled")
    elif changed or lines_changed or customer_changed or refunds_created:
        events.append("order.updated")
    if not created and (changed or lines_changed or customer_changed):
        order.updated_at = utcnow()
    if shipments_changed:
        events.append("shipment.updated")
    if refunds_created:
        events.append("refund.created")
    await session.flush()

    if created:
        status = Outcome.created
    elif events:
        status = Outcome.updated
    else:
        status = Outcome.unchanged
    return UpsertResult(status, order, tuple(events))


async def upsert_shopify_order(
    session: AsyncSession, payload: dict[str, Any], *, source: SourceChannel | str = SourceChannel.online_store
) -> UpsertResult:
    """Upsert a Shopify Admin REST order (``orders/create``, ``orders/updated``, an export)."""
    return await upsert_order(session, parse_order(payload), source=source)


async def upsert_shopify_fulfillment(session: AsyncSession, payload: dict[str, Any]) -> UpsertResult:
    """Apply a ``fulfillments/create`` or ``fulfillments/update`` payload to its order's shipment."""
    data = validate_payload(FulfillmentIn, payload, "fulfillment")
    if data.order_id is None:
        raise payload_refused("order_id: Field required")
    order = await _find_shopify_order(session, data.order_id)
    if order is None:
        raise payload_refused(f"order_id: order {data.order_id} is not in the order store yet", "unknown_order")
    lines = {line.external_id: line for line in await order_lines(session, order.id) if line.external_id}
    changed = await _apply_fulfillment(session, order, data, lines)
    if not changed:
        return UpsertResult(Outcome.unchanged, order)
    await _sync_fulfilled_quantities(session, order)
    lines_now = await order_lines(session, order.id)
    if order.fulfillment_status in (FulfillmentStatus.unfulfilled, FulfillmentStatus.partial):
        total = sum(line.quantity for line in lines_now)
        done = sum(line.fulfilled_quantity for line in lines_now)
        if total and done >= total:
            order.fulfillment_status = FulfillmentStatus.fulfilled
        elif done:
            order.fulfillment_status = FulfillmentStatus.partial
    order.updated_at = utcnow()
    await session.flush()
    return UpsertResult(Outcome.updated, order, ("shipment.updated",))


async def apply_shopify_refund(session: AsyncSession, payload: dict[str, Any]) -> UpsertResult:
    """Record a ``refunds/create`` payload as a ``Refund`` of its order (idempotent)."""
    data = validate_payload(RefundIn, payload, "refund")
    if data.order_id is None:
        raise payload_refused("order_id: Field required")
    order = await _find_shopify_order(session, data.order_id)
    if order is None:
        raise payload_refused(f"order_id: order {data.order_id} is not in the order store yet", "unknown_order")
    if not await _apply_refund(session, order, data):
        return UpsertResult(Outcome.unchanged, order)
    return UpsertResult(Outcome.updated, order, ("refund.created",))


async def cancel_from_shopify(session: AsyncSession, payload: dict[str, Any]) -> UpsertResult:
    """Apply an ``orders/cancelled`` payload (a full order): the order ends up cancelled."""
    data = parse_order(payload)
    if data.cancelled_at is None:
        data = data.model_copy(update={"cancelled_at": data.updated_at or utcnow()})
    return await upsert_order(session, data)
