"""Remember where a conversation (or a return) is mirrored outside the inbox: a Slack alert's
channel and timestamp, so replies in its thread and clicks on its buttons find their way back."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import ExternalThread

__all__ = ["thread_record"]


async def thread_record(session: AsyncSession, *, kind: str, channel_ref: str, thread_ref: str,
                        conversation_id: int | None, purpose: str) -> ExternalThread:
    """Add the ``ExternalThread`` row to the caller's transaction (the caller commits)."""
    thread = ExternalThread(kind=kind[:32], channel_ref=channel_ref[:64], thread_ref=thread_ref[:64],
                            conversation_id=conversation_id, purpose=purpose[:32])
    session.add(thread)
    return thread
