"""Orders as the sidebar shows them, and the choices of the agents' return form."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import Resolution, ReturnMethod, ReturnReason
from ordersvc.service import OrderBundle, order_bundle, orders_for_customer

__all__ = ["SIDEBAR_ORDERS", "RESOLUTIONS", "METHODS", "REASONS", "recent_orders"]

SIDEBAR_ORDERS = 5
RESOLUTIONS = [r.value for r in Resolution]
METHODS = [m.value for m in ReturnMethod]
REASONS = [r.value for r in ReturnReason]


async def recent_orders(session: AsyncSession, customer_id: int, limit: int) -> tuple[list[OrderBundle], bool]:
    """The customer's newest ``limit`` orders with their shipments, and whether there are more."""
    orders = await orders_for_customer(session, customer_id, limit=limit + 1)
    bundles = [await order_bundle(session, o.id) for o in orders[:limit] if o.id is not None]
    return bundles, len(orders) > limit
