"""The bot answered an inbound message: its replies go to the outbox and the dialog state,
the language and the recognised intent are kept (on the conversation and the message), and the
message is marked processed, in the caller's transaction (the bot turn commits all of it at once).

This is the bot's hot path, so the reply rows are written with two prebuilt Core INSERTs each
(the message, then its outbox row) instead of ORM objects and a unit-of-work flush; the rows
are the same :func:`inbox.actions.message_send.message_send` writes, and so is the event."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import PREVIEW_CHARS, touch
from inbox.events import Event, EventType, collect
from inbox.messages import OutboundPayload
from inbox.models import Author, Conversation, Direction, Message, OutboxMessage, OutboxStatus
from inbox.outbox_handoff import BORN_CLAIMED, BornClaimed, BornRow, born_claimed_value, born_params
from shopbase.clock import utcnow
from shopbase.text import clean_text

__all__ = ["ANSWER_CONVERSATION", "ANSWER_CONVERSATION_SENT", "MARK_ANSWERED", "loaded_unchanged", "message_answer",
           "tell_committed"]

_INSERT_MESSAGE = Message.__table__.insert().returning(Message.__table__.c.id)  # type: ignore[attr-defined]
_INSERT_OUTBOX = OutboxMessage.__table__.insert().returning(OutboxMessage.__table__.c.id)  # type: ignore[attr-defined]
#: the first reply's outbox row, born claimed when it is the head of its stream (``inbox.outbox_handoff``)
_INSERT_OUTBOX_BORN = (
    OutboxMessage.__table__.insert()  # type: ignore[attr-defined]
    .values(claimed_until=born_claimed_value())
    .returning(OutboxMessage.__table__.c.id, OutboxMessage.__table__.c.claimed_until)  # type: ignore[attr-defined]
)


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
    cleaned = [(clean_text(payload.text), payload) for payload in replies]
    last_intent = intent if intent != "unknown" or conversation.last_intent is None else conversation.last_intent
    # the mark by one prebuilt UPDATE instead of a unit-of-work flush when the message is as read
    mark = message.id is not None and loaded_unchanged(message)
    # the handlers changed nothing else on the conversation (the common turn): its UPDATE too
    common = not sa.inspect(conversation).modified
    born: BornClaimed | None = session.info.get(BORN_CLAIMED)
    lease = born.lease(conversation.channel) if born is not None and cleaned else None
    # every statement of the answer in ONE greenlet hop on the session's connection (one
    # ``run_sync``, not an ORM ``Session.execute`` and a hop per statement: the alone turn's
    # main cost at low load); the same statements, in the same order, as before. The session's
    # ``run_sync`` takes the connection inside that hop (``session.connection()`` first was one more)
    written: list[tuple[int, int, dict[str, Any]]] = await session.run_sync(
        _write_answer_in_session, conversation, cleaned, now, lease,
        {"b_id": message.id, "b_intent": intent, "b_language": language} if mark else None,
        {"b_id": conversation.id, "b_state": bot_state, "b_language": language, "b_intent": last_intent,
         "b_now": now} if common else None)
    for (text, _), (message_id, outbox_id, row) in zip(cleaned, written, strict=True):
        claimed = lease is not None and row["claimed_until"] is not None
        if born is not None:
            born.add(BornRow(outbox_id, message_id, int(conversation.id), row["contact_id"], row["channel"],
                             row["payload"], now) if claimed else None, int(conversation.id))
        data = {"message_id": message_id, "outbox_id": outbox_id, "direction": Direction.outbound.value,
                "author": Author.bot.value, "agent_id": None, "is_internal": False, "preview": text[:PREVIEW_CHARS]}
        if claimed:
            data["born_claimed"] = True  # no claim to wake (inbox.outbox_handoff)
        collect(session, Event(EventType.message_created.value, conversation.id, data))
        sent.append(message_id)
    if mark:
        # a loaded object is told the new values as committed ones, so nothing is written twice
        tell_committed(message, {"intent": intent, "processed": True, "language": language})
    else:
        message.intent = intent
        message.processed = True  # the turn's effects and the mark commit together (a replay finds it done)
        message.language = language
        session.add(message)
    if common:
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


def _write_answer_in_session(session: Session, *args: Any) -> list[tuple[int, int, dict[str, Any]]]:
    return _write_answer(session.connection(), *args)


def _write_answer(connection: sa.Connection, conversation: Conversation, cleaned: list[tuple[str, OutboundPayload]],
                  now: datetime, lease: datetime | None, mark: dict[str, Any] | None,
                  common: dict[str, Any] | None) -> list[tuple[int, int, dict[str, Any]]]:
    """``message_answer``'s statements, run in one greenlet (``AsyncConnection.run_sync``):
    each reply's message and outbox row, then the mark and the conversation's UPDATE (None:
    the caller leaves that one to the ORM); the (message id, outbox id, outbox row) of every
    reply. With a ``lease`` the first reply's row is born claimed if it is the head of its
    stream, and the turn's other replies follow that decision (they go out after it, in order)."""
    written: list[tuple[int, int, dict[str, Any]]] = []
    for index, (text, payload) in enumerate(cleaned):
        message_id = int(connection.execute(_INSERT_MESSAGE, {
            "conversation_id": conversation.id, "channel": conversation.channel,
            "direction": Direction.outbound, "author": Author.bot, "agent_id": None, "is_internal": False,
            "text": text, "attachments": [a.to_dict() for a in payload.attachments],
            "quick_replies": [{"label": q.label, "value": q.value} for q in payload.quick_replies],
            "dedupe_key": None, "channel_message_id": None, "intent": None, "postback": None,
            "start_payload": None, "processed": True, "delivery_status": "pending", "created_at": now,
        }).scalar_one())
        row: dict[str, Any] = {
            "message_id": message_id, "conversation_id": conversation.id,
            "contact_id": conversation.contact_id, "channel": conversation.channel,
            "payload": OutboundPayload(text, payload.quick_replies, payload.attachments,
                                       author=Author.bot.value).to_json(),
            "status": OutboxStatus.pending, "attempts": 0, "next_attempt_at": now, "claimed_until": None,
            "last_error": None, "channel_message_id": None, "sent_at": None, "created_at": now,
        }
        if lease is not None and index == 0:
            del row["claimed_until"]  # the statement decides it
            found = connection.execute(_INSERT_OUTBOX_BORN, row | born_params(
                int(conversation.id or 0), conversation.channel, conversation.contact_id, now, lease)).one()
            outbox_id, row["claimed_until"] = int(found[0]), found[1]
            lease = lease if found[1] is not None else None  # the later replies: as the first one
        else:
            row["claimed_until"] = lease if index else None
            outbox_id = int(connection.execute(_INSERT_OUTBOX, row).scalar_one())
        written.append((message_id, outbox_id, row))
    if mark is not None:
        connection.execute(MARK_ANSWERED, mark)
    if common is not None:
        connection.execute(ANSWER_CONVERSATION_SENT if written else ANSWER_CONVERSATION, common)
    return written


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
