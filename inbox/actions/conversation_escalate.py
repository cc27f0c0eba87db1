"""Hand a conversation to people (the bot's handoff, a complaint, a bot error)."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import conversation_event, make_active, parse_priority, touch, write_audit
from inbox.events import EventType, collect
from inbox.models import PRIORITY_RANK, Conversation, ConversationStatus, Owner, Priority
from inbox.sla import sla_on_escalate
from shopbase.clock import utcnow
from shopbase.text import clean_line, clean_text

__all__ = ["conversation_escalate"]

SUMMARY_CHARS = 2000


async def conversation_escalate(
    session: AsyncSession,
    conversation: Conversation,
    *,
    priority: Priority | str,
    summary: str,
    reason: str,
    actor: str = "bot",
    context: dict[str, Any] | None = None,
) -> None:
    """Owner agent, into the unassigned queue unless someone already has it; priority only
    goes up; the status becomes open (refused if the customer has another active one).
    ``context`` is the bot's structured hand-off (``inbox.handoff`` words it for agents); the
    SLA clock starts unless one runs."""
    wanted = parse_priority(priority)
    now = utcnow()
    if conversation.status != ConversationStatus.open:
        await make_active(session, conversation)
        conversation.status = ConversationStatus.open
        conversation.snoozed_until = None
    previous_owner = Owner(conversation.owner)
    current = Priority(conversation.priority)
    if PRIORITY_RANK[wanted] > PRIORITY_RANK[current]:
        conversation.priority = wanted
    conversation.owner = Owner.agent
    conversation.summary = clean_text(summary, SUMMARY_CHARS) or None
    conversation.handoff = dict(context) if context else None
    await sla_on_escalate(session, conversation, now)
    touch(session, conversation, now)
    reason = clean_line(reason, 64)
    write_audit(session, conversation.id, "conversation.escalated", actor=actor,
                detail={"reason": reason, "priority": Priority(conversation.priority).value,
                        "from_owner": previous_owner.value}, now=now)
    collect(session, conversation_event(EventType.conversation_escalated, conversation, reason=reason,
                                        summary=(conversation.summary or "")[:500]))
