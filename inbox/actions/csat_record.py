"""The customer answered the satisfaction survey: a rating 1–5, then maybe a comment. The
conversation stays resolved (an answer is not a new request)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import conversation_event, write_audit
from inbox.events import EventType, collect
from inbox.models import Conversation, CsatSurvey
from shopbase.clock import utcnow
from shopbase.refusal import Refused
from shopbase.text import clean_text

__all__ = ["csat_rate", "csat_comment"]

MAX_COMMENT = 2000


async def _survey(session: AsyncSession, conversation: Conversation) -> CsatSurvey:
    survey = (
        await session.exec(select(CsatSurvey).where(CsatSurvey.conversation_id == conversation.id))
    ).first()
    if survey is None:
        raise Refused("no_survey", "No satisfaction survey was asked in this conversation.", status=404)
    return survey


async def csat_rate(session: AsyncSession, conversation: Conversation, rating: int,
                    now: datetime | None = None) -> CsatSurvey:
    """Store the rating (a later answer replaces an earlier one)."""
    if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
        raise Refused("bad_rating", "A rating is a whole number from 1 to 5.", status=400)
    now = now or utcnow()
    survey = await _survey(session, conversation)
    survey.rating = rating
    survey.rated_at = now
    session.add(survey)
    write_audit(session, conversation.id, "csat.rated", actor="customer", detail={"rating": rating}, now=now)
    collect(session, conversation_event(EventType.conversation_updated, conversation, change="csat"))
    return survey


async def csat_comment(session: AsyncSession, conversation: Conversation, text: str,
                       now: datetime | None = None) -> CsatSurvey:
    """Store the customer's comment on their rating (cleaned, at most 2000 characters)."""
    now = now or utcnow()
    survey = await _survey(session, conversation)
    comment = clean_text(text or "").strip()[:MAX_COMMENT]
    if not comment:
        raise Refused("empty_comment", "The comment is empty.", status=400)
    survey.comment = comment
    survey.commented_at = now
    session.add(survey)
    write_audit(session, conversation.id, "csat.commented", actor="customer", now=now)
    collect(session, conversation_event(EventType.conversation_updated, conversation, change="csat"))
    return survey
