"""One identity-verification attempt of a conversation (the bot's order + email/postal code
check); failures count towards the lockout. On success the bot links the contact with
:mod:`inbox.actions.contact_link`."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Conversation, VerificationAttempt
from shopbase.clock import utcnow

__all__ = ["verification_record"]


def verification_record(
    session: AsyncSession, conversation: Conversation, order_ref: str, *, success: bool, now: datetime | None = None
) -> VerificationAttempt:
    """Add the attempt to the caller's transaction (``order_ref`` as normalized for counting)."""
    attempt = VerificationAttempt(
        conversation_id=conversation.id,  # type: ignore[arg-type]
        order_ref=order_ref, success=success, created_at=now or utcnow()
    )
    session.add(attempt)
    return attempt
