"""The customer's view of money coming back: refunds, store credits and pending ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import Order, Refund, Resolution, ReturnAuthorization, RmaStatus, StoreCredit


@dataclass(frozen=True)
class MoneyMovement:
    """A refund or store credit for the bot's "where is my refund" answer.

    ``kind``: ``refund`` and ``store_credit`` have happened; ``pending_refund`` and
    ``pending_store_credit`` belong to returns still open (``status`` says where they are).
    """

    kind: Literal["refund", "store_credit", "pending_refund", "pending_store_credit"]
    amount: Decimal
    currency: str
    at: datetime
    order_name: str | None = None
    rma_number: str | None = None
    status: str | None = None
    code: str | None = None


_OPEN_STATUSES = [
    RmaStatus.requested,
    RmaStatus.approved,
    RmaStatus.label_issued,
    RmaStatus.in_transit,
    RmaStatus.received,
]


async def refunds_and_credits(session: AsyncSession, customer_id: int) -> list[MoneyMovement]:
    """Refunds of the customer's orders, their store credits and pending ones, newest first."""
    out: list[MoneyMovement] = []
    refunds = await session.exec(
        select(Refund, Order.name, ReturnAuthorization.rma_number)
        .join(Order, col(Order.id) == col(Refund.order_id))
        .outerjoin(ReturnAuthorization, col(ReturnAuthorization.id) == col(Refund.rma_id))
        .where(Order.customer_id == customer_id)
    )
    for refund, order_name, rma_number in refunds.all():
        out.append(
            MoneyMovement("refund", refund.amount, refund.currency, refund.processed_at, order_name, rma_number)
        )
    credits = await session.exec(
        select(StoreCredit, ReturnAuthorization.rma_number, Order.name)
        .outerjoin(ReturnAuthorization, col(ReturnAuthorization.id) == col(StoreCredit.rma_id))
        .outerjoin(Order, col(Order.id) == col(ReturnAuthorization.order_id))
        .where(StoreCredit.customer_id == customer_id)
    )
    for credit, rma_number, order_name in credits.all():
        out.append(
            MoneyMovement(
                "store_credit", credit.amount, credit.currency, credit.created_at, order_name, rma_number, code=credit.code
            )
        )
    pending = await session.exec(
        select(ReturnAuthorization, Order.name)
        .join(Order, col(Order.id) == col(ReturnAuthorization.order_id))
        .where(
            Order.customer_id == customer_id,
            col(ReturnAuthorization.status).in_(_OPEN_STATUSES),
            col(ReturnAuthorization.resolution).in_([Resolution.refund, Resolution.store_credit]),
        )
    )
    for rma, order_name in pending.all():
        is_credit = rma.resolution == Resolution.store_credit
        out.append(
            MoneyMovement(
                "pending_store_credit" if is_credit else "pending_refund",
                rma.credit_amount if is_credit else rma.refund_amount,
                rma.currency,
                rma.updated_at,
                order_name,
                rma.rma_number,
                status=RmaStatus(rma.status).value,
            )
        )
    out.sort(key=lambda m: m.at, reverse=True)
    return out
