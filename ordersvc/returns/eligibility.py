"""Which order lines can be returned now, and what they can be exchanged for.

The window and delivery rules are described in the package docstring.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.inventory import available_by_sku
from ordersvc.models import (
    Order,
    OrderLine,
    ProductVariant,
    ReturnAuthorization,
    ReturnLine,
    RmaStatus,
    Shipment,
    ShipmentLine,
    SourceChannel,
)
from ordersvc.returns.policy import ReturnPolicy, load_policy
from ordersvc.service import order_lines
from ordersvc.tracking import ShipmentStatus
from shopbase.clock import utcnow

# A shipment in one of these states has not reached the customer, whatever the calendar says.
_NOT_DELIVERED_STATES = {
    ShipmentStatus("exception"),
    ShipmentStatus("failed_attempt"),
    ShipmentStatus("available_for_pickup"),
}
_DELIVERED = ShipmentStatus("delivered")


@dataclass(frozen=True)
class LineEligibility:
    """Whether (and how many units of) one order line can be returned now.

    ``reason`` (when not eligible): ``order_cancelled``, ``final_sale``, ``not_returnable``,
    ``not_delivered``, ``window_expired`` (``deadline`` is when it closed) or
    ``already_returned``. ``returned_quantity`` counts units in RMAs that are not
    rejected or cancelled.
    """

    order_line_id: int
    sku: str | None
    title: str
    eligible: bool
    reason: str | None
    max_quantity: int
    deadline: datetime | None
    delivered_at: datetime | None = None
    returned_quantity: int = 0


_INACTIVE = {RmaStatus.rejected, RmaStatus.cancelled}

#: policy refusals a person with permission may override (with a reason, audited by the inbox)
OVERRIDABLE = frozenset({"final_sale", "not_returnable", "window_expired"})


def _delivered_on(
    shipment: Shipment, policy: ReturnPolicy, now: datetime
) -> datetime | None:
    if shipment.delivered_at is not None:
        return shipment.delivered_at
    if shipment.status == _DELIVERED:
        return shipment.last_event_at or shipment.shipped_at or shipment.updated_at
    if shipment.shipped_at is None or shipment.status in _NOT_DELIVERED_STATES:
        return None
    presumed = shipment.shipped_at + timedelta(days=policy.presumed_delivery_days)
    return presumed if presumed <= now else None


def _window_close(delivered: datetime, days: int) -> datetime:
    last_day: date = delivered.astimezone(UTC).date() + timedelta(days=days)
    return datetime.combine(last_day, time(23, 59, 59), tzinfo=UTC)


def line_eligibility(
    order: Order,
    lines: Sequence[OrderLine],
    shipments: Sequence[Shipment],
    existing_returns: Sequence[tuple[ReturnAuthorization, Sequence[ReturnLine]]],
    policy: ReturnPolicy,
    now: datetime,
    *,
    shipment_lines: Sequence[ShipmentLine] = (),
    waive: frozenset[str] = frozenset(),
) -> list[LineEligibility]:
    """Eligibility of every line of ``order``; pure, no database access. ``waive`` lists policy
    refusals a person overrides (a subset of :data:`OVERRIDABLE`); the facts (cancelled, not
    delivered, already returned) are never waived."""
    waive = waive & OVERRIDABLE
    returned: dict[int, int] = defaultdict(int)
    for rma, rma_lines in existing_returns:
        if rma.status in _INACTIVE:
            continue
        for rl in rma_lines:
            returned[rl.order_line_id] += rl.quantity

    delivered = {s.id: _delivered_on(s, policy, now) for s in shipments}
    by_line: dict[int, list[ShipmentLine]] = defaultdict(list)
    for sl in shipment_lines:
        by_line[sl.order_line_id].append(sl)
    whole_order_delivery: datetime | None = None
    if shipments and all(d is not None for d in delivered.values()):
        whole_order_delivery = max(d for d in delivered.values() if d is not None)
    elif not shipments and order.source == SourceChannel.pos:
        whole_order_delivery = order.placed_at

    result: list[LineEligibility] = []
    for line in lines:
        assert line.id is not None
        already = returned.get(line.id, 0)
        mapped = by_line.get(line.id)
        if mapped:
            dates = [delivered.get(sl.shipment_id) for sl in mapped]
            delivered_qty = sum(sl.quantity for sl, d in zip(mapped, dates) if d is not None)
            known = [d for d in dates if d is not None]
            delivered_at = max(known) if known else None
        else:
            delivered_at = whole_order_delivery
            delivered_qty = line.quantity if delivered_at is not None else 0
        delivered_qty = min(delivered_qty, line.quantity)
        deadline = (
            _window_close(delivered_at, policy.window_for(line.product_type))
            if delivered_at is not None
            else None
        )
        rule = policy.rule_for(line.product_type)
        reason: str | None = None
        if order.is_cancelled:
            reason = "order_cancelled"
        elif line.final_sale and policy.final_sale_excluded and "final_sale" not in waive:
            reason = "final_sale"
        elif (not line.returnable or (rule is not None and not rule.returnable)) and "not_returnable" not in waive:
            reason = "not_returnable"
        elif delivered_at is None or delivered_qty <= 0:
            reason = "not_delivered"
        elif deadline is not None and now > deadline and "window_expired" not in waive:
            reason = "window_expired"
        elif delivered_qty - already <= 0:
            reason = "already_returned"
        max_quantity = 0 if reason else delivered_qty - already
        result.append(
            LineEligibility(
                order_line_id=line.id,
                sku=line.sku,
                title=line.title,
                eligible=reason is None,
                reason=reason,
                max_quantity=max_quantity,
                deadline=deadline,
                delivered_at=delivered_at,
                returned_quantity=already,
            )
        )
    return result


@dataclass
class OrderFacts:
    lines: list[OrderLine]
    shipments: list[Shipment]
    shipment_lines: list[ShipmentLine]
    returns: list[tuple[ReturnAuthorization, list[ReturnLine]]]


async def load_order_facts(session: AsyncSession, order: Order) -> OrderFacts:
    lines = await order_lines(session, order.id)
    shipments = list(
        (await session.exec(select(Shipment).where(Shipment.order_id == order.id))).all()
    )
    shipment_lines: list[ShipmentLine] = []
    if shipments:
        ids = [s.id for s in shipments]
        shipment_lines = list(
            (
                await session.exec(select(ShipmentLine).where(col(ShipmentLine.shipment_id).in_(ids)))
            ).all()
        )
    rmas = list(
        (
            await session.exec(
                select(ReturnAuthorization).where(ReturnAuthorization.order_id == order.id)
            )
        ).all()
    )
    returns: list[tuple[ReturnAuthorization, list[ReturnLine]]] = []
    if rmas:
        rma_lines = (
            await session.exec(
                select(ReturnLine).where(col(ReturnLine.rma_id).in_([r.id for r in rmas]))
            )
        ).all()
        grouped: dict[int, list[ReturnLine]] = defaultdict(list)
        for rl in rma_lines:
            grouped[rl.rma_id].append(rl)
        returns = [(r, grouped.get(r.id or 0, [])) for r in rmas]
    return OrderFacts(lines, shipments, shipment_lines, returns)


async def order_eligibility(
    session: AsyncSession,
    order: Order,
    *,
    policy: ReturnPolicy | None = None,
    now: datetime | None = None,
) -> list[LineEligibility]:
    """``line_eligibility`` with everything loaded from the database."""
    policy = policy or await load_policy(session)
    facts = await load_order_facts(session, order)
    return line_eligibility(
        order,
        facts.lines,
        facts.shipments,
        facts.returns,
        policy,
        now or utcnow(),
        shipment_lines=facts.shipment_lines,
    )


async def exchange_options(session: AsyncSession, order_line: OrderLine) -> list[ProductVariant]:
    """Other variants (same ``product_key``, another SKU) of the line's product in stock."""
    if not order_line.sku:
        return []
    current = (
        await session.exec(select(ProductVariant).where(ProductVariant.sku == order_line.sku))
    ).first()
    if current is None:
        return []
    siblings = list(
        (
            await session.exec(
                select(ProductVariant)
                .where(
                    ProductVariant.product_key == current.product_key,
                    ProductVariant.sku != current.sku,
                )
                .order_by(col(ProductVariant.sku))
            )
        ).all()
    )
    stock = await available_by_sku(session, [v.sku for v in siblings])
    return [v for v in siblings if stock.get(v.sku, 0) > 0]
