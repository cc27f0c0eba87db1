"""Everything the order store holds about a person, and erasing it (GDPR access and erasure).

``customers_for_email`` finds the customers and orders of an email address (case-insensitive,
guest orders included); ``order_store_report`` is the access report's order-store part;
``erase_order_records`` blanks the personal fields of customers and orders (name, email, phone,
addresses, notes; also return and refund notes, which may quote the customer). Order rows,
lines, money and statuses stay: they are the shop's bookkeeping. Nothing here commits.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import Customer, Order, OrderLine, Refund, ReturnAuthorization, ReturnLine, StoreCredit
from ordersvc.service import normalize_email
from shopbase.clock import utcnow

__all__ = [
    "OrderStoreMatch",
    "customers_for_email",
    "orders_of",
    "personal_values",
    "order_store_report",
    "erase_order_records",
]

_ADDRESS_FIELDS = ("name", "first_name", "last_name", "company", "address1", "address2", "phone", "zip")


@dataclass
class OrderStoreMatch:
    customers: list[Customer]
    orders: list[Order]

    @property
    def customer_ids(self) -> list[int]:
        return [c.id for c in self.customers if c.id is not None]

    @property
    def order_ids(self) -> list[int]:
        return [o.id for o in self.orders if o.id is not None]


async def customers_for_email(session: AsyncSession, email: str) -> list[Customer]:
    wanted = normalize_email(email or "")
    if not wanted:
        return []
    stmt = select(Customer).where(sa.func.lower(Customer.email) == wanted).order_by(col(Customer.id))
    return list((await session.exec(stmt)).all())


async def orders_of(session: AsyncSession, customer_ids: Sequence[int], emails: Sequence[str]) -> list[Order]:
    """The orders of these customers and the (guest) orders placed with these emails."""
    conditions: list[sa.ColumnElement[bool]] = []
    if customer_ids:
        conditions.append(col(Order.customer_id).in_(list(customer_ids)))
    wanted = sorted({normalize_email(e) for e in emails if e})
    if wanted:
        conditions.append(sa.func.lower(Order.email).in_(wanted))
    if not conditions:
        return []
    stmt = select(Order).where(sa.or_(*conditions)).order_by(col(Order.placed_at), col(Order.id))
    return list((await session.exec(stmt)).all())


def personal_values(match: OrderStoreMatch) -> set[str]:
    """The strings that identify the person: emails, phones, names, address lines (for a
    final sweep of free text elsewhere, and for the test that nothing is left)."""
    values: set[str] = set()
    for customer in match.customers:
        values.update(v for v in (customer.email, customer.phone) if v)
        if customer.first_name and customer.last_name:
            values.add(f"{customer.first_name} {customer.last_name}")
    for order in match.orders:
        values.update(v for v in (order.email, order.phone) if v)
        for address in (order.shipping_address, order.billing_address):
            if not isinstance(address, dict):
                continue
            for key in ("name", "address1", "address2", "phone"):
                value = address.get(key)
                if isinstance(value, str) and value.strip():
                    values.add(value.strip())
            first, last = address.get("first_name"), address.get("last_name")
            if isinstance(first, str) and isinstance(last, str) and first and last:
                values.add(f"{first} {last}")
    return {v for v in values if len(v) >= 4}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


_CUSTOMER_FIELDS = ("id", "external_id", "email", "phone", "first_name", "last_name", "locale", "created_at",
                    "redacted_at")
_ORDER_FIELDS = ("id", "source", "external_id", "name", "email", "phone", "currency", "subtotal_price", "total_tax",
                 "total_shipping", "total_discounts", "total_price", "financial_status", "fulfillment_status",
                 "placed_at", "cancelled_at", "cancel_reason", "shipping_address", "billing_address", "tags", "note")
_RMA_FIELDS = ("id", "rma_number", "order_id", "status", "resolution", "method", "currency", "refund_amount",
               "credit_amount", "label_carrier", "label_tracking_number", "note", "requested_at")


async def order_store_report(session: AsyncSession, match: OrderStoreMatch) -> dict[str, Any]:
    """The customers, orders (with lines), returns, refunds and store credit, JSON-ready."""
    order_ids = match.order_ids
    lines = list(await session.exec(select(OrderLine).where(col(OrderLine.order_id).in_(order_ids)))) \
        if order_ids else []
    rmas = list(await session.exec(select(ReturnAuthorization).where(
        col(ReturnAuthorization.order_id).in_(order_ids)).order_by(col(ReturnAuthorization.id)))) if order_ids else []
    rma_ids = [r.id for r in rmas]
    return_lines = list(await session.exec(select(ReturnLine).where(col(ReturnLine.rma_id).in_(rma_ids)))) \
        if rma_ids else []
    refunds = list(await session.exec(select(Refund).where(col(Refund.order_id).in_(order_ids)))) \
        if order_ids else []
    credits = list(await session.exec(select(StoreCredit).where(
        col(StoreCredit.customer_id).in_(match.customer_ids)))) if match.customer_ids else []
    orders = []
    for order in match.orders:
        entry = {key: _plain(getattr(order, key)) for key in _ORDER_FIELDS}
        entry["lines"] = [
            {"sku": line.sku, "title": line.title, "variant_title": line.variant_title, "quantity": line.quantity,
             "unit_price": str(line.unit_price)}
            for line in lines if line.order_id == order.id
        ]
        orders.append(entry)
    returns = []
    for rma in rmas:
        entry = {key: _plain(getattr(rma, key)) for key in _RMA_FIELDS}
        entry["lines"] = [
            {"order_line_id": rl.order_line_id, "quantity": rl.quantity, "reason": _plain(rl.reason),
             "reason_note": rl.reason_note, "condition": _plain(rl.condition)}
            for rl in return_lines if rl.rma_id == rma.id
        ]
        returns.append(entry)
    return {
        "customers": [{key: _plain(getattr(c, key)) for key in _CUSTOMER_FIELDS} for c in match.customers],
        "orders": orders,
        "returns": returns,
        "refunds": [{"order_id": r.order_id, "amount": str(r.amount), "currency": r.currency, "note": r.note,
                     "processed_at": _plain(r.processed_at)} for r in refunds],
        "store_credit": [{"code": s.code, "amount": str(s.amount), "currency": s.currency,
                          "created_at": _plain(s.created_at)} for s in credits],
    }


async def erase_order_records(
    session: AsyncSession, match: OrderStoreMatch, *, everyone: bool = False
) -> dict[str, int]:
    """Blank the personal fields of ``match``'s customers and orders (see the module docstring);
    ``everyone``: of every customer and order (set-based, whatever their number)."""
    now = utcnow()
    customer_fields = {"email": None, "phone": None, "first_name": "", "last_name": "", "locale": None,
                       "updated_at": now}
    order_fields = {"email": None, "phone": None, "shipping_address": None, "billing_address": None,
                    "shipping_postal_code": None, "note": None, "updated_at": now}

    def among(column: Any, ids: list[int]) -> sa.ColumnElement[bool]:
        return sa.true() if everyone else col(column).in_(ids)

    customer_ids, order_ids = match.customer_ids, match.order_ids
    redacted = {c.id: c.redacted_at or now for c in match.customers}
    plain = {"synchronize_session": False}  # the loaded rows are brought up to date below
    if customer_ids or everyone:
        await session.exec(sa.update(Customer).execution_options(**plain).where(among(Customer.id, customer_ids)).values(
            **customer_fields, redacted_at=sa.func.coalesce(col(Customer.redacted_at), now)))
    if order_ids or everyone:
        await session.exec(sa.update(Order).execution_options(**plain).where(among(Order.id, order_ids)).values(**order_fields))
        await session.exec(sa.update(ReturnAuthorization).where(
            among(ReturnAuthorization.order_id, order_ids)).values(note=None, updated_at=now))
        rmas = sa.select(col(ReturnAuthorization.id)).where(among(ReturnAuthorization.order_id, order_ids))
        await session.exec(sa.update(ReturnLine).where(col(ReturnLine.rma_id).in_(rmas)).values(reason_note=None))
        await session.exec(sa.update(Refund).where(among(Refund.order_id, order_ids)).values(note=None))
    # the session's copies say what the database now holds (without another read or write)
    for customer in match.customers:
        for key, value in {**customer_fields, "redacted_at": redacted[customer.id]}.items():
            set_committed_value(customer, key, value)
    for order in match.orders:
        for key, value in order_fields.items():
            set_committed_value(order, key, value)
    return {"customers": len(match.customers), "orders": len(match.orders)}
