"""Who works on a conversation: an agent assigns it (or puts it back in the queue), or
claims an unassigned one."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import conversation_event, touch, write_audit
from inbox.events import EventType, collect
from inbox.models import Agent, Conversation, Owner
from inbox.queries.access import check_access
from shopbase.clock import utcnow
from shopbase.refusal import Refused

__all__ = ["conversation_assign", "conversation_claim"]


async def conversation_assign(
    session: AsyncSession,
    conversation: Conversation,
    assignee: Agent | None,
    *,
    by: Agent | None,
    actor: str = "agent",
) -> None:
    """Give the conversation to ``assignee`` (the agents now own it), or put it back in the
    unassigned queue with ``assignee=None``."""
    if assignee is not None:
        if not assignee.is_active:
            raise Refused("agent_inactive", "that agent is deactivated")
        if not check_access(assignee, conversation):
            raise Refused("no_access", "that agent cannot see this conversation")
    now = utcnow()
    previous = conversation.assignee_id
    conversation.assignee_id = assignee.id if assignee is not None else None
    conversation.owner = Owner.agent
    touch(session, conversation, now)
    write_audit(session, conversation.id, "conversation.assigned", agent=by, actor=actor,
                detail={"from": previous, "to": conversation.assignee_id}, now=now)
    collect(
        session,
        conversation_event(
            EventType.conversation_assigned,
            conversation,
            previous_assignee_id=previous,
            by_agent_id=by.id if by is not None else None,
        ),
    )


async def conversation_claim(session: AsyncSession, conversation: Conversation, agent: Agent) -> None:
    """Take an unassigned conversation. Atomic: of two agents claiming at once, one wins; the
    other is refused (``code="taken"``) and nothing changes."""
    if not agent.is_active or not check_access(agent, conversation):
        raise Refused("no_access", "you cannot claim this conversation", status=403)
    now = utcnow()
    result = await session.exec(
        update(Conversation)
        .where(
            col(Conversation.id) == conversation.id,
            (col(Conversation.assignee_id).is_(None)) | (col(Conversation.assignee_id) == agent.id),
        )
        .values(assignee_id=agent.id, owner=Owner.agent, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        await session.refresh(conversation)
        raise Refused("taken", "someone else already took this conversation")
    previous = conversation.assignee_id
    conversation.assignee_id = agent.id
    conversation.owner = Owner.agent
    conversation.updated_at = now
    session.add(conversation)
    if previous != agent.id:
        write_audit(session, conversation.id, "conversation.claimed", agent=agent, now=now)
        collect(session, conversation_event(EventType.conversation_assigned, conversation,
                                            previous_assignee_id=previous, by_agent_id=agent.id))
