"""The bot answered several inbound messages of different conversations in one transaction (a
micro-batch of turns, ``bot.pipeline.Pipeline.process_many``): the same rows and events as
:func:`inbox.actions.message_answer.message_answer` once per turn, written together.

:meth:`AnswerGroup.add` takes a turn's answer (the loaded message and conversation are told the
new values as committed ones at once); :meth:`AnswerGroup.write` then writes every reply's message
in one multi-row INSERT (one per reply of a turn: 1 for most batches), their outbox rows in
another, the "processed" marks and the conversations'
changes as executemany UPDATEs (on PostgreSQL one statement for both, ``message_answer_pg``), in the
caller's transaction, before its commit. Only the common
turn is taken (:meth:`AnswerGroup.accepts`): nothing else pending or changed in the session for
that turn; any other turn answers with ``message_answer`` at once, as alone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import PREVIEW_CHARS
from inbox.actions.message_answer import (
    ANSWER_CONVERSATION,
    ANSWER_CONVERSATION_SENT,
    MARK_ANSWERED,
    loaded_unchanged,
    tell_committed,
)
from inbox.actions.message_answer_pg import answer_batch
from inbox.events import Event, EventType, collect
from inbox.messages import OutboundPayload
from inbox.models import Author, Conversation, Direction, Message, OutboxMessage, OutboxStatus
from inbox.outbox_handoff import BORN_CLAIMED, BornClaimed, BornRow, born_claimed_value, born_params
from shopbase.clock import utcnow
from shopbase.rows import saved_id
from shopbase.text import clean_text

__all__ = ["AnswerGroup"]

_MESSAGE = Message.__table__  # type: ignore[attr-defined]
_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
#: multi-row INSERTs (SQLAlchemy's "insertmanyvalues"); each returned id comes with what says whose it is
_INSERT_MESSAGES = sa.insert(_MESSAGE).returning(_MESSAGE.c.id, _MESSAGE.c.conversation_id)
_INSERT_OUTBOX = sa.insert(_OUTBOX).returning(_OUTBOX.c.id, _OUTBOX.c.message_id)
#: the same, each row born claimed when it is the head of its stream (``inbox.outbox_handoff``): the
#: rows of one statement all see the table as it was before it, so a turn's replies share the decision
_INSERT_OUTBOX_BORN = (sa.insert(_OUTBOX).values(claimed_until=born_claimed_value())
                       .returning(_OUTBOX.c.id, _OUTBOX.c.message_id, _OUTBOX.c.claimed_until))


@dataclass(frozen=True)
class _Answer:
    conversation: Conversation
    message_id: int
    replies: list[tuple[str, OutboundPayload]]  # (cleaned text, payload)
    bot_state: dict[str, Any]
    language: str
    intent: str
    last_intent: str
    now: datetime


class AnswerGroup:
    """The answers of one micro-batch's turns, written together by :meth:`write`."""

    def __init__(self) -> None:
        self._answers: list[_Answer] = []
        self._conversations: set[int] = set()  # the conversations answered in the group

    def __len__(self) -> int:
        return len(self._answers)

    def accepts(self, session: AsyncSession, conversation: Conversation, message: Message | Any) -> bool:
        """The common turn: the handlers added nothing to the session and changed nothing on the
        message or the conversation, and no other answer of its conversation is in the group
        (else ``message_answer`` writes it at once, in order)."""
        return (conversation.id is not None and message.id is not None and not session.new
                and loaded_unchanged(message) and not sa.inspect(conversation).modified
                and conversation.id not in self._conversations)

    def add(self, conversation: Conversation, message: Message | Any, *, replies: Iterable[OutboundPayload],
            bot_state: dict[str, Any], language: str, intent: str) -> None:
        """Take one turn's answer (only one per conversation); the loaded objects get its values now."""
        assert conversation.id is not None and message.id is not None
        cleaned = [(clean_text(payload.text), payload) for payload in replies]
        last_intent = intent if intent != "unknown" or conversation.last_intent is None else conversation.last_intent
        now = utcnow()
        self._answers.append(_Answer(conversation, message.id, cleaned, bot_state, language, intent, last_intent, now))
        self._conversations.add(conversation.id)
        tell_committed(message, {"intent": intent, "processed": True, "language": language})
        changes: dict[str, Any] = {"bot_state": bot_state, "language": language, "last_intent": last_intent}
        if cleaned:
            changes |= {"last_message_at": now, "updated_at": now}
        for name, value in changes.items():
            set_committed_value(conversation, name, value)

    async def write(self, session: AsyncSession) -> None:
        """Every taken answer's rows, in ``session``'s transaction (the caller commits)."""
        if not self._answers:
            return
        connection = await session.connection()
        # the k-th replies of every turn in one multi-row INSERT (k = 1, 2, ...): within one
        # statement each conversation has one row, so the returned (id, conversation) pairs say
        # which id is whose whatever order they come back in, and a turn's later replies get
        # later ids (its order kept)
        reply_ids: dict[tuple[int, int], int] = {}  # (answer index, reply index) -> message id
        rounds = max((len(a.replies) for a in self._answers), default=0)
        for k in range(rounds):
            takers = [(i, a) for i, a in enumerate(self._answers) if len(a.replies) > k]
            rows = [self._message_row(a, *a.replies[k]) for _, a in takers]
            found = {int(c): int(m) for m, c in await connection.execute(_INSERT_MESSAGES, rows)}
            for i, a in takers:
                reply_ids[i, k] = found[saved_id(a.conversation)]
        if reply_ids:
            outbox_rows = [self._outbox_row(a, text, payload, reply_ids[i, k])
                           for i, a in enumerate(self._answers) for k, (text, payload) in enumerate(a.replies)]
            born: BornClaimed | None = session.info.get(BORN_CLAIMED)
            claimed: set[int] = set()  # message ids whose outbox row was born claimed
            leases = {channel: born.lease(channel) for channel in {a.conversation.channel for a in self._answers}} \
                if born is not None else {}
            if any(lease is not None for lease in leases.values()):
                for row in outbox_rows:
                    del row["claimed_until"]  # the statement decides it
                    row |= born_params(row["conversation_id"], row["channel"], row["contact_id"], row["created_at"],
                                       leases[row["channel"]])
                outbox_ids = {}
                for o, m, until in await connection.execute(_INSERT_OUTBOX_BORN, outbox_rows):
                    outbox_ids[int(m)] = int(o)
                    if until is not None:
                        claimed.add(int(m))
                for row in outbox_rows:
                    message_id = row["message_id"]
                    assert born is not None
                    born.add(BornRow(outbox_ids[message_id], message_id, row["conversation_id"], row["contact_id"],
                                     row["channel"], row["payload"], row["created_at"])
                             if message_id in claimed else None, row["conversation_id"])
            else:
                outbox_ids = {int(m): int(o) for o, m in await connection.execute(_INSERT_OUTBOX, outbox_rows)}
                if born is not None:
                    for row in outbox_rows:
                        born.add(None, row["conversation_id"])
            for i, a in enumerate(self._answers):
                for k, (text, _) in enumerate(a.replies):
                    message_id = reply_ids[i, k]
                    data = {"message_id": message_id, "outbox_id": outbox_ids[message_id],
                            "direction": Direction.outbound.value, "author": Author.bot.value, "agent_id": None,
                            "is_internal": False, "preview": text[:PREVIEW_CHARS]}
                    if message_id in claimed:
                        data["born_claimed"] = True  # no claim to wake (inbox.outbox_handoff)
                    collect(session, Event(EventType.message_created.value, a.conversation.id, data))
        if connection.dialect.name == "postgresql":  # one statement for the batch (message_answer_pg)
            await answer_batch(connection, [(a.message_id, a.intent, a.language) for a in self._answers],
                               [(saved_id(a.conversation), a.bot_state, a.language, a.last_intent,
                                 a.now if a.replies else None) for a in self._answers])
        else:
            await connection.execute(MARK_ANSWERED, [
                {"b_id": a.message_id, "b_intent": a.intent, "b_language": a.language} for a in self._answers])
            sent = [{"b_id": a.conversation.id, "b_state": a.bot_state, "b_language": a.language,
                     "b_intent": a.last_intent, "b_now": a.now} for a in self._answers if a.replies]
            if sent:
                await connection.execute(ANSWER_CONVERSATION_SENT, sent)
            silent = [{"b_id": a.conversation.id, "b_state": a.bot_state, "b_language": a.language,
                       "b_intent": a.last_intent} for a in self._answers if not a.replies]
            if silent:
                await connection.execute(ANSWER_CONVERSATION, silent)
        self._answers.clear()
        self._conversations.clear()

    @staticmethod
    def _message_row(answer: _Answer, text: str, payload: OutboundPayload) -> dict[str, Any]:
        conversation = answer.conversation
        return {
            "conversation_id": conversation.id, "channel": conversation.channel,
            "direction": Direction.outbound, "author": Author.bot, "agent_id": None, "is_internal": False,
            "text": text, "attachments": [a.to_dict() for a in payload.attachments],
            "quick_replies": [{"label": q.label, "value": q.value} for q in payload.quick_replies],
            "dedupe_key": None, "channel_message_id": None, "intent": None, "postback": None,
            "start_payload": None, "processed": True, "delivery_status": "pending", "created_at": answer.now,
        }

    @staticmethod
    def _outbox_row(answer: _Answer, text: str, payload: OutboundPayload, message_id: int) -> dict[str, Any]:
        conversation = answer.conversation
        return {
            "message_id": message_id, "conversation_id": conversation.id,
            "contact_id": conversation.contact_id, "channel": conversation.channel,
            "payload": OutboundPayload(text, payload.quick_replies, payload.attachments,
                                       author=Author.bot.value).to_json(),
            "status": OutboxStatus.pending, "attempts": 0, "next_attempt_at": answer.now, "claimed_until": None,
            "last_error": None, "channel_message_id": None, "sent_at": None, "created_at": answer.now,
        }
