"""Something goes to the customer: a Message row and its pending outbox row, in the caller's
transaction (the outbox dispatcher delivers after the commit).

:func:`message_send` is the bot's and the system's send; :func:`agent_reply` is an agent
answering, which also makes the conversation theirs."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import PREVIEW_CHARS, conversation_event, touch, write_audit
from inbox.events import Event, EventType, collect
from inbox.messages import InvalidMessage, OutboundPayload, check_text
from inbox.models import Agent, Author, Conversation, Direction, Message, OutboxMessage, Owner
from inbox.sla import sla_on_agent_reply
from shopbase.clock import utcnow
from shopbase.text import clean_text

__all__ = ["message_send", "agent_reply"]


def message_send(
    session: AsyncSession,
    conversation: Conversation,
    payload: OutboundPayload,
    *,
    author: Author,
    agent_id: int | None = None,
    author_name: str | None = None,
) -> Message:
    """Add an outgoing Message and its pending OutboxMessage to the caller's transaction.

    Synchronous: both rows are only added (the unit of work fills ``OutboxMessage.message_id``
    at flush), so ``message.id`` is known after the caller flushes or commits. The
    ``message.created`` event is built after commit, with that id.
    """
    if conversation.id is None:
        raise ValueError("message_send needs a conversation that has been flushed")
    now = utcnow()
    text = clean_text(payload.text)
    message = Message(
        conversation_id=conversation.id,
        channel=conversation.channel,
        direction=Direction.outbound,
        author=Author(author),
        agent_id=agent_id,
        text=text,
        attachments=[a.to_dict() for a in payload.attachments],
        quick_replies=[{"label": q.label, "value": q.value} for q in payload.quick_replies],
        processed=True,
        delivery_status="pending",
        created_at=now,
    )
    outbox = OutboxMessage(
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        channel=conversation.channel,
        payload=OutboundPayload(text, payload.quick_replies, payload.attachments, author=Author(author).value,
                                author_name=author_name, paid_broadcast=payload.paid_broadcast).to_json(),
        next_attempt_at=now,
        created_at=now,
        message=message,
    )
    session.add(message)
    session.add(outbox)
    conversation.last_message_at = now
    touch(session, conversation, now)
    conversation_id = conversation.id

    def build() -> Event:
        return Event(
            EventType.message_created.value,
            conversation_id,
            {
                "message_id": message.id,
                "outbox_id": outbox.id,
                "direction": Direction.outbound.value,
                "author": Author(author).value,
                "agent_id": agent_id,
                "is_internal": False,
                "preview": text[:PREVIEW_CHARS],
            },
        )

    collect(session, build)
    return message


async def agent_reply(
    session: AsyncSession, conversation: Conversation, agent: Agent, text: str, *, max_chars: int = 4096
) -> Message:
    """An agent answers: the text goes to the outbox; the agent now owns the conversation
    (assigned to them if nobody was) and the first response time is set once."""
    body = check_text(text, max_chars=max_chars)
    if not body:
        raise InvalidMessage("message is empty")
    now = utcnow()
    message = message_send(session, conversation, OutboundPayload(text=body), author=Author.agent, agent_id=agent.id,
                           author_name=agent.name or "Support")
    newly_assigned = conversation.assignee_id is None
    conversation.owner = Owner.agent
    if newly_assigned:
        conversation.assignee_id = agent.id
    if conversation.first_response_at is None:
        conversation.first_response_at = now
    sla_on_agent_reply(conversation)
    touch(session, conversation, now)
    await session.flush()
    write_audit(session, conversation.id, "message.agent_reply", agent=agent,
                detail={"message_id": message.id}, now=now)
    if newly_assigned:
        collect(session, conversation_event(EventType.conversation_assigned, conversation, by_agent_id=agent.id))
    collect(session, conversation_event(EventType.conversation_updated, conversation, change="agent_reply"))
    return message
