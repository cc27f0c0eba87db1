"""A small hand-made dataset for the analytics tests, with every expected number worked out by
hand in the comments (period 2026-11-01 … 2026-11-10 in UTC, the previous one 2026-10-22 … 10-31,
"now" 2026-11-20 12:00 UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ordersvc_builders import make_order, make_shipment

from inbox.models import Agent, AuditEvent, Channel, Contact, Conversation, ConversationStatus, CsatSurvey, Role
from ordersvc.models import ReturnAuthorization, ReturnLine, ReturnReason, RmaStatus, Shipment
from ordersvc.tracking import ShipmentStatus

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FIRST, LAST = "2026-11-01", "2026-11-10"


def at(day: int, hour: int = 0, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# name: (opened, channel, intent, first response after s, resolved after s, assignee, escalated)
CONVERSATIONS: dict[str, tuple[datetime, Channel, str | None, int | None, int | None, str | None, bool]] = {
    "c1": (at(1, 10), Channel.webchat, "track_order", None, 600, None, False),  # automated
    "c2": (at(1, 11), Channel.telegram, "track_order", 120, 3600, "A", False),
    "c3": (at(2, 9), Channel.webchat, "start_return", None, 300, None, True),  # escalated: not automated
    "c4": (at(3, 12), Channel.telegram, None, None, None, None, False),  # open, intent unknown
    "c5": (at(3, 13), Channel.webchat, "track_order", 300, 7200, "B", False),
    "c6": (at(5, 8), Channel.webchat, "start_return", None, 1200, None, False),  # automated
    "c7": (at(25, 10, month=10), Channel.webchat, "track_order", None, 100, None, False),  # previous, automated
    "c8": (at(26, 10, month=10), Channel.telegram, "track_order", 600, 1800, "A", False),  # previous
    "c9": (at(11, 0), Channel.webchat, "track_order", None, 60, None, False),  # after the period
    "c10": (at(21, 23, 59, month=10), Channel.webchat, "track_order", None, 60, None, False),  # before both
}
# conversation: (rating, agent, intent, rated at)
RATINGS = {
    "c1": (5, None, "track_order", at(1, 11)),
    "c2": (4, "A", "track_order", at(2, 0)),
    "c5": (2, "B", "track_order", at(4, 0)),
    "c3": (3, "A", "start_return", at(3, 0)),
    "c6": (None, None, "start_return", None),  # asked, never answered
    "c8": (1, "A", "track_order", at(27, 0, month=10)),  # previous period
}


async def seed(session: Any) -> dict[str, int]:
    """Writes the dataset (test rows, straight into the tables); returns conversation ids by name."""
    agents = {}
    for key, name in (("A", "Alice"), ("B", "Bảo")):
        agent = Agent(email=f"{key.lower()}@shop.test", name=name, password_hash="x", role=Role.agent)
        session.add(agent)
        await session.flush()
        agents[key] = agent.id
    ids: dict[str, int] = {}
    for n, (name, (opened, channel, intent, first, resolved, assignee, escalated)) in enumerate(CONVERSATIONS.items()):
        contact = Contact(channel=channel, external_id=f"visitor-{n}", created_at=opened, last_seen_at=opened)
        session.add(contact)
        await session.flush()
        conv = Conversation(
            contact_id=contact.id, channel=channel, last_intent=intent, created_at=opened, updated_at=opened,
            last_message_at=opened, assignee_id=agents[assignee] if assignee else None,
            first_response_at=opened + timedelta(seconds=first) if first is not None else None,
            resolved_at=opened + timedelta(seconds=resolved) if resolved is not None else None,
            status=ConversationStatus.resolved if resolved is not None else ConversationStatus.open,
        )
        session.add(conv)
        await session.flush()
        assert conv.id is not None
        ids[name] = conv.id
        if escalated:
            session.add(AuditEvent(conversation_id=conv.id, action="conversation.escalated", actor="bot",
                                   created_at=opened + timedelta(seconds=60)))
    for name, (rating, agent_key, intent, rated_at) in RATINGS.items():
        opened = CONVERSATIONS[name][0]
        conv = await session.get(Conversation, ids[name])
        session.add(CsatSurvey(conversation_id=ids[name], contact_id=conv.contact_id, rating=rating, intent=intent,
                               agent_id=agents[agent_key] if agent_key else None, asked_at=opened, rated_at=rated_at))
    await _orders(session)
    await session.flush()
    return ids


async def _orders(session: Any) -> None:
    # processing: o1 1 day (on time: Mon → Wed), o2 342000 s (Fri → Tue, on time), o3 2 days (late:
    # its own expected_ship_at), o4 never shipped (due Wed 11-11, late), o5 cancelled (ignored)
    o1, lines1 = await make_order(session, [{"sku": "TEE-M", "quantity": 2, "unit_price": "20.00"},
                                            {"sku": "MUG", "quantity": 1, "unit_price": "9.00"}],
                                  name="#2001", placed_at=at(2, 10))
    await make_shipment(session, o1, shipped_at=at(3, 10))
    o2, _ = await make_order(session, name="#2002", placed_at=at(6, 10))
    await make_shipment(session, o2, shipped_at=at(10, 9))
    await make_shipment(session, o2, shipped_at=at(12, 9))  # a second parcel: the first one counts
    o3, _ = await make_order(session, name="#2003", placed_at=at(6, 10), expected_ship_at=at(7, 10))
    await make_shipment(session, o3, shipped_at=at(8, 10))
    await make_order(session, name="#2004", placed_at=at(9, 10))
    await make_order(session, name="#2005", placed_at=at(10, 10), cancelled_at=at(10, 11))
    # returns: TEE-M sold 2 + 1 + 1 + 1 = 5, 2 returned (too small); MUG sold 1, 1 returned (damaged);
    # a cancelled RMA (defective) does not count
    for number, requested, line, qty, reason, status in (
        ("R1", at(5, 9), lines1[0], 2, ReturnReason.too_small, RmaStatus.requested),
        ("R2", at(6, 9), lines1[1], 1, ReturnReason.damaged, RmaStatus.approved),
        ("R3", at(7, 9), lines1[1], 1, ReturnReason.defective, RmaStatus.cancelled),
    ):
        rma = ReturnAuthorization(rma_number=number, order_id=o1.id, status=status, requested_at=requested)
        session.add(rma)
        await session.flush()
        session.add(ReturnLine(rma_id=rma.id, order_line_id=line.id, quantity=qty, reason=reason))
    # shipments against their ETA: late on 11-01 (delivered the next day) and 11-03 (still in transit)
    for eta, delivered, status in (
        (at(1, 15), at(2, 9), ShipmentStatus.DELIVERED),
        (at(3, 10), at(3, 9), ShipmentStatus.DELIVERED),
        (at(3, 12), None, ShipmentStatus.IN_TRANSIT),
        (at(4, 12), None, ShipmentStatus.DELIVERED),
        (at(25, 12), None, ShipmentStatus.IN_TRANSIT),  # ETA after "now": not late yet
    ):
        shipment = await make_shipment(session, o1, delivered_at=delivered, status=status)
        session.add(shipment)
        shipment.eta = eta
        shipment.shipped_at = None
    await session.flush()


__all__ = ["NOW", "FIRST", "LAST", "seed", "at", "Shipment"]
