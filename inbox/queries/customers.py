"""The customer behind a conversation, as the sidebar shows it: order details only for a
VERIFIED customer (``Contact.customer_id`` set together with ``verified_at`` after the
customer proved who they are)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Contact, Conversation
from inbox.queries.orders import SIDEBAR_ORDERS, recent_orders
from ordersvc.models import Customer
from ordersvc.service import OrderBundle

__all__ = ["Sidebar", "verified_customer_id", "load_sidebar"]


@dataclass
class Sidebar:
    contact: Contact
    customer: Customer | None
    orders: list[OrderBundle] = field(default_factory=list)
    more_orders: bool = False


def verified_customer_id(contact: Contact) -> int | None:
    """The order-store customer the contact proved to be, or None."""
    if contact.customer_id is None or contact.verified_at is None:
        return None
    return contact.customer_id


async def load_sidebar(session: AsyncSession, conversation: Conversation) -> Sidebar:
    contact = await session.get(Contact, conversation.contact_id)
    assert contact is not None
    customer_id = verified_customer_id(contact)
    if customer_id is None:
        return Sidebar(contact=contact, customer=None)
    customer = await session.get(Customer, customer_id)
    bundles, more = await recent_orders(session, customer_id, SIDEBAR_ORDERS)
    return Sidebar(contact=contact, customer=customer, orders=bundles, more_orders=more)
