"""Satisfaction ratings as the inbox shows them: the conversation's own survey, and the
customer's history (every contact that proved to be the same customer)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Contact, CsatSurvey
from inbox.queries.customers import verified_customer_id

__all__ = ["conversation_rating", "customer_ratings", "RATINGS_SHOWN"]

RATINGS_SHOWN = 10


async def conversation_rating(session: AsyncSession, conversation_id: int) -> CsatSurvey | None:
    """The conversation's survey (asked, maybe answered), or None."""
    stmt = select(CsatSurvey).where(col(CsatSurvey.conversation_id) == conversation_id)
    return (await session.exec(stmt)).first()


async def customer_ratings(session: AsyncSession, contact_id: int, limit: int = RATINGS_SHOWN) -> list[CsatSurvey]:
    """The customer's answered surveys, newest first: this contact's, and those of any other
    contact verified as the same customer."""
    contact = await session.get(Contact, contact_id)
    if contact is None:
        return []
    who = [col(CsatSurvey.contact_id) == contact_id]
    customer_id = verified_customer_id(contact)
    if customer_id is not None:
        who.append(col(CsatSurvey.customer_id) == customer_id)
    stmt = (
        select(CsatSurvey)
        .where(sa.or_(*who), col(CsatSurvey.rating).is_not(None))
        .order_by(col(CsatSurvey.rated_at).desc(), col(CsatSurvey.id).desc())
        .limit(limit)
    )
    return list((await session.exec(stmt)).all())
