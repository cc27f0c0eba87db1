"""The bot answers again: the conversation leaves the agents' queues."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import conversation_event, touch, write_audit
from inbox.events import EventType, collect
from inbox.models import Agent, Conversation, Owner
from inbox.sla import sla_clear
from shopbase.clock import utcnow
from shopbase.refusal import Refused

__all__ = ["conversation_handback"]


async def conversation_handback(
    session: AsyncSession,
    conversation: Conversation,
    by: Agent | None,
    *,
    actor: str | None = None,
    refuse_if_bot: bool = False,
) -> None:
    """Owner bot, assignee cleared. With ``refuse_if_bot`` (an agent's button), a conversation
    the bot already has is refused instead of handed back again."""
    if refuse_if_bot and conversation.owner == Owner.bot:
        raise Refused("already_bot", "the bot already has this conversation")
    now = utcnow()
    previous = conversation.assignee_id
    conversation.owner = Owner.bot
    conversation.assignee_id = None
    sla_clear(conversation)
    touch(session, conversation, now)
    write_audit(session, conversation.id, "conversation.handed_back", agent=by, actor=actor,
                detail={"previous_assignee_id": previous}, now=now)
    collect(session, conversation_event(EventType.conversation_updated, conversation, change="handed_back"))
