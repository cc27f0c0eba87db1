"""Shopify's mandatory privacy webhooks: ``customers/redact`` and ``customers/data_request``."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import Customer, Order, SourceChannel
from ordersvc.service import order_lines
from ordersvc.shopify.payloads import RedactIn, payload_refused, validate_payload
from ordersvc.shopify.upsert import assign_changed
from shopbase.clock import utcnow


async def _customers_and_orders(
    session: AsyncSession, data: RedactIn, order_ids: Sequence[str]
) -> tuple[list[Customer], list[Order]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if data.customer.id is not None:
        conditions.append(col(Customer.external_id) == data.customer.id)
    if data.customer.email is not None:
        same = sa.or_(col(Customer.external_id).is_(None), col(Customer.external_id) == data.customer.id)
        conditions.append(sa.and_(col(Customer.email) == data.customer.email, same))
    customers: list[Customer] = []
    if conditions:
        customers = list((await session.exec(select(Customer).where(sa.or_(*conditions)))).all())
    order_conditions: list[sa.ColumnElement[bool]] = []
    customer_ids = [c.id for c in customers if c.id is not None]
    if customer_ids:
        order_conditions.append(col(Order.customer_id).in_(customer_ids))
    if order_ids:
        order_conditions.append(
            sa.and_(col(Order.source) == SourceChannel.online_store, col(Order.external_id).in_(list(order_ids)))
        )
    if data.customer.email is not None:
        order_conditions.append(col(Order.email) == data.customer.email)
    orders: list[Order] = []
    if order_conditions:
        stmt = select(Order).where(sa.or_(*order_conditions)).order_by(col(Order.placed_at), col(Order.id))
        orders = list((await session.exec(stmt)).all())
    return customers, orders


async def redact_customer(session: AsyncSession, payload: dict[str, Any]) -> dict[str, int]:
    """``customers/redact``: blank the customer's PII and their orders' contact details.

    Order rows, lines, refunds and money stay (bookkeeping). Returns counts only.
    """
    data = validate_payload(RedactIn, payload, "customers/redact")
    if data.customer.id is None and data.customer.email is None:
        raise payload_refused("customer.id: Field required")
    customers, orders = await _customers_and_orders(session, data, data.orders_to_redact)
    now = utcnow()
    for customer in customers:
        assign_changed(customer, {"email": None, "phone": None, "first_name": "", "last_name": "", "locale": None})
        customer.redacted_at = customer.redacted_at or now
        customer.updated_at = now
    for order in orders:
        blank = {
            "email": None,
            "phone": None,
            "shipping_address": None,
            "billing_address": None,
            "shipping_postal_code": None,
            "note": None,
        }
        if assign_changed(order, blank):
            order.updated_at = now
    await session.flush()
    return {"customers": len(customers), "orders": len(orders)}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


async def customer_data_report(session: AsyncSession, payload: dict[str, Any]) -> dict[str, Any]:
    """``customers/data_request``: everything the order store holds on the customer, JSON-ready."""
    data = validate_payload(RedactIn, payload, "customers/data_request")
    if data.customer.id is None and data.customer.email is None:
        raise payload_refused("customer.id: Field required")
    customers, orders = await _customers_and_orders(session, data, data.orders_requested)
    customer_fields = (
        "id", "external_id", "email", "phone", "first_name", "last_name", "locale", "created_at", "redacted_at",
    )  # fmt: skip
    order_fields = (
        "id", "source", "external_id", "name", "email", "phone", "currency", "total_price",
        "financial_status", "fulfillment_status", "placed_at", "cancelled_at", "shipping_address",
        "billing_address", "tags", "note",
    )  # fmt: skip
    report_orders = []
    for order in orders:
        entry = {key: _plain(getattr(order, key)) for key in order_fields}
        entry["lines"] = [
            {"sku": line.sku, "title": line.title, "quantity": line.quantity, "unit_price": str(line.unit_price)}
            for line in await order_lines(session, order.id)
        ]
        report_orders.append(entry)
    return {
        "customers": [{key: _plain(getattr(c, key)) for key in customer_fields} for c in customers],
        "orders": report_orders,
    }
