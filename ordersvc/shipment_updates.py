"""Shipment news worth telling the customer: the durable trigger of proactive updates.

Whatever moves a shipment (a Shopify fulfillment webhook, a carrier tracking event, the
periodic lateness check) calls :func:`note_status` in the SAME transaction; it adds one
``ShipmentUpdate`` row when the new status is news (:data:`NOTIFY_STATUSES`, forward only).
The unique constraint ``(shipment_id, status)`` makes that at most one row per shipment and
status, however often a webhook or a tracking event is retried or replayed. The inbox's
proactive job claims due rows (:func:`due_updates`), and marks each one done
(:func:`finish_update`) or postpones it (quiet hours) in the transaction that sends.

Backwards moves are never news: a webhook or a late-arriving scan that would take a parcel
from "out for delivery" back to "in transit" adds nothing, and a delivered (final) parcel
keeps its status (:func:`is_backwards`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import Shipment, ShipmentUpdate, TrackingEvent
from ordersvc.tracking import FINAL_STATUSES, ShipmentStatus
from shopbase.clock import utcnow

__all__ = [
    "LATE",
    "NOTIFY_STATUSES",
    "UPDATE_KINDS",
    "is_backwards",
    "note_status",
    "record_tracking_event",
    "note_late_shipments",
    "due_updates",
    "finish_update",
    "postpone_update",
]

log = logging.getLogger(__name__)

#: the pseudo-status of a parcel past its estimated delivery and not delivered
LATE = "late"
S = ShipmentStatus
NOTIFY_STATUSES: frozenset[ShipmentStatus] = frozenset(
    {S.OUT_FOR_DELIVERY, S.DELIVERED, S.FAILED_ATTEMPT, S.EXCEPTION}
)
#: every kind of proactive update, in the order a merchant sees them
UPDATE_KINDS: tuple[str, ...] = (S.OUT_FOR_DELIVERY.value, S.DELIVERED.value, S.FAILED_ATTEMPT.value,
                                 S.EXCEPTION.value, LATE)

#: how far along a parcel is; a lower rank than the stored one is a step backwards
_RANK: dict[ShipmentStatus, int] = {
    S.PENDING: 0,
    S.INFO_RECEIVED: 1,
    S.IN_TRANSIT: 2,
    S.EXCEPTION: 2,  # a problem can happen at any point before delivery
    S.OUT_FOR_DELIVERY: 3,
    S.FAILED_ATTEMPT: 4,
    S.AVAILABLE_FOR_PICKUP: 4,
    S.DELIVERED: 5,
    S.EXPIRED: 5,
}


def is_backwards(old: ShipmentStatus | str | None, new: ShipmentStatus | str) -> bool:
    """True when ``new`` would move a parcel back: out of a final status, or to an earlier
    stage (an exception counts as "no earlier" than in transit: it can strike at any time
    before delivery)."""
    if old is None:
        return False
    old_s, new_s = ShipmentStatus(old), ShipmentStatus(new)
    if old_s == new_s:
        return False
    if old_s in FINAL_STATUSES:
        return True
    if new_s == S.EXCEPTION:
        return False
    return _RANK[new_s] < _RANK[old_s]


async def _insert_once(session: AsyncSession, values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on the unique ``(shipment_id, status)``; True if added."""
    dialect = session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = builder(ShipmentUpdate).values(**values).on_conflict_do_nothing(index_elements=["shipment_id", "status"])
    result = await session.exec(stmt.returning(col(ShipmentUpdate.id)))
    return result.first() is not None


async def note_status(
    session: AsyncSession,
    shipment: Shipment,
    old: ShipmentStatus | str | None,
    new: ShipmentStatus | str,
    *,
    now: datetime | None = None,
) -> bool:
    """Record that ``shipment`` moved from ``old`` to ``new`` (caller's transaction); True
    when a ``ShipmentUpdate`` row was added (news, forward, and not recorded before)."""
    new_s = ShipmentStatus(new)
    if new_s not in NOTIFY_STATUSES or old == new_s or is_backwards(old, new_s):
        return False
    assert shipment.id is not None
    now = now or utcnow()
    return await _insert_once(session, {"shipment_id": shipment.id, "order_id": shipment.order_id,
                                        "status": new_s.value, "created_at": now, "due_at": now})


async def record_tracking_event(
    session: AsyncSession,
    shipment_id: int,
    *,
    occurred_at: datetime,
    status: ShipmentStatus | str,
    message: str = "",
    location: str | None = None,
    external_id: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Add a carrier scan to a shipment (caller's transaction) and move its status forward.

    A repeated event (the same source id ``external_id``, or the same time and text) changes
    nothing; an event older than the latest one is kept in the history but does not change the
    status; a backwards move is ignored. Each of these is logged once, by ids only.
    Returns True when the shipment's status changed.
    """
    if occurred_at.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware")
    new = ShipmentStatus(status)
    message = (message or "")[:500]
    shipment = (
        await session.exec(select(Shipment).where(Shipment.id == shipment_id).with_for_update())
    ).one()
    external_id = (external_id or None) and external_id[:64]
    same = sa.and_(col(TrackingEvent.occurred_at) == occurred_at, col(TrackingEvent.message) == message)
    if external_id is not None:
        same = sa.or_(same, col(TrackingEvent.external_id) == external_id)
    seen = (
        await session.exec(select(TrackingEvent.id).where(TrackingEvent.shipment_id == shipment_id, same))
    ).first()
    if seen is not None:
        log.info("shipment %s: tracking event %s seen before; ignored", shipment_id, external_id or "(no id)")
        return False
    session.add(TrackingEvent(shipment_id=shipment_id, occurred_at=occurred_at, status=new, message=message,
                              location=(location or None) and location[:255], external_id=external_id))
    now = now or utcnow()
    latest = shipment.last_event_at
    if latest is not None and occurred_at < latest:
        await session.flush()
        log.info("shipment %s: tracking event older than the latest one kept in history only", shipment_id)
        return False
    shipment.last_event_at = occurred_at
    old = ShipmentStatus(shipment.status)
    if old == new or is_backwards(old, new):
        await session.flush()
        if old != new:
            log.info("shipment %s: ignored a move back from %s to %s", shipment_id, old.value, new.value)
        return False
    shipment.status = new
    if new == S.DELIVERED and shipment.delivered_at is None:
        shipment.delivered_at = occurred_at
    shipment.updated_at = now
    session.add(shipment)
    await session.flush()
    await note_status(session, shipment, old, new, now=now)
    return True


async def note_late_shipments(session: AsyncSession, now: datetime | None = None, *, limit: int = 1000) -> int:
    """Add a ``late`` update for every parcel past its ETA that is not delivered yet (once per
    shipment, thanks to the unique constraint); returns how many were added."""
    now = now or utcnow()
    done = sa.select(col(ShipmentUpdate.id)).where(
        col(ShipmentUpdate.shipment_id) == col(Shipment.id), col(ShipmentUpdate.status) == LATE
    )
    rows = (
        await session.exec(
            select(Shipment.id, Shipment.order_id)
            .where(
                col(Shipment.eta).is_not(None),
                col(Shipment.eta) < now,
                col(Shipment.status).not_in([S.DELIVERED, S.EXPIRED]),
                ~done.exists(),
            )
            .order_by(col(Shipment.id))
            .limit(limit)
        )
    ).all()
    added = 0
    for shipment_id, order_id in rows:
        added += await _insert_once(session, {"shipment_id": shipment_id, "order_id": order_id, "status": LATE,
                                              "created_at": now, "due_at": now})
    return added


async def due_updates(session: AsyncSession, now: datetime | None = None, *, limit: int = 100) -> list[ShipmentUpdate]:
    """Unprocessed updates whose time has come, oldest first, locked for the caller's
    transaction (PostgreSQL skips rows another worker holds)."""
    now = now or utcnow()
    stmt = (
        select(ShipmentUpdate)
        .where(col(ShipmentUpdate.processed_at).is_(None), col(ShipmentUpdate.due_at) <= now)
        .order_by(col(ShipmentUpdate.due_at), col(ShipmentUpdate.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.exec(stmt)).all())


def finish_update(session: AsyncSession, update: ShipmentUpdate, outcome: str, now: datetime | None = None) -> None:
    """Mark ``update`` handled with ``outcome`` ("sent", "no_channel", "disabled", …)."""
    update.processed_at = now or utcnow()
    update.outcome = outcome[:32]
    session.add(update)


def postpone_update(session: AsyncSession, update: ShipmentUpdate, until: datetime) -> None:
    """Try ``update`` again at ``until`` (quiet hours)."""
    update.due_at = until
    session.add(update)
