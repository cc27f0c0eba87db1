"""The status of a conversation: open, pending, snoozed (until a time), resolved; and the
periodic wake-up of snoozed conversations whose time has come."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import conversation_event, make_active, parse_status, touch, write_audit
from inbox.actions.csat_request import csat_request, csat_state
from inbox.actions.message_send import message_send
from inbox.events import EventType, collect
from inbox.models import Agent, Author, Conversation, ConversationStatus, Owner
from inbox.sla import sla_on_status
from shopbase.clock import utcnow
from shopbase.refusal import Refused

__all__ = ["conversation_status", "conversation_wake_snoozed"]


async def conversation_status(
    session: AsyncSession,
    conversation: Conversation,
    status: ConversationStatus | str,
    *,
    by: Agent | None,
    snoozed_until: datetime | None = None,
    actor: str | None = None,
    survey: bool = False,
) -> None:
    """Change the status. Resolving hands the conversation back to the bot and, with ``survey``
    (a person resolved it: the inbox, Slack), asks the customer for a rating (``csat_request``:
    once per conversation); snoozing needs a
    future ``snoozed_until``; un-resolving is refused if the customer has another active one."""
    new = parse_status(status)
    now = utcnow()
    previous = ConversationStatus(conversation.status)
    if new == ConversationStatus.snoozed:
        if snoozed_until is None or snoozed_until.tzinfo is None or snoozed_until <= now:
            raise Refused("snooze_in_past", "snooze needs a future, timezone-aware time", status=400)
        conversation.snoozed_until = snoozed_until
    else:
        conversation.snoozed_until = None
    if new == ConversationStatus.resolved:
        conversation.owner = Owner.bot
        if previous != ConversationStatus.resolved:
            conversation.resolved_at = now
    else:
        await make_active(session, conversation)
    conversation.status = new
    await sla_on_status(session, conversation, previous, now)
    touch(session, conversation, now)
    detail: dict[str, Any] = {"from": previous.value, "to": new.value}
    if snoozed_until is not None and new == ConversationStatus.snoozed:
        detail["snoozed_until"] = snoozed_until.isoformat()
    write_audit(session, conversation.id, "conversation.status", agent=by, actor=actor, detail=detail, now=now)
    collect(session, conversation_event(EventType.conversation_updated, conversation, change="status",
                                        previous_status=previous.value))
    if survey and new == ConversationStatus.resolved and previous != ConversationStatus.resolved:
        question = await csat_request(session, conversation, resolved_by="agent" if by is not None else (actor or "system"),
                                      now=now)
        if question is not None:
            message_send(session, conversation, question, author=Author.bot)
            conversation.bot_state = csat_state(conversation.language, conversation.bot_state)


async def conversation_wake_snoozed(session: AsyncSession, now: datetime | None = None) -> list[int]:
    """Reopen snoozed conversations whose time has come (periodic task); returns their ids."""
    now = now or utcnow()
    due = (
        await session.exec(
            select(Conversation).where(
                Conversation.status == ConversationStatus.snoozed,
                col(Conversation.snoozed_until).is_not(None),
                col(Conversation.snoozed_until) <= now,
            )
        )
    ).all()
    woken: list[int] = []
    for conversation in due:
        conversation.status = ConversationStatus.open
        conversation.snoozed_until = None
        await sla_on_status(session, conversation, ConversationStatus.snoozed, now)
        touch(session, conversation, now)
        write_audit(session, conversation.id, "conversation.woken", actor="system", detail={"from": "snoozed"},
                    now=now)
        collect(session, conversation_event(EventType.conversation_updated, conversation, change="woken"))
        woken.append(int(conversation.id))  # type: ignore[arg-type]
    return woken
