"""A conversation is mirrored outside the inbox (an alert thread in Slack): remember where,
so replies in that thread find their conversation."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import ExternalThread

__all__ = ["thread_link"]


def thread_link(
    session: AsyncSession,
    kind: str,
    channel_ref: str,
    thread_ref: str,
    *,
    conversation_id: int | None,
    purpose: str,
) -> ExternalThread:
    """Add the mapping to the caller's transaction (unique per kind, channel and thread)."""
    thread = ExternalThread(kind=kind, channel_ref=channel_ref, thread_ref=thread_ref,
                            conversation_id=conversation_id, purpose=purpose)
    session.add(thread)
    return thread
