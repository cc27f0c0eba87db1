"""An agent's internal note: stored in the transcript, never sent to the customer."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import PREVIEW_CHARS, add_internal_line, write_audit
from inbox.messages import InvalidMessage, check_text
from inbox.models import Agent, Author, Conversation, Message

__all__ = ["message_note"]


async def message_note(
    session: AsyncSession, conversation: Conversation, agent: Agent, text: str, *, max_chars: int = 4096
) -> Message:
    """Add the note (``InvalidMessage``, a refusal, when it is empty or too long)."""
    body = check_text(text, max_chars=max_chars, what="note")
    if not body:
        raise InvalidMessage("note is empty")
    note = add_internal_line(session, conversation, body, author=Author.agent, agent=agent,
                             preview=body[:PREVIEW_CHARS])
    await session.flush()
    write_audit(session, conversation.id, "message.note", agent=agent, detail={"message_id": note.id},
                now=note.created_at)
    return note
