"""A contact that exists before it writes (the merchant's terminal chat, linked to a customer
by email up front). Contacts that write to us are created by :mod:`inbox.actions.message_record`."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.models import Channel, Contact
from shopbase.clock import utcnow
from shopbase.text import clean_line

__all__ = ["contact_create"]


async def contact_create(
    session: AsyncSession,
    channel: Channel,
    external_id: str,
    *,
    display_name: str | None = None,
    language: str | None = None,
) -> Contact:
    """Add the contact and flush it (its id is known on return)."""
    now = utcnow()
    contact = Contact(
        channel=channel,
        external_id=clean_line(external_id, 128),
        display_name=clean_line(display_name, 255),
        language=clean_line(language, 16) or None,
        created_at=now,
        last_seen_at=now,
    )
    session.add(contact)
    await session.flush()
    write_audit(session, None, "contact.created", actor="system",
                detail={"contact_id": contact.id, "channel": channel.value}, now=now)
    return contact
