"""A contact proved who they are: it now points at an order-store customer."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import NAMELESS_CHANNELS, touch, write_audit
from inbox.actions.customer_link import customer_link_verified
from inbox.events import Event, EventType, collect
from inbox.models import Contact
from inbox.queries.conversations import active_conversation
from ordersvc.models import Customer
from shopbase.clock import utcnow
from shopbase.text import clean_line

__all__ = ["contact_link"]


async def contact_link(session: AsyncSession, contact: Contact, customer_id: int, *, actor: str = "bot") -> None:
    """Point the contact at an order-store customer. Call only after the customer proved
    who they are (order verification), never because they typed an email."""
    now = utcnow()
    previous = contact.customer_id
    contact.customer_id = customer_id
    contact.verified_at = now
    if contact.channel in NAMELESS_CHANNELS:
        # The widget only knows a placeholder ("Web visitor 7F3A"); agents should see who it is.
        customer = await session.get(Customer, customer_id)
        if customer is not None and (customer.first_name or customer.last_name):
            contact.display_name = clean_line(customer.display_name, 255)
    session.add(contact)
    await customer_link_verified(session, contact, customer_id)
    active = await active_conversation(session, contact.id)
    if active is not None:
        touch(session, active, now)
    conversation_id = active.id if active is not None else None
    write_audit(session, conversation_id, "contact.verified", actor=actor,
                detail={"contact_id": contact.id, "customer_id": customer_id, "previous_customer_id": previous},
                now=now)
    contact_id = contact.id
    collect(session, lambda: Event(EventType.contact_updated.value, conversation_id,
                                   {"contact_id": contact_id, "customer_id": customer_id, "verified": True}))
