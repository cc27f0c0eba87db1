"""A customer turns proactive delivery updates off ("stop") or on ("start", or the widget's
"send me updates" button), in any of our languages; stored on the contact."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.events import Event, EventType, collect
from inbox.models import Channel, Contact
from shopbase.clock import utcnow

__all__ = ["contact_updates"]


def contact_updates(session: AsyncSession, contact: Contact, *, allow: bool, conversation_id: int | None = None,
                    now: datetime | None = None) -> bool:
    """Allow or stop updates for ``contact`` (caller's transaction); True when anything changed.

    On the widget, allowing also records the visitor's permission (Telegram needs none: the
    customer opened the chat with the shop's bot)."""
    now = now or utcnow()
    changed = False
    if allow:
        if contact.updates_stopped_at is not None:
            contact.updates_stopped_at = None
            changed = True
        if contact.channel == Channel.webchat and contact.updates_allowed_at is None:
            contact.updates_allowed_at = now
            changed = True
    elif contact.updates_stopped_at is None:
        contact.updates_stopped_at = now
        changed = True
    if not changed:
        return False
    session.add(contact)
    write_audit(session, conversation_id, "contact.updates_allowed" if allow else "contact.updates_stopped",
                actor="customer", detail={"contact_id": contact.id}, now=now)
    contact_id = contact.id
    collect(session, Event(EventType.contact_updated.value, conversation_id,
                           {"contact_id": contact_id, "updates": "on" if allow else "off"}))
    return True
