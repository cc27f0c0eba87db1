"""How urgent a conversation is (low, normal, high, urgent)."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import conversation_event, parse_priority, touch, write_audit
from inbox.events import EventType, collect
from inbox.models import Agent, Conversation, Priority
from inbox.sla import sla_on_priority
from shopbase.clock import utcnow

__all__ = ["conversation_priority"]


async def conversation_priority(
    session: AsyncSession,
    conversation: Conversation,
    priority: Priority | str,
    *,
    by: Agent | None,
    actor: str | None = None,
) -> None:
    new = parse_priority(priority)
    previous = Priority(conversation.priority)
    now = utcnow()
    conversation.priority = new
    await sla_on_priority(session, conversation, previous, now)
    touch(session, conversation, now)
    write_audit(session, conversation.id, "conversation.priority", agent=by, actor=actor,
                detail={"from": previous.value, "to": new.value}, now=now)
    collect(session, conversation_event(EventType.conversation_updated, conversation, change="priority"))
