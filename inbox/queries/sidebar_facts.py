"""What the order sidebar flags beside the orders (issue 14): late parcels and orders not shipped
by their expected date, and how each return's refund or store credit is made up."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import Resolution, ReturnMethod
from ordersvc.returns import AmountExplanation, explain_amounts, load_policy
from ordersvc.service import OrderBundle, expected_ship_date, shipment_is_late, shipping_policy
from ordersvc.tracking import ShipmentStatus

__all__ = ["SidebarFacts", "sidebar_facts"]


@dataclass
class SidebarFacts:
    #: shipment id → its ETA passed (or it stalled / has a problem) and it is not delivered
    late_shipments: set[int] = field(default_factory=set)
    #: order id → the date it should have shipped by, for unshipped orders past it
    unshipped_late: dict[int, datetime] = field(default_factory=dict)
    #: RMA id → the parts of its amount (None when the stored amount no longer matches the policy)
    amounts: dict[int, AmountExplanation | None] = field(default_factory=dict)


async def sidebar_facts(session: AsyncSession, bundles: list[OrderBundle], now: datetime) -> SidebarFacts:
    facts = SidebarFacts()
    if not bundles:
        return facts
    shipping = await shipping_policy(session)
    policy = await load_policy(session)
    delivered = ShipmentStatus("delivered")
    for bundle in bundles:
        order = bundle.order
        for sb in bundle.shipments:
            s = sb.shipment
            if s.id is not None and ShipmentStatus(s.status) != delivered and shipment_is_late(s, now):
                facts.late_shipments.add(s.id)
        if not bundle.shipments and order.cancelled_at is None and order.id is not None:
            ship_by = expected_ship_date(order, shipping)
            if ship_by < now:
                facts.unshipped_late[order.id] = ship_by
        lines = {ln.id: ln for ln in bundle.lines}
        for rb in bundle.returns:
            rma = rb.rma
            if rma.id is None:
                continue
            items = [(rl.reason, rl.quantity, lines[rl.order_line_id]) for rl in rb.lines if rl.order_line_id in lines]
            explained = explain_amounts(items, Resolution(rma.resolution), ReturnMethod(rma.method), policy,
                                        rma.currency)
            stored = rma.credit_amount if Resolution(rma.resolution) == Resolution.store_credit else rma.refund_amount
            facts.amounts[rma.id] = explained if explained.total == stored else None
    return facts
