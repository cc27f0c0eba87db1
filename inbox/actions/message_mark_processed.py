"""The bot (or the agents' ownership) has handled an inbound message: it is not processed again."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Message

__all__ = ["message_mark_processed"]


async def message_mark_processed(session: AsyncSession, message_id: int) -> None:
    """Mark the message handled, in the caller's transaction, together with its effects."""
    await session.exec(update(Message).where(col(Message.id) == message_id).values(processed=True))
