"""What the order sidebar flags beside the orders (issue 14): late parcels and orders not shipped
by their expected date, how each return's refund or store credit is made up, and how the order's
total is made up (items, discounts, shipping, tax) with the refunds made outside returns (a
cancellation, a refund in Shopify) and what they cover."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import Order, Refund, Resolution, ReturnMethod
from ordersvc.returns import AmountExplanation, explain_amounts, load_policy
from ordersvc.service import OrderBundle, expected_ship_date, shipment_is_late, shipping_policy
from ordersvc.tracking import ShipmentStatus

__all__ = ["SidebarFacts", "OrderMoney", "sidebar_facts", "order_money"]


@dataclass
class OrderMoney:
    """How an order's total is made up, and its refunds outside returns."""

    #: items before discounts; None when the order's stored parts do not add up to its total
    items: Decimal | None
    discounts: Decimal
    shipping: Decimal
    tax: Decimal
    total: Decimal
    #: refunds not tied to a return (a cancellation, a refund made in Shopify), oldest first
    refunds: list[Refund]
    #: their sum
    refunded: Decimal
    #: "whole": they give back the whole total (items, shipping and tax); "part": less than that
    covers: str


def order_money(order: Order, refunds: tuple[Refund, ...] | list[Refund]) -> OrderMoney:
    """The order's parts (shown only when they add up to its total: the subtotal before or after
    discounts, plus shipping and tax) and its refunds outside returns."""
    items: Decimal | None = None
    parts = order.total_shipping + order.total_tax
    if order.subtotal_price - order.total_discounts + parts == order.total_price:
        items = order.subtotal_price
    elif order.subtotal_price + parts == order.total_price:  # the subtotal is already after discounts
        items = order.subtotal_price + order.total_discounts
    outside = sorted((r for r in refunds if r.rma_id is None), key=lambda r: (r.processed_at, r.id or 0))
    refunded = sum((r.amount for r in outside), Decimal("0"))
    covers = "" if not outside else ("whole" if refunded >= order.total_price else "part")
    return OrderMoney(items=items, discounts=order.total_discounts, shipping=order.total_shipping,
                      tax=order.total_tax, total=order.total_price, refunds=outside, refunded=refunded,
                      covers=covers)


@dataclass
class SidebarFacts:
    #: shipment id → its ETA passed (or it stalled / has a problem) and it is not delivered
    late_shipments: set[int] = field(default_factory=set)
    #: order id → the date it should have shipped by, for unshipped orders past it
    unshipped_late: dict[int, datetime] = field(default_factory=dict)
    #: RMA id → the parts of its amount (None when the stored amount no longer matches the policy)
    amounts: dict[int, AmountExplanation | None] = field(default_factory=dict)
    #: order id → how its total is made up and what was refunded outside returns
    money: dict[int, OrderMoney] = field(default_factory=dict)


async def sidebar_facts(session: AsyncSession, bundles: list[OrderBundle], now: datetime) -> SidebarFacts:
    facts = SidebarFacts()
    if not bundles:
        return facts
    shipping = await shipping_policy(session)
    policy = await load_policy(session)
    delivered = ShipmentStatus("delivered")
    for bundle in bundles:
        order = bundle.order
        if order.id is not None:
            facts.money[order.id] = order_money(order, bundle.refunds)
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
