"""An agent's internal note: stored in the transcript, never sent to the customer."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import PREVIEW_CHARS, message_event, touch, write_audit
from inbox.messages import InvalidMessage, check_text
from inbox.models import Agent, Author, Conversation, Direction, Message
from shopbase.clock import utcnow

__all__ = ["message_note"]


async def message_note(
    session: AsyncSession, conversation: Conversation, agent: Agent, text: str, *, max_chars: int = 4096
) -> Message:
    """Add the note (``InvalidMessage``, a refusal, when it is empty or too long)."""
    body = check_text(text, max_chars=max_chars, what="note")
    if not body:
        raise InvalidMessage("note is empty")
    now = utcnow()
    note = Message(
        conversation_id=conversation.id,  # type: ignore[arg-type]
        channel=conversation.channel,
        direction=Direction.outbound,
        author=Author.agent,
        agent_id=agent.id,
        is_internal=True,
        text=body,
        processed=True,
        created_at=now,
    )
    session.add(note)
    touch(session, conversation, now)
    await session.flush()
    write_audit(session, conversation.id, "message.note", agent=agent, detail={"message_id": note.id}, now=now)
    message_event(session, note, conversation.id, agent_id=agent.id, is_internal=True, preview=body[:PREVIEW_CHARS])
    return note
