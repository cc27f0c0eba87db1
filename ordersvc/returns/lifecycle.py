"""An RMA's status transitions and their effects: restock on receipt, refund, store credit, exchange shipping."""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.inventory import release_sku, restock, ship_sku
from ordersvc.models import (
    FinancialStatus,
    Order,
    OrderLine,
    Refund,
    Resolution,
    ReturnAuthorization,
    ReturnLine,
    ReturnMethod,
    ReturnReason,
    RmaStatus,
    StoreCredit,
    Warehouse,
)
from ordersvc.returns.labels import apply_label
from ordersvc.returns.policy import ReturnPolicy, load_policy
from shopbase.clock import utcnow
from shopbase.refusal import Refused
from shopbase.rows import locked as locked_row
from shopbase.text import clean_text

_TERMINAL_FOR = {
    Resolution.refund: RmaStatus.refunded,
    Resolution.exchange: RmaStatus.exchanged,
    Resolution.store_credit: RmaStatus.credited,
}
_STOPPABLE = {RmaStatus.requested, RmaStatus.approved, RmaStatus.label_issued}

# The general graph; ``transition`` also checks method and resolution (see there).
ALLOWED_TRANSITIONS: dict[RmaStatus, frozenset[RmaStatus]] = {
    RmaStatus.requested: frozenset({RmaStatus.approved, RmaStatus.rejected, RmaStatus.cancelled}),
    RmaStatus.approved: frozenset(
        {RmaStatus.label_issued, RmaStatus.in_transit, RmaStatus.received, RmaStatus.rejected, RmaStatus.cancelled}
    ),
    RmaStatus.label_issued: frozenset({RmaStatus.in_transit, RmaStatus.rejected, RmaStatus.cancelled}),
    RmaStatus.in_transit: frozenset({RmaStatus.received}),
    RmaStatus.received: frozenset({RmaStatus.refunded, RmaStatus.exchanged, RmaStatus.credited}),
    RmaStatus.refunded: frozenset(),
    RmaStatus.exchanged: frozenset(),
    RmaStatus.credited: frozenset(),
    RmaStatus.rejected: frozenset(),
    RmaStatus.cancelled: frozenset(),
}
_TIMESTAMP = {
    RmaStatus.approved: "approved_at",
    RmaStatus.label_issued: "label_issued_at",
    RmaStatus.in_transit: "in_transit_at",
    RmaStatus.received: "received_at",
    RmaStatus.refunded: "refunded_at",
    RmaStatus.exchanged: "exchanged_at",
    RmaStatus.credited: "credited_at",
    RmaStatus.rejected: "rejected_at",
    RmaStatus.cancelled: "cancelled_at",
}


def check_transition(rma: ReturnAuthorization, new_status: RmaStatus) -> None:
    """Raise :class:`~shopbase.refusal.Refused` unless ``rma`` may move to ``new_status``.

    Mailed returns go approved → label_issued → in_transit; drop-off and in-store returns
    have no label and go approved → in_transit or straight to received. The final status
    must match the resolution (refund → refunded, store credit → credited, exchange →
    exchanged).
    """
    current = RmaStatus(rma.status)
    if new_status == current:
        raise Refused("already_in_status", f"return {rma.rma_number} is already {current.value}")
    if new_status not in ALLOWED_TRANSITIONS[current]:
        raise Refused(
            "transition_not_allowed",
            f"return {rma.rma_number} cannot go from {current.value} to {new_status.value}",
        )
    mailed = rma.method == ReturnMethod.mail
    if current == RmaStatus.approved:
        if new_status == RmaStatus.label_issued and not mailed:
            raise Refused(
                "no_label_for_method",
                f"return {rma.rma_number} is a {ReturnMethod(rma.method).value} return and gets no label",
            )
        if new_status in {RmaStatus.in_transit, RmaStatus.received} and mailed:
            raise Refused(
                "label_required",
                f"return {rma.rma_number} needs its label before it can be {new_status.value}",
            )
    if current == RmaStatus.received and new_status != _TERMINAL_FOR[Resolution(rma.resolution)]:
        raise Refused(
            "resolution_mismatch",
            f"return {rma.rma_number} was requested as {Resolution(rma.resolution).value}, "
            f"so it cannot be {new_status.value}",
        )


async def load_rma_lines(
    session: AsyncSession, rma: ReturnAuthorization
) -> list[tuple[ReturnLine, OrderLine]]:
    """The RMA's lines with the order lines they return, in order-line order."""
    stmt = (
        select(ReturnLine, OrderLine)
        .join(OrderLine, col(OrderLine.id) == col(ReturnLine.order_line_id))
        .where(ReturnLine.rma_id == rma.id)
        .order_by(col(OrderLine.id))
    )
    return [(rl, ol) for rl, ol in (await session.exec(stmt)).all()]


def _append_note(rma: ReturnAuthorization, text: str | None) -> None:
    if text:
        joined = f"{rma.note}\n{text}" if rma.note else text
        rma.note = joined[-1000:]


_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _credit_code() -> str:
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    return f"SC-{raw[:4]}-{raw[4:8]}-{raw[8:]}"


async def transition(
    session: AsyncSession,
    rma: ReturnAuthorization,
    new_status: RmaStatus | str,
    *,
    now: datetime | None = None,
    note: str | None = None,
    policy: ReturnPolicy | None = None,
) -> ReturnAuthorization:
    """Move ``rma`` to ``new_status`` and carry out what that status means.

    received → returned items are restocked; refunded → a ``Refund`` row (and the order's
    financial status follows); credited → a ``StoreCredit`` with a unique code; exchanged →
    the reserved replacements leave stock (recorded in the note); rejected/cancelled → an
    exchange's reservation is released. Anything else is refused (``Refused``, nothing written).
    """
    try:
        target = RmaStatus(new_status)
    except ValueError as exc:
        raise Refused("unknown_status", f"unknown return status {str(new_status)[:32]!r}", status=422) from exc
    now = now or utcnow()
    locked = await locked_row(session, ReturnAuthorization, rma.id)
    check_transition(locked, target)
    pairs = await load_rma_lines(session, locked)
    notes: list[str] = []

    if target == RmaStatus.label_issued:
        apply_label(locked, policy or await load_policy(session), now)
    elif target == RmaStatus.received:
        policy = policy or await load_policy(session)
        notes.extend(await _restock_returned(session, pairs, policy))
    elif target == RmaStatus.refunded:
        await _record_refund(session, locked, now)
    elif target == RmaStatus.credited:
        session.add(
            StoreCredit(
                customer_id=locked.customer_id,
                rma_id=locked.id,
                code=_credit_code(),
                amount=locked.credit_amount,
                currency=locked.currency,
                created_at=now,
            )
        )
    elif target == RmaStatus.exchanged:
        for sku, quantity in _exchange_quantities(pairs).items():
            await ship_sku(session, sku, quantity)
            notes.append(f"Replacement shipped: {sku} x {quantity}")
    elif target in {RmaStatus.rejected, RmaStatus.cancelled}:
        for sku, quantity in _exchange_quantities(pairs).items():
            await release_sku(session, sku, quantity)

    locked.status = target
    setattr(locked, _TIMESTAMP[target], now)
    locked.updated_at = now
    extra = clean_text(note)[:500]
    _append_note(locked, "\n".join([*notes, *([extra] if extra else [])]))
    session.add(locked)
    await session.flush()
    return locked


def _exchange_quantities(pairs: Sequence[tuple[ReturnLine, OrderLine]]) -> dict[str, int]:
    wanted: dict[str, int] = defaultdict(int)
    for rl, _ in pairs:
        if rl.exchange_sku:
            wanted[rl.exchange_sku] += rl.quantity
    return dict(sorted(wanted.items()))


async def _restock_returned(
    session: AsyncSession, pairs: Sequence[tuple[ReturnLine, OrderLine]], policy: ReturnPolicy
) -> list[str]:
    has_warehouse = (await session.exec(select(Warehouse.id).limit(1))).first() is not None
    notes: list[str] = []
    for rl, line in pairs:
        if not line.sku:
            continue
        sellable = rl.condition in policy.restock_conditions and rl.reason not in {
            ReturnReason.damaged,
            ReturnReason.defective,
        }
        if not sellable:
            notes.append(f"Not restocked ({rl.condition.value}, {rl.reason.value}): {line.sku} x {rl.quantity}")
        elif not has_warehouse:
            notes.append(f"Not restocked (no warehouse): {line.sku} x {rl.quantity}")
        else:
            await restock(session, line.sku, rl.quantity)
    return notes


async def _record_refund(session: AsyncSession, rma: ReturnAuthorization, now: datetime) -> None:
    order = await locked_row(session, Order, rma.order_id)
    if rma.refund_amount > 0:
        session.add(
            Refund(
                order_id=rma.order_id,
                rma_id=rma.id,
                external_id=f"shopdesk:rma:{rma.rma_number}",
                amount=rma.refund_amount,
                currency=rma.currency,
                note=f"return {rma.rma_number}",
                processed_at=now,
            )
        )
        await session.flush()
    total_stmt = select(sa.func.coalesce(sa.func.sum(Refund.amount), 0)).where(
        Refund.order_id == order.id
    )
    refunded = Decimal(str((await session.exec(total_stmt)).one()))
    if refunded > 0 and order.financial_status in {
        FinancialStatus.paid,
        FinancialStatus.partially_paid,
        FinancialStatus.partially_refunded,
    }:
        order.financial_status = (
            FinancialStatus.refunded if refunded >= order.total_price else FinancialStatus.partially_refunded
        )
        order.updated_at = now
        session.add(order)
