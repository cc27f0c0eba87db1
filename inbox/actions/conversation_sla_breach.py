"""An SLA clock ran out: mark it breached, once (the SLA job calls this; see ``inbox.sla``)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import conversation_event, write_audit
from inbox.events import EventType, collect
from inbox.models import Conversation
from shopbase.clock import utcnow
from shopbase.rows import saved_id

__all__ = ["conversation_sla_breach"]


async def conversation_sla_breach(session: AsyncSession, conversation: Conversation, *,
                                  now: datetime | None = None) -> int | None:
    """Mark the running clock breached; None (nothing written) when it is not due or already
    breached. Conditional on the clock read (an UPDATE ... WHERE due time unchanged): an agent's
    answer committed meanwhile wins, and the breach is not recorded."""
    now = now or utcnow()
    due = conversation.sla_due_at
    if due is None or due > now or conversation.sla_breached_at is not None:
        return None
    result = await session.exec(
        sa.update(Conversation)
        .where(col(Conversation.id) == conversation.id, col(Conversation.sla_due_at) == due,
               col(Conversation.sla_breached_at).is_(None))
        .values(sla_breached_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    set_committed_value(conversation, "sla_breached_at", now)
    detail = {"kind": conversation.sla_kind, "due_at": due.isoformat()}
    write_audit(session, conversation.id, "conversation.sla_breached", actor="system", detail=detail, now=now)
    collect(session, conversation_event(EventType.conversation_updated, conversation, change="sla_breached",
                                        sla_kind=detail["kind"], due_at=detail["due_at"]))
    return saved_id(conversation)
