"""The bot answered an inbound message: its replies go to the outbox and the dialog state,
the language and the recognised intent are kept (on the conversation and the message), and the
message is marked processed, in the caller's transaction (the bot turn commits all of it at once).

This is the bot's hot path, so the reply rows are written with two prebuilt Core INSERTs each
(the message, then its outbox row) instead of ORM objects and a unit-of-work flush; the rows
are the same :func:`inbox.actions.message_send.message_send` writes, and so is the event."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import PREVIEW_CHARS, touch
from inbox.events import Event, EventType, collect
from inbox.messages import OutboundPayload
from inbox.models import Author, Conversation, Direction, Message, OutboxMessage, OutboxStatus
from shopbase.clock import utcnow
from shopbase.text import clean_text

__all__ = ["ANSWER_CONVERSATION", "ANSWER_CONVERSATION_SENT", "MARK_ANSWERED", "loaded_unchanged", "message_answer",
           "tell_committed"]

_INSERT_MESSAGE = Message.__table__.insert().returning(Message.__table__.c.id)  # type: ignore[attr-defined]
_INSERT_OUTBOX = OutboxMessage.__table__.insert().returning(OutboxMessage.__table__.c.id)  # type: ignore[attr-defined]


def loaded_unchanged(row: Any) -> bool:
    """True for a message given as read (``bot.pipeline``'s Bundle row, which has no ORM state)
    or an ORM object nobody changed in the session: its mark can be a prebuilt Core UPDATE."""
    return isinstance(row, sa.Row) or not sa.inspect(row).modified


def tell_committed(row: Any, values: dict[str, Any]) -> None:
    """An ORM object learns values just written with Core as committed ones (a row: nothing to tell)."""
    if not isinstance(row, sa.Row):
        for name, value in values.items():
            set_committed_value(row, name, value)


async def message_answer(
    session: AsyncSession,
    conversation: Conversation,
    message: Message | Any,
    *,
    replies: Iterable[OutboundPayload],
    bot_state: dict[str, Any],
    language: str,
    intent: str,
) -> list[int]:
    """Queue the replies and record the turn on the conversation and the message; returns
    the reply messages' ids. ``unknown`` never replaces an intent the conversation already has."""
    if conversation.id is None:
        raise ValueError("message_answer needs a conversation that has been flushed")
    now = utcnow()
    sent: list[int] = []
    if session.new:
        # rows the handlers added (an internal line, an audit row) get their ids first, as they
        # would with the ORM: a Core INSERT does not flush pending objects
        await session.flush()
    for payload in replies:
        text = clean_text(payload.text)
        quick_replies = [{"label": q.label, "value": q.value} for q in payload.quick_replies]
        message_id = (
            await session.exec(_INSERT_MESSAGE, params={
                "conversation_id": conversation.id, "channel": conversation.channel,
                "direction": Direction.outbound, "author": Author.bot, "agent_id": None, "is_internal": False,
                "text": text, "attachments": [a.to_dict() for a in payload.attachments],
                "quick_replies": quick_replies, "dedupe_key": None, "channel_message_id": None,
                "intent": None, "postback": None, "start_payload": None, "processed": True,
                "delivery_status": "pending", "created_at": now,
            })
        ).scalar_one()
        outbox_id = (
            await session.exec(_INSERT_OUTBOX, params={
                "message_id": message_id, "conversation_id": conversation.id,
                "contact_id": conversation.contact_id, "channel": conversation.channel,
                "payload": OutboundPayload(text, payload.quick_replies, payload.attachments,
                                           author=Author.bot.value).to_json(),
                "status": OutboxStatus.pending, "attempts": 0, "next_attempt_at": now, "claimed_until": None,
                "last_error": None, "channel_message_id": None, "sent_at": None, "created_at": now,
            })
        ).scalar_one()
        collect(session, Event(EventType.message_created.value, conversation.id, {
            "message_id": message_id, "outbox_id": outbox_id, "direction": Direction.outbound.value,
            "author": Author.bot.value, "agent_id": None, "is_internal": False, "preview": text[:PREVIEW_CHARS],
        }))
        sent.append(int(message_id))
    last_intent = intent if intent != "unknown" or conversation.last_intent is None else conversation.last_intent
    if message.id is not None and loaded_unchanged(message):
        # the mark by one prebuilt UPDATE instead of a unit-of-work flush; a loaded object is
        # told the new values as committed ones, so nothing is written twice
        await session.exec(MARK_ANSWERED, params={"b_id": message.id, "b_intent": intent, "b_language": language})
        tell_committed(message, {"intent": intent, "processed": True, "language": language})
    else:
        message.intent = intent
        message.processed = True  # the turn's effects and the mark commit together (a replay finds it done)
        message.language = language
        session.add(message)
    if not sa.inspect(conversation).modified:
        # the handlers changed nothing else on the conversation (the common turn): the same way
        statement = ANSWER_CONVERSATION_SENT if sent else ANSWER_CONVERSATION
        await session.exec(statement, params={
            "b_id": conversation.id, "b_state": bot_state, "b_language": language, "b_intent": last_intent,
            "b_now": now})
        changes: dict[str, Any] = {"bot_state": bot_state, "language": language, "last_intent": last_intent}
        if sent:
            changes |= {"last_message_at": now, "updated_at": now}
        for name, value in changes.items():
            set_committed_value(conversation, name, value)
        return sent
    if sent:
        conversation.last_message_at = now
        touch(session, conversation, now)
    conversation.bot_state = bot_state  # reassign: JSON columns track assignment only
    conversation.language = language
    conversation.last_intent = last_intent
    session.add(conversation)
    return sent


_MESSAGE = Message.__table__  # type: ignore[attr-defined]
_CONVERSATION = Conversation.__table__  # type: ignore[attr-defined]
MARK_ANSWERED = (
    sa.update(_MESSAGE).where(_MESSAGE.c.id == sa.bindparam("b_id"))
    .values(intent=sa.bindparam("b_intent"), processed=True, language=sa.bindparam("b_language"))
)
ANSWER_CONVERSATION = (
    sa.update(_CONVERSATION).where(_CONVERSATION.c.id == sa.bindparam("b_id"))
    .values(bot_state=sa.bindparam("b_state", type_=_CONVERSATION.c.bot_state.type),
            language=sa.bindparam("b_language"), last_intent=sa.bindparam("b_intent"))
)
ANSWER_CONVERSATION_SENT = ANSWER_CONVERSATION.values(last_message_at=sa.bindparam("b_now"),
                                                        updated_at=sa.bindparam("b_now"))
