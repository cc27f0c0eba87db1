"""Order changes a customer may ask for before shipping: cancel the order, change the address.

Both functions lock the order row, re-check the rules on the fresh row and either change
it or raise ``shopbase.refusal.Refused`` with a machine-readable ``code`` while writing nothing. The
caller commits.

An order counts as shipped (and can no longer be changed) once its fulfillment status is
not ``unfulfilled`` or any shipment row exists: a shipment with a label but no scan is
still on its way to the carrier. The refusal says ``partially_fulfilled`` when the
shipment lines cover only part of the ordered quantity and ``already_fulfilled``
otherwise (including shipments whose lines are not known).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from babel import Locale
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.inventory import release_order
from ordersvc.models import (
    FinancialStatus,
    FulfillmentStatus,
    Order,
    OrderLine,
    Refund,
    Shipment,
    ShipmentLine,
)
from shopbase.clock import utcnow
from shopbase.refusal import Refused
from shopbase.rows import locked as locked_row
from shopbase.text import clean_line

__all__ = [
    "Cancellation",
    "ADDRESS_FIELDS",
    "REQUIRED_ADDRESS_FIELDS",
    "cancel_order",
    "change_address",
    "check_address",
    "check_changeable",
    "refund_due",
]

# Shopify's address keys; anything else in a new address is refused.
ADDRESS_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "name",
    "company",
    "address1",
    "address2",
    "city",
    "province",
    "province_code",
    "zip",
    "country",
    "country_code",
    "phone",
)
REQUIRED_ADDRESS_FIELDS: tuple[str, ...] = ("address1", "city", "zip", "country_code")
# Who receives the parcel is kept from the old address unless the new one says otherwise.
_RECIPIENT_FIELDS = ("first_name", "last_name", "name", "company", "phone")
_MAX_FIELD_LENGTH = 255
_MAX_ZIP_LENGTH = 16  # Order.shipping_postal_code

_UNPAID = {FinancialStatus.pending, FinancialStatus.authorized}
_ALREADY_SETTLED = {FinancialStatus.refunded, FinancialStatus.voided}


@dataclass(frozen=True)
class Cancellation:
    """A cancelled order and the refund it produced (None when nothing was charged)."""

    order: Order
    refund: Refund | None = None


def _not_changeable(code: str, order: Order) -> Refused:
    return Refused(code, f"order {order.name} cannot be changed: {code.replace('_', ' ')}", status=409, order=order)


async def refund_due(session: AsyncSession, order: Order) -> Decimal:
    """What cancelling ``order`` would refund: nothing when it was never charged (pending,
    authorized) or is settled already (refunded, voided); else the total less what was
    refunded so far."""
    if order.financial_status in _UNPAID or order.financial_status in _ALREADY_SETTLED:
        return Decimal("0")
    refunded_stmt = select(sa.func.coalesce(sa.func.sum(Refund.amount), 0)).where(Refund.order_id == order.id)
    already = Decimal(str((await session.exec(refunded_stmt)).one()))
    return max(order.total_price - already, Decimal("0"))


async def check_changeable(session: AsyncSession, order: Order) -> None:
    """Nothing when the order may still be cancelled or edited; else :class:`Refused` with the
    reason as its code (``already_cancelled``, ``already_fulfilled``, ``partially_fulfilled``)
    and the order in ``details["order"]``."""
    code = await _unchangeable_reason(session, order)
    if code is not None:
        raise _not_changeable(code, order)


async def _unchangeable_reason(session: AsyncSession, order: Order) -> str | None:
    if order.is_cancelled:
        return "already_cancelled"
    if order.fulfillment_status == FulfillmentStatus.partial:
        return "partially_fulfilled"
    if order.fulfillment_status != FulfillmentStatus.unfulfilled:
        return "already_fulfilled"
    shipment_ids = list(
        (await session.exec(select(Shipment.id).where(Shipment.order_id == order.id))).all()
    )
    if not shipment_ids:
        return None
    shipped_stmt = select(sa.func.coalesce(sa.func.sum(ShipmentLine.quantity), 0)).where(
        col(ShipmentLine.shipment_id).in_(shipment_ids)
    )
    shipped = int((await session.exec(shipped_stmt)).one())
    ordered_stmt = select(sa.func.coalesce(sa.func.sum(OrderLine.quantity), 0)).where(
        OrderLine.order_id == order.id
    )
    ordered = int((await session.exec(ordered_stmt)).one())
    if 0 < shipped < ordered:
        return "partially_fulfilled"
    return "already_fulfilled"


async def cancel_order(
    session: AsyncSession, order: Order, *, reason: str = "customer", actor: str = "bot"
) -> Cancellation:
    """Cancel an order that has not started shipping (else :class:`Refused`, nothing written).

    Unpaid orders (pending, authorized) become ``voided``; paid ones become ``refunded``
    with one ``Refund`` row for what has not been refunded yet. The external id
    ``shopdesk:cancel:<order id>`` makes a second cancellation refund impossible even
    across racing transactions. Reserved stock is released.
    """
    locked = await locked_row(session, Order, order.id)
    await check_changeable(session, locked)

    now = utcnow()
    reason_text = clean_line(reason, 64) or "customer"
    refund: Refund | None = None
    if locked.financial_status in _UNPAID:
        locked.financial_status = FinancialStatus.voided
    elif locked.financial_status not in _ALREADY_SETTLED:
        amount = await refund_due(session, locked)
        if amount > 0:
            assert locked.id is not None
            refund = Refund(
                order_id=locked.id,
                external_id=f"shopdesk:cancel:{locked.id}",
                amount=amount,
                currency=locked.currency,
                note=f"order cancelled by {clean_line(actor, 32) or 'bot'}: {reason_text}",
                processed_at=now,
            )
            session.add(refund)
        locked.financial_status = FinancialStatus.refunded

    await release_order(session, locked)
    locked.cancelled_at = now
    locked.cancel_reason = reason_text
    locked.updated_at = now
    session.add(locked)
    await session.flush()
    return Cancellation(order=locked, refund=refund)


@lru_cache(maxsize=1)
def _territories() -> Mapping[str, str]:
    names = Locale("en").territories
    return {code: name for code, name in names.items() if len(code) == 2 and code.isalpha() and code != "ZZ"}


def check_address(new_address: Mapping[str, Any]) -> dict[str, str]:
    """The cleaned address, or :class:`Refused` (``invalid_address``, 422) whose ``fields``
    hold one problem code per field: ``required``, ``too_long``, ``invalid`` (not text, or an
    unknown country code), ``unknown_field``.
    """
    cleaned, errors = _address_problems(new_address)
    if errors:
        raise Refused("invalid_address", "the address is incomplete or invalid", fields=errors, status=422)
    return cleaned


def _address_problems(new_address: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    errors: dict[str, str] = {}
    cleaned: dict[str, str] = {}
    if not isinstance(new_address, Mapping):
        return {}, {"address": "invalid"}
    for key, raw in new_address.items():
        if key not in ADDRESS_FIELDS:
            errors[str(key)[:64]] = "unknown_field"
            continue
        if raw is None:
            continue
        if not isinstance(raw, str):
            errors[key] = "invalid"
            continue
        value = clean_line(raw)
        if len(value) > _MAX_FIELD_LENGTH:
            errors[key] = "too_long"
        elif value:
            cleaned[key] = value
    for key in REQUIRED_ADDRESS_FIELDS:
        if key not in cleaned and key not in errors:
            errors[key] = "required"
    if "zip" in cleaned:
        cleaned["zip"] = cleaned["zip"].upper()
        if len(cleaned["zip"]) > _MAX_ZIP_LENGTH:
            errors["zip"] = "too_long"
    if "country_code" in cleaned:
        code = cleaned["country_code"].upper()
        if code not in _territories():
            errors["country_code"] = "invalid"
        else:
            cleaned["country_code"] = code
            cleaned.setdefault("country", _territories()[code])
    return cleaned, errors


async def change_address(
    session: AsyncSession, order: Order, new_address: Mapping[str, Any]
) -> Order:
    """Replace the shipping address of an order that has not started shipping.

    The location (street, city, zip, country …) is replaced as a whole; recipient fields
    (name, company, phone) not given in ``new_address`` are kept from the old address.
    """
    cleaned = check_address(new_address)
    locked = await locked_row(session, Order, order.id)
    await check_changeable(session, locked)
    old = dict(locked.shipping_address or {})
    merged: dict[str, Any] = {k: old[k] for k in _RECIPIENT_FIELDS if old.get(k)}
    merged.update(cleaned)
    locked.shipping_address = merged  # a new dict, so the JSON change is tracked
    locked.shipping_postal_code = cleaned["zip"]
    locked.updated_at = utcnow()
    session.add(locked)
    await session.flush()
    return locked
