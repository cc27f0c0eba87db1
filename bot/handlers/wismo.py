"""track_order: "where is my order?" answered per shipment, with late or broken parcels escalated."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.dialog.turn import Turn
from bot.dialog.verify import require_order
from inbox.models import Channel, Priority
from ordersvc.service import (
    OrderBundle,
    ShipmentBundle,
    expected_ship_date,
    order_bundle,
    shipment_is_late,
    shipping_policy,
)
from ordersvc.tracking import ShipmentStatus

__all__ = ["track_order", "shipment_view"]

PROBLEM = {ShipmentStatus.EXCEPTION, ShipmentStatus.FAILED_ATTEMPT, ShipmentStatus.EXPIRED}


def shipment_view(turn: Turn, sb: ShipmentBundle) -> dict[str, Any]:
    """What a customer may read about one parcel (the template decides the words)."""
    s = sb.shipment
    last = sb.events[0] if sb.events else None
    return {
        "name": s.name,
        "status": s.status.value,
        "status_text": turn.label("status_" + s.status.value),
        "carrier": s.carrier,
        "tracking_number": s.tracking_number,
        "tracking_url": s.tracking_url,
        "eta": s.eta,
        "delivered_at": s.delivered_at,
        "items": [f"{ln.quantity} × {ln.line.title}" for ln in sb.lines],
        "last_scan": {"message": last.message, "location": last.location, "at": last.occurred_at} if last else None,
        "late": shipment_is_late(s, turn.now),
    }


async def track_order(turn: Turn) -> None:
    order = await require_order(turn, "track_order")
    if order is None:
        return
    bundle: OrderBundle = await order_bundle(turn.session, order.id)  # type: ignore[arg-type]
    turn.order_ref = order.name
    turn.state.slots["order_id"] = order.id
    if order.cancelled_at is not None:
        turn.say("wismo_cancelled", order=order)
        return
    shipped_lines = {sl.line.id for sb in bundle.shipments for sl in sb.lines}
    pending_lines = [ln for ln in bundle.lines if ln.id not in shipped_lines and ln.fulfilled_quantity < ln.quantity]
    ship_by: datetime | None
    if not bundle.shipments:
        ship_by = expected_ship_date(order, await shipping_policy(turn.session))
        if _overdue(ship_by, turn.now):  # it should have left already: say so, and get a person on it
            turn.say("wismo_unfulfilled_late", order=order, ship_by=ship_by)
            turn.say("wismo_sorry_late", order=order, problem=False)
            turn.alert("late_shipment", order_id=order.id, order_name=order.name, shipments=[], not_shipped=True)
            turn.escalate("late_shipment", priority=Priority.high, note="not shipped by the expected date",
                          facts={"not_shipped": True})
            return
        turn.say("wismo_unfulfilled", order=order, ship_by=ship_by)
        return
    views = [shipment_view(turn, sb) for sb in bundle.shipments]
    policy = await shipping_policy(turn.session) if pending_lines else None
    ship_by = expected_ship_date(order, policy) if pending_lines else None
    turn.say(
        "wismo_status",
        order=order,
        shipments=views,
        pending_items=[f"{ln.quantity} × {ln.title}" for ln in pending_lines],
        ship_by=ship_by,
        choices=_updates_button(turn),
    )
    problems = [v for v in views if v["late"] or ShipmentStatus(v["status"]) in PROBLEM]
    overdue_items = ship_by is not None and _overdue(ship_by, turn.now)
    if problems or overdue_items:
        kind = "shipment_exception" if any(ShipmentStatus(v["status"]) in PROBLEM for v in problems) else "late_shipment"
        turn.say("wismo_sorry_late", order=order, problem=kind == "shipment_exception")
        turn.alert(kind, order_id=order.id, order_name=order.name,
                   shipments=[{"tracking_number": v["tracking_number"], "status": v["status"], "carrier": v["carrier"]} for v in problems])
        note = f"{len(problems)} problem shipment(s)" + ("; items not shipped by the expected date" if overdue_items else "")
        scans = [v["last_scan"]["at"] for v in problems if v.get("last_scan") and v["last_scan"].get("at")]
        facts: dict[str, Any] = {"problem": kind == "shipment_exception", "not_shipped": overdue_items}
        if scans:
            facts["days_since_scan"] = max(0, (turn.now - min(scans)).days)
        turn.escalate(kind, priority=Priority.high, note=note, facts=facts)


def _updates_button(turn: Turn) -> list[tuple[str, str]] | None:
    """A widget visitor may ask for delivery updates here (Telegram needs no permission); the
    button's postback is handled by ``bot.handlers.updates``."""
    contact = turn.contact
    if contact.channel != Channel.webchat or contact.customer_id is None:
        return None
    if contact.updates_allowed_at is not None or contact.updates_stopped_at is not None:
        return None
    if turn.state.suspended or turn.state.queued:
        return None  # another question follows (going back to a flow, the next request): keep it simple
    return [(turn.label("updates_allow"), "updates:on")]


#: a day's grace after the expected ship date before an unshipped order counts as late
_SHIP_GRACE = timedelta(days=1)


def _overdue(ship_by: datetime, now: datetime) -> bool:
    return now > ship_by + _SHIP_GRACE
