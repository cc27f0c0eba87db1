"""Messages: a conversation's transcript and the worker's startup sweep."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Direction, Message

__all__ = ["transcript", "unprocessed_message_ids"]


async def transcript(
    session: AsyncSession, conversation_id: int, limit: int = 200, *, include_internal: bool = True
) -> list[Message]:
    """The last ``limit`` messages of a conversation, oldest first (internal notes included
    unless ``include_internal=False``). Access is the caller's check (``get_conversation``)."""
    stmt = select(Message).where(Message.conversation_id == conversation_id)
    if not include_internal:
        stmt = stmt.where(col(Message.is_internal).is_(False))
    stmt = stmt.order_by(col(Message.id).desc()).limit(max(1, min(int(limit), 1000)))
    messages = list((await session.exec(stmt)).all())
    messages.reverse()
    return messages


async def unprocessed_message_ids(session: AsyncSession) -> list[int]:
    """Inbound messages not yet handled, oldest first (the worker's startup sweep)."""
    rows = await session.exec(
        select(Message.id)
        .where(col(Message.processed).is_(False), Message.direction == Direction.inbound)
        .order_by(col(Message.id))
    )
    return [int(r) for r in rows.all() if r is not None]
