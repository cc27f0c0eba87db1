"""Order-side KPIs for the analytics page and ``shopdesk report``, computed in SQL.

* **Processing time** — from the order being placed (Shopify orders are paid when placed; an
  order has no separate payment time) to its first shipment leaving (``shipped_at``), for orders
  placed in the period and not cancelled: count, mean and nearest-rank percentiles.
* **On-time shipping** — an order shipped on time when its first shipment left by the expected
  ship date of ``ordersvc.service.expected_ship_date`` (the order's own ``expected_ship_at``, else
  placed + the policy's handling days, business days by default; computed in SQL from the UTC
  weekday of ``placed_at``). Orders not shipped yet count once their date has passed (as late).
* **Late shipments per day** — shipments whose ETA fell on the day (local) and that were not
  delivered by then (delivered later, or not delivered and the ETA has passed).
* **Return reasons** — returned units per reason over every product (RMAs requested in the
  period, cancelled ones left out); rates per product stay in :mod:`ordersvc.insight`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import Order, ReturnAuthorization, ReturnLine, RmaStatus, Shipment
from ordersvc.service import DEFAULT_SHIPPING_POLICY, add_business_days
from ordersvc.tracking import ShipmentStatus
from shopbase.sqltime import epoch_seconds, floor_days, local_day, percentiles, seconds_between

__all__ = ["Processing", "processing", "late_shipments_by_day", "reason_totals", "handling_days"]


@dataclass(frozen=True)
class Processing:
    shipped: int  # orders with a shipment
    mean_seconds: float | None
    p50_seconds: int | None
    p90_seconds: int | None
    due: int  # orders whose ship-by date passed or that shipped
    on_time: int

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.due if self.due else None


def handling_days(policy: dict[str, Any] | None) -> tuple[int, bool]:
    """(days, business days only) of a shipping policy, as ``expected_ship_date`` reads it."""
    policy = policy or DEFAULT_SHIPPING_POLICY
    try:
        days = int(policy.get("handling_days", DEFAULT_SHIPPING_POLICY["handling_days"]))
    except (TypeError, ValueError):
        days = int(DEFAULT_SHIPPING_POLICY["handling_days"])
    return max(0, min(days, 60)), bool(policy.get("business_days_only", True))


def _deadline_seconds(policy: dict[str, Any] | None) -> Any:
    """The expected ship date of ``shop_order`` rows as epoch seconds, in SQL."""
    days, business = handling_days(policy)
    placed = epoch_seconds(col(Order.placed_at))
    if business:
        # calendar days that ``add_business_days`` adds, by the UTC weekday the order was placed on
        monday = datetime(2024, 1, 1, tzinfo=UTC)
        calendar = [(add_business_days(monday + timedelta(days=w), days) - (monday + timedelta(days=w))).days
                    for w in range(7)]
        weekday = (floor_days(placed) + 3) % 7  # Monday = 0 (1970-01-01 was a Thursday)
        added: Any = sa.case(*[(weekday == w, calendar[w]) for w in range(7)], else_=days)
    else:
        added = sa.literal(days)
    return sa.case((col(Order.expected_ship_at).is_not(None), epoch_seconds(col(Order.expected_ship_at))),
                   else_=placed + added * 86400)


async def processing(session: AsyncSession, since: datetime, until: datetime, now: datetime,
                     policy: dict[str, Any] | None = None) -> Processing:
    first = (sa.select(col(Shipment.order_id).label("order_id"), sa.func.min(col(Shipment.shipped_at)).label("at"))
             .where(col(Shipment.shipped_at).is_not(None)).group_by(col(Shipment.order_id)).subquery())
    deadline = _deadline_seconds(policy)
    base = (
        sa.select(seconds_between(col(Order.placed_at), first.c.at).label("took"),
                  deadline.label("deadline"), epoch_seconds(first.c.at).label("shipped"))
        .select_from(Order)
        .outerjoin(first, first.c.order_id == col(Order.id))
        .where(col(Order.placed_at) >= since, col(Order.placed_at) < until, col(Order.cancelled_at).is_(None))
        .subquery()
    )
    row = (await session.exec(percentiles(base, "took", (50, 90)))).one()
    now_s = now.timestamp()
    counts = sa.select(
        sa.func.count().filter(sa.or_(base.c.shipped.is_not(None), base.c.deadline <= now_s)),
        sa.func.count().filter(base.c.shipped.is_not(None), base.c.shipped <= base.c.deadline),
    )
    due, on_time = (await session.exec(counts)).one()  # type: ignore[call-overload]
    return Processing(shipped=int(row.count), mean_seconds=None if row.mean is None else float(row.mean),
                      p50_seconds=None if row.p50 is None else int(row.p50),
                      p90_seconds=None if row.p90 is None else int(row.p90),
                      due=int(due or 0), on_time=int(on_time or 0))


async def late_shipments_by_day(session: AsyncSession, since: datetime, until: datetime, now: datetime,
                                schedule: Sequence[tuple[datetime, int]]) -> dict[int, int]:
    """Day number (``shopbase.sqltime.local_day``) → shipments due that day and not delivered by then."""
    eta = col(Shipment.eta)
    day = local_day(eta, schedule)
    late = sa.or_(
        sa.and_(col(Shipment.delivered_at).is_(None), col(Shipment.status) != ShipmentStatus.DELIVERED),
        col(Shipment.delivered_at) > eta,
    )
    stmt = (sa.select(day, sa.func.count()).where(eta >= since, eta < until, eta < now, late).group_by(day))
    return {int(d): int(n) for d, n in (await session.exec(stmt)).all()}  # type: ignore[call-overload]


async def reason_totals(session: AsyncSession, since: datetime, until: datetime) -> list[tuple[str, int, int]]:
    """(reason, units, return lines) for RMAs requested in [since, until), most units first."""
    units = sa.func.sum(col(ReturnLine.quantity))
    stmt = (
        sa.select(col(ReturnLine.reason), units, sa.func.count())
        .join(ReturnAuthorization, col(ReturnAuthorization.id) == col(ReturnLine.rma_id))
        .where(col(ReturnAuthorization.requested_at) >= since, col(ReturnAuthorization.requested_at) < until,
               col(ReturnAuthorization.status) != RmaStatus.cancelled)
        .group_by(col(ReturnLine.reason))
        .order_by(units.desc(), col(ReturnLine.reason))
    )
    return [(getattr(r, "value", str(r)), int(u or 0), int(n)) for r, u, n in (await session.exec(stmt)).all()]  # type: ignore[call-overload]
