"""An SLA clock ran out: mark it breached, once (the SLA job calls this; see ``inbox.sla``)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import conversation_event, write_audit
from inbox.events import EventType, collect
from inbox.models import Conversation
from shopbase.clock import utcnow
from shopbase.rows import saved_id

__all__ = ["conversation_sla_breach"]


async def conversation_sla_breach(session: AsyncSession, conversation: Conversation, *,
                                  now: datetime | None = None) -> int | None:
    """Mark the running clock breached; None (nothing written) when it is not due or already breached."""
    now = now or utcnow()
    due = conversation.sla_due_at
    if due is None or due > now or conversation.sla_breached_at is not None:
        return None
    conversation.sla_breached_at = now
    session.add(conversation)
    detail = {"kind": conversation.sla_kind, "due_at": due.isoformat()}
    write_audit(session, conversation.id, "conversation.sla_breached", actor="system", detail=detail, now=now)
    collect(session, conversation_event(EventType.conversation_updated, conversation, change="sla_breached",
                                        sla_kind=detail["kind"], due_at=detail["due_at"]))
    return saved_id(conversation)
