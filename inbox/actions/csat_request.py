"""Ask for a 1–5 rating once a conversation is resolved (by a person or by the bot).

One survey per conversation (``csat_survey.conversation_id`` is unique). None is asked when
the merchant switched surveys off, the channel is not the customer's own (Telegram, widget),
the customer never wrote, was abusive (the bot handed the conversation over for a hostile
message: an escalation with reason ``negative``), or rated another conversation in the last
:data:`RECENT_RATING` days. The question goes out in the conversation's language with the
five ratings as buttons; the conversation's dialog state waits for the answer (flow ``csat``),
and ``message_record`` keeps a reply in the resolved conversation instead of reopening it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.messages import OutboundPayload, QuickReply
from inbox.models import AuditEvent, Channel, Contact, Conversation, CsatSurvey, Direction, Message
from inbox.proactive import update_settings
from inbox.queries.customers import verified_customer_id
from inbox.replies import render_reply, reply_label
from shopbase.clock import utcnow

__all__ = ["RECENT_RATING", "SURVEY_CHANNELS", "csat_request", "csat_choices", "csat_state", "abusive"]

RECENT_RATING = timedelta(days=7)
SURVEY_CHANNELS = frozenset({Channel.telegram, Channel.webchat})
#: escalation reasons that mean the customer was abusive (see bot.dialog.engine: hostile tone)
ABUSIVE_REASONS = frozenset({"negative"})


def csat_choices(lang: str | None) -> list[tuple[str, str]]:
    return [(reply_label(f"csat_{n}", lang), f"csat:{n}") for n in range(1, 6)]


def csat_state(lang: str | None, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dialog state that waits for the rating (read by ``bot.handlers.csat``), keeping what
    the dialog remembers beyond the open flow (the orders verified in this conversation)."""
    state = dict(current or {})
    state.update(flow="csat", step="rating", slots={"choices": [list(c) for c in csat_choices(lang)]},
                 pending_intent=None, suspended=None, queued=[])
    return state


async def abusive(session: AsyncSession, conversation_id: int) -> bool:
    stmt = select(AuditEvent.detail).where(
        col(AuditEvent.conversation_id) == conversation_id, col(AuditEvent.action) == "conversation.escalated"
    )
    return any(isinstance(d, dict) and d.get("reason") in ABUSIVE_REASONS for d in (await session.exec(stmt)).all())


async def _rated_recently(session: AsyncSession, contact: Contact, now: datetime) -> bool:
    who = [col(CsatSurvey.contact_id) == contact.id]
    customer_id = verified_customer_id(contact)
    if customer_id is not None:
        who.append(col(CsatSurvey.customer_id) == customer_id)
    stmt = select(CsatSurvey.id).where(sa.or_(*who), col(CsatSurvey.rated_at) >= now - RECENT_RATING).limit(1)
    return (await session.exec(stmt)).first() is not None


async def csat_request(
    session: AsyncSession,
    conversation: Conversation,
    *,
    resolved_by: str,
    lang: str | None = None,
    now: datetime | None = None,
) -> OutboundPayload | None:
    """Record the survey and return the question to send, or None when none is due (see the
    module docstring). The caller sends it and sets :func:`csat_state` on the conversation."""
    now = now or utcnow()
    assert conversation.id is not None
    if conversation.channel not in SURVEY_CHANNELS:
        return None
    if not (await update_settings(session)).get("csat", True):
        return None
    contact = await session.get(Contact, conversation.contact_id)
    if contact is None or contact.undeliverable_at is not None:
        return None
    exists = await session.exec(select(CsatSurvey.id).where(CsatSurvey.conversation_id == conversation.id))
    if exists.first() is not None:
        return None
    wrote = await session.exec(
        select(Message.id).where(Message.conversation_id == conversation.id, Message.direction == Direction.inbound)
        .limit(1)
    )
    if wrote.first() is None:
        return None
    if await abusive(session, conversation.id) or await _rated_recently(session, contact, now):
        return None
    lang = lang or conversation.language or contact.language
    session.add(CsatSurvey(
        conversation_id=conversation.id,
        contact_id=contact.id,  # type: ignore[arg-type]
        customer_id=verified_customer_id(contact),
        agent_id=conversation.assignee_id if resolved_by == "agent" else None,
        intent=conversation.last_intent,
        resolved_by=resolved_by,
        language=lang,
        asked_at=now,
    ))
    write_audit(session, conversation.id, "csat.asked", actor="system", detail={"resolved_by": resolved_by}, now=now)
    text = render_reply("csat_ask", lang)
    return OutboundPayload(text=text, quick_replies=tuple(QuickReply(label=label, value=value)
                                                                 for label, value in csat_choices(lang)))
