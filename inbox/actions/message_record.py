"""A customer message arrives: ``message_record`` stores it in its OWN transaction (the
webhook answers only after it commits); it is the one action that does not take the caller's
session.

Concurrency: platform retries and concurrent first messages must give one contact, one active
conversation and one message per delivery. The database enforces it (unique
``(channel, external_id)`` on contacts, unique ``(channel, dedupe_key)`` on messages, the
partial unique index ``uq_conversation_active_contact``); the loser of a race gets an
IntegrityError, rolls back and runs again, now reading the winner's rows. SQLite's "database
is locked" (and PostgreSQL serialization failures/deadlocks) are retried with a short,
jittered backoff.

Conversation lifecycle on a customer message: the active conversation gets it (a snoozed or
pending one wakes up: status open); with none active, the latest resolved conversation is
reopened if it was resolved within ``reopen_days`` (status open, owner bot, assignee kept so
that a new escalation returns to the same agent), otherwise a new conversation starts. A
reply to a satisfaction survey (the resolved conversation's dialog waits in flow ``csat``, for
at most ``SURVEY_ANSWER_WINDOW``) goes to that conversation and leaves it resolved: the bot
reopens it only if the reply is not an answer (``bot.handlers.csat``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import (
    NAMELESS_CHANNELS,
    PREVIEW_CHARS,
    conversation_event,
    message_event,
    touch,
    write_audit,
)
from inbox.actions.message_record_pg import one_statement_enabled, record_in_one_statement
from inbox.events import Event, EventType, collect
from inbox.messages import Attachment, InboundMessage, InvalidMessage, check_text
from inbox.models import (
    AuditEvent,
    Author,
    Channel,
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    Owner,
    Priority,
    search_text_of,
)
from inbox.queries.conversations import active_conversation
from inbox.sla import sla_on_customer_message
from shopbase.clock import utcnow
from shopbase.rows import saved_id
from shopbase.text import clean_line

__all__ = ["InboundBatch", "RecordResult", "message_record"]

log = logging.getLogger(__name__)

MAX_ATTACHMENTS = 20
_RECORD_ATTEMPTS = 12
_LANG = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$")


@dataclass(frozen=True)
class RecordResult:
    message_id: int
    conversation_id: int
    contact_id: int
    duplicate: bool
    new_conversation: bool
    #: a resolved conversation was reopened by this message
    reopened: bool = False



def _is_unique_violation(exc: IntegrityError) -> bool:
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code is not None:
        return str(code) == "23505"
    return "unique" in str(orig or exc).lower()


def _is_transient(exc: DBAPIError) -> bool:
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code in {"40001", "40P01"}:
        return True
    text = str(orig or exc).lower()
    return "database is locked" in text or "database table is locked" in text


class _Group(Protocol):
    async def record(self, clean: _Inbound, *, reopen_days: int, now: datetime | None) -> RecordResult: ...


#: session factories whose messages are recorded in groups (``message_record_group.record_in_groups``)
GROUPS: weakref.WeakKeyDictionary[Any, _Group] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class _Inbound:
    channel: Channel
    dedupe_key: str
    external_id: str
    text: str
    display_name: str
    username: str | None
    language: str | None
    attachments: list[dict[str, Any]]
    channel_message_id: str | None
    postback: str | None
    start_payload: str | None


def _check_id(value: Any, what: str) -> str:
    text = "" if value is None else str(value).strip()
    if not text:
        raise InvalidMessage(f"{what} is missing")
    if len(text) > 128:
        raise InvalidMessage(f"{what} too long: {len(text)} characters, at most 128")
    if "\x00" in text or any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        raise InvalidMessage(f"{what} contains invalid characters")
    return text


def _check_inbound(msg: InboundMessage, max_chars: int) -> _Inbound:
    try:
        channel = Channel(msg.channel)
    except ValueError:
        raise InvalidMessage(f"unknown channel {msg.channel!r}") from None
    text = check_text(msg.text or "", max_chars=max_chars)
    if len(msg.attachments) > MAX_ATTACHMENTS:
        raise InvalidMessage(f"too many attachments: {len(msg.attachments)}, at most {MAX_ATTACHMENTS}")
    attachments = [
        (a if isinstance(a, Attachment) else Attachment.from_dict(dict(a))).cleaned().to_dict() for a in msg.attachments
    ]
    postback = clean_line(msg.postback, 256) or None
    start_payload = clean_line(msg.start_payload, 256) or None
    if not text and not attachments and not postback and not start_payload:
        raise InvalidMessage("message is empty")
    hint = (msg.language_hint or "").strip()
    channel_message_id = _check_id(msg.channel_message_id, "channel message id") if msg.channel_message_id else None
    return _Inbound(
        channel=channel,
        dedupe_key=_check_id(msg.dedupe_key, "delivery id"),
        external_id=_check_id(msg.contact_external_id, "sender id"),
        text=text,
        display_name=clean_line(msg.display_name, 255),
        username=clean_line(msg.username, 255) or None,
        language=hint[:16] if hint and _LANG.match(hint) else None,
        attachments=attachments,
        channel_message_id=channel_message_id,
        postback=postback,
        start_payload=start_payload,
    )


async def message_record(
    sessions: async_sessionmaker[AsyncSession],
    msg: InboundMessage,
    *,
    reopen_days: int = 7,
    max_chars: int = 4096,
    now: datetime | None = None,
) -> RecordResult:
    """Store one customer message in its own transaction (see the module docstring).

    Raises :class:`InvalidMessage` for an empty, oversized or malformed message, and for a
    delivery id that another sender already used. Returns ``duplicate=True`` (and the first
    delivery's ids) for a repeated delivery.
    """
    clean = _check_inbound(msg, max_chars)
    group = GROUPS.get(sessions)
    if group is not None:  # group commit (inbox.actions.message_record_group)
        return await group.record(clean, reopen_days=reopen_days, now=now)
    return await record_alone(sessions, clean, reopen_days=reopen_days, now=now)


async def record_alone(sessions: async_sessionmaker[AsyncSession], clean: _Inbound, *, reopen_days: int,
                       now: datetime | None) -> RecordResult:
    """One checked message in its own transaction, retried after a lost race or a busy database."""
    delay = 0.01
    last_error: Exception | None = None
    for attempt in range(_RECORD_ATTEMPTS):
        try:
            if attempt == 0 and one_statement_enabled(sessions):  # PostgreSQL: the common case in one statement
                done = await record_in_one_statement(sessions, clean, now or utcnow())
                if done is not None:
                    return done
            async with sessions() as session:
                result = await _record(session, clean, reopen_days=reopen_days, now=now or utcnow(),
                                       duplicates_first=attempt > 0)
                if not result.duplicate:
                    await session.commit()
                return result
        except IntegrityError as exc:
            if not _is_unique_violation(exc):
                raise
            last_error = exc  # lost a race: the winner's rows are there now, read them
            await asyncio.sleep(random.uniform(0, 0.005))
        except (OperationalError, DBAPIError) as exc:
            if not _is_transient(exc):
                raise
            last_error = exc
            await asyncio.sleep(delay * random.uniform(1.0, 2.0))
            delay = min(delay * 2, 0.5)
    log.error("recording an inbound message kept conflicting; giving up (channel %s)", clean.channel.value)
    assert last_error is not None
    raise last_error


async def _record(session: AsyncSession, c: _Inbound, *, reopen_days: int, now: datetime,
                  duplicates_first: bool) -> RecordResult:
    if duplicates_first:
        # a retry: a redelivery is rare, so the first attempt does not look for one; the unique
        # (channel, dedupe_key) index refuses it, and this retry reads the first delivery
        dup = (
            await session.exec(
                select(Message, Contact)
                .join(Conversation, col(Conversation.id) == Message.conversation_id)
                .join(Contact, col(Contact.id) == Conversation.contact_id)
                .where(col(Message.channel) == c.channel, col(Message.dedupe_key) == c.dedupe_key)
            )
        ).first()
        if dup is not None:
            stored, sender = dup
            if sender.external_id != c.external_id:
                raise InvalidMessage("this delivery id was already used by another sender")
            return RecordResult(saved_id(stored), stored.conversation_id, saved_id(sender), duplicate=True,
                                new_conversation=False)

    fast = await _record_into_open_conversation(session, c, now)
    if fast is not None:
        return fast

    contact = (
        await session.exec(select(Contact).where(Contact.channel == c.channel, Contact.external_id == c.external_id))
    ).first()
    if contact is None:
        contact = Contact(
            channel=c.channel,
            external_id=c.external_id,
            display_name=c.display_name,
            username=c.username,
            language=c.language,
            created_at=now,
            last_seen_at=now,
        )
        session.add(contact)
        await session.flush()
    else:
        for name, value in _contact_changes(c, contact.display_name, contact.username, contact.language,
                                            contact.customer_id, contact.undeliverable_at).items():
            setattr(contact, name, value)
        contact.last_seen_at = now
        session.add(contact)

    conversation, new_conversation, reopened = await _conversation_for(session, contact, now, reopen_days)
    message = Message(
        conversation_id=saved_id(conversation),
        channel=c.channel,
        direction=Direction.inbound,
        author=Author.customer,
        text=c.text,
        attachments=c.attachments,
        dedupe_key=c.dedupe_key,
        channel_message_id=c.channel_message_id,
        postback=c.postback,
        start_payload=c.start_payload,
        processed=False,
        created_at=now,
    )
    session.add(message)
    conversation.last_message_at = now
    await sla_on_customer_message(session, conversation, now)
    touch(session, conversation, now)
    await session.flush()

    message_event(session, message, conversation.id, is_internal=False, preview=c.text[:PREVIEW_CHARS],
                  new_conversation=new_conversation)
    assert message.id is not None and conversation.id is not None and contact.id is not None
    return RecordResult(message.id, conversation.id, contact.id, duplicate=False, new_conversation=new_conversation,
                        reopened=reopened)


_CONTACT = Contact.__table__  # type: ignore[attr-defined]
_CONVERSATION = Conversation.__table__  # type: ignore[attr-defined]
_MESSAGE = Message.__table__  # type: ignore[attr-defined]


def _contact_changes(c: _Inbound, display_name: str | None, username: str | None, language: str | None,
                     customer_id: int | None, undeliverable_at: datetime | None) -> dict[str, Any]:
    """What a customer's new message changes on their stored contact (besides ``last_seen_at``):
    the platform's name, username and language (a verified web chat customer keeps the name
    they gave), and an undeliverable contact is reachable again."""
    changes: dict[str, Any] = {}
    named_by_customer = c.channel in NAMELESS_CHANNELS and customer_id is not None
    if c.display_name and c.display_name != display_name and not named_by_customer:
        changes["display_name"] = c.display_name
    if c.username and c.username != username:
        changes["username"] = c.username
    if c.language and c.language != language:
        changes["language"] = c.language
    if undeliverable_at is not None:
        changes["undeliverable_at"] = None  # they wrote to us: reachable again
    return changes


#: statements of the common case, built once (building a statement costs more than running it)
_OPEN_CONVERSATION_OF = (
    sa.select(_CONTACT.c.id, _CONTACT.c.display_name, _CONTACT.c.username, _CONTACT.c.language,
              _CONTACT.c.customer_id, _CONTACT.c.undeliverable_at, _CONVERSATION.c.id, _CONVERSATION.c.status,
              _CONVERSATION.c.owner, _CONVERSATION.c.sla_due_at)
    .select_from(_CONTACT.join(_CONVERSATION, sa.and_(
        _CONVERSATION.c.contact_id == _CONTACT.c.id,
        _CONVERSATION.c.status != ConversationStatus.resolved)))
    .where(_CONTACT.c.channel == sa.bindparam("b_channel"), _CONTACT.c.external_id == sa.bindparam("b_external_id"))
    .limit(1)
)
_SEEN = sa.update(_CONTACT).where(_CONTACT.c.id == sa.bindparam("b_id")).values(last_seen_at=sa.bindparam("b_now"))
_INSERT_MESSAGE = sa.insert(_MESSAGE).returning(_MESSAGE.c.id)
_TOUCH_CONVERSATION = (
    sa.update(_CONVERSATION).where(_CONVERSATION.c.id == sa.bindparam("b_id"))
    .values(last_message_at=sa.bindparam("b_now"), updated_at=sa.bindparam("b_now"))
)


#: ``_OPEN_CONVERSATION_OF`` for many senders of one channel at once (a group's one read); the
#: sender's id comes first in each row (a contact has at most one conversation that is not resolved)
_OPEN_CONVERSATIONS_OF = (
    sa.select(_CONTACT.c.external_id, *_OPEN_CONVERSATION_OF.selected_columns)
    .select_from(_CONTACT.join(_CONVERSATION, sa.and_(
        _CONVERSATION.c.contact_id == _CONTACT.c.id,
        _CONVERSATION.c.status != ConversationStatus.resolved)))
    .where(_CONTACT.c.channel == sa.bindparam("b_channel"),
           _CONTACT.c.external_id.in_(sa.bindparam("b_external_ids", expanding=True)))
)


async def _open_conversation_of(session: AsyncSession, c: _Inbound) -> tuple[int, int, dict[str, Any]] | None:
    """The common case's read: (contact id, open conversation id, changes to the contact), or
    None when the message is not the common case (see ``_record_into_open_conversation``)."""
    row = (
        await session.exec(  # type: ignore[call-overload]  # a Core select of ten columns
            _OPEN_CONVERSATION_OF, params={"b_channel": c.channel, "b_external_id": c.external_id}
        )
    ).first()
    return _common_case(c, row)


def _common_case(c: _Inbound, row: Any) -> tuple[int, int, dict[str, Any]] | None:
    """What ``_open_conversation_of`` makes of its row (None: no open conversation)."""
    if row is None or row[6] is None:  # no contact, or (``_CONTACT_AND_OPEN_CONVERSATION``) none open
        return None
    contact_id, display_name, username, language, customer_id, undeliverable_at, conversation_id, status, owner, \
        sla_due_at = row
    if ConversationStatus(status) != ConversationStatus.open:
        return None
    if Owner(owner) == Owner.agent and sla_due_at is None:
        return None  # people owe an answer and no SLA clock runs: the general path starts one
    changes = _contact_changes(c, display_name, username, language, customer_id, undeliverable_at)
    if "display_name" in changes or "username" in changes:  # a Core UPDATE: the search index is ours to keep
        changes["search_text"] = search_text_of(Contact, {"display_name": display_name, "username": username} | changes)
    return int(contact_id), int(conversation_id), changes


def _inbound_row(c: _Inbound, conversation_id: int, now: datetime) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id, "channel": c.channel, "direction": Direction.inbound,
        "author": Author.customer, "agent_id": None, "is_internal": False, "text": c.text,
        "attachments": c.attachments, "quick_replies": [], "dedupe_key": c.dedupe_key,
        "channel_message_id": c.channel_message_id, "postback": c.postback,
        "start_payload": c.start_payload, "processed": False, "created_at": now,
    }


def _inbound_event(c: _Inbound, message_id: int, conversation_id: int, new_conversation: bool = False) -> Event:
    return Event(EventType.message_created.value, conversation_id, {
        "message_id": message_id, "direction": Direction.inbound.value, "author": Author.customer.value,
        "is_internal": False, "preview": c.text[:PREVIEW_CHARS], "new_conversation": new_conversation,
    })


async def _record_into_open_conversation(session: AsyncSession, c: _Inbound, now: datetime) -> RecordResult | None:
    """The common case, a known customer writing into their open conversation, in four Core
    statements (read contact and conversation, update the contact, insert the message, touch
    the conversation) instead of the ORM's loads and flushes; a new customer's first message in
    four too (the same read, then ``_write_first_message``'s inserts). Anything else (a known
    customer with a snoozed, pending or resolved conversation, one whose SLA clock must start)
    returns None for the general path below."""
    # the statements in ONE greenlet hop on the session's connection (``run_sync``), not an
    # ORM ``Session.execute`` and a hop each: a message recorded alone is the common case at low load;
    # the session's ``run_sync`` takes the connection inside that hop (``session.connection()`` first was one more)
    written = await session.run_sync(_write_in_session, c, now)
    if written is None:
        return None
    contact_id, conversation_id, message_id, new_conversation = written
    if new_conversation:  # what ``_conversation_for`` collects for a conversation it creates
        collect(session, Event(EventType.conversation_updated.value, conversation_id, {
            "status": ConversationStatus.open.value, "owner": Owner.bot.value, "priority": Priority.normal.value,
            "assignee_id": None, "change": "created"}))
    collect(session, _inbound_event(c, int(message_id), conversation_id, new_conversation))
    return RecordResult(int(message_id), int(conversation_id), int(contact_id), duplicate=False,
                        new_conversation=new_conversation)


def _write_in_session(session: Session, c: _Inbound, now: datetime) -> tuple[int, int, int, bool] | None:
    return _write_into_open_conversation(session.connection(), c, now)


def _write_into_open_conversation(connection: sa.Connection, c: _Inbound,
                                  now: datetime) -> tuple[int, int, int, bool] | None:
    """``_record_into_open_conversation``'s statements, run in one greenlet: (contact id,
    conversation id, message id, new conversation), or None (nothing written) when it is neither
    the common case nor a new customer."""
    row = connection.execute(
        _CONTACT_AND_OPEN_CONVERSATION, {"b_channel": c.channel, "b_external_id": c.external_id}).first()
    if row is None:
        return _write_first_message(connection, c, now)
    found = _common_case(c, row)
    if found is None:
        return None
    contact_id, conversation_id, changes = found
    if changes:
        connection.execute(sa.update(_CONTACT).where(_CONTACT.c.id == contact_id).values(last_seen_at=now, **changes))
    else:
        connection.execute(_SEEN, {"b_id": contact_id, "b_now": now})
    message_id = int(connection.execute(_INSERT_MESSAGE, _inbound_row(c, conversation_id, now)).scalar_one())
    connection.execute(_TOUCH_CONVERSATION, {"b_id": conversation_id, "b_now": now})
    return contact_id, conversation_id, message_id, False


#: ``_OPEN_CONVERSATION_OF`` that also tells a known contact with no open conversation (a row
#: whose conversation columns are NULL) from a new customer (no row)
_CONTACT_AND_OPEN_CONVERSATION = (
    sa.select(*_OPEN_CONVERSATION_OF.selected_columns)
    .select_from(_CONTACT.outerjoin(_CONVERSATION, sa.and_(
        _CONVERSATION.c.contact_id == _CONTACT.c.id,
        _CONVERSATION.c.status != ConversationStatus.resolved)))
    .where(_CONTACT.c.channel == sa.bindparam("b_channel"), _CONTACT.c.external_id == sa.bindparam("b_external_id"))
    .limit(1)
)
_INSERT_CONTACT = sa.insert(_CONTACT).returning(_CONTACT.c.id)
_INSERT_CONVERSATION = sa.insert(_CONVERSATION).returning(_CONVERSATION.c.id)
_INSERT_AUDIT = sa.insert(AuditEvent.__table__)  # type: ignore[attr-defined]


def _write_first_message(connection: sa.Connection, c: _Inbound, now: datetime) -> tuple[int, int, int, bool]:
    """A new customer's first message as Core INSERTs, the rows the general path writes for it
    (its contact, a new open conversation owned by the bot, the audit line ``conversation.created``,
    the message). A concurrent first message of the same sender, or a redelivery, is refused by
    the same unique indexes as there (IntegrityError: the caller retries and reads the winner's rows)."""
    contact_id = int(connection.execute(_INSERT_CONTACT, {
        "channel": c.channel, "external_id": c.external_id, "display_name": c.display_name, "username": c.username,
        "language": c.language, "customer_id": None, "verified_at": None, "undeliverable_at": None,
        "updates_allowed_at": None, "updates_stopped_at": None, "created_at": now, "last_seen_at": now,
    }).scalar_one())
    conversation_id = int(connection.execute(_INSERT_CONVERSATION, {
        "contact_id": contact_id, "channel": c.channel, "status": ConversationStatus.open,
        "priority": Priority.normal, "owner": Owner.bot, "assignee_id": None, "team_id": None, "labels": [],
        "language": c.language, "last_intent": None, "summary": None, "bot_state": {}, "snoozed_until": None,
        "first_response_at": None, "sla_due_at": None, "sla_kind": None, "sla_breached_at": None,
        "sla_paused_seconds": None, "handoff": None, "resolved_at": None, "last_message_at": now,
        "created_at": now, "updated_at": now,
    }).scalar_one())
    connection.execute(_INSERT_AUDIT, {
        "conversation_id": conversation_id, "agent_id": None, "actor": "system", "action": "conversation.created",
        "detail": {"contact_id": contact_id, "channel": c.channel.value}, "created_at": now,
    })
    message_id = int(connection.execute(_INSERT_MESSAGE, _inbound_row(c, conversation_id, now)).scalar_one())
    return contact_id, conversation_id, message_id, True


#: a group's common-case messages: a multi-row INSERT with one row per conversation (its ids told apart by it)
_INSERT_MESSAGES = sa.insert(_MESSAGE).returning(_MESSAGE.c.id, _MESSAGE.c.conversation_id)


class InboundBatch:
    """Common-case messages of a group commit (``message_record_group``), written together:
    :meth:`take` reads as ``_record_into_open_conversation`` does and keeps the message for
    :meth:`write`, which writes every kept one as that function would (the contacts' and
    conversations' marks as executemany UPDATEs, the messages as multi-row INSERTs: the k-th
    message of each conversation in the k-th one, so a conversation's ids keep arrival order)."""

    def __init__(self) -> None:
        self._kept: list[tuple[_Inbound, int, int, datetime]] = []  # (message, contact, conversation, now)
        #: id() of the taken ``_Inbound`` -> its result, after :meth:`write`
        self.results: dict[int, RecordResult] = {}
        #: (channel, sender id) -> the row ``_OPEN_CONVERSATION_OF`` would read (None: none), from :meth:`read_ahead`
        self._ahead: dict[tuple[Channel, str], Any] = {}

    async def read_ahead(self, session: AsyncSession, messages: list[_Inbound]) -> None:
        """Read what :meth:`take` reads for all ``messages`` at once: one statement per channel
        instead of one per message. Valid until something is written outside the batch
        (:meth:`forget`): :meth:`write` changes nothing that read returns."""
        senders: dict[Channel, set[str]] = {}
        for c in messages:
            senders.setdefault(c.channel, set()).add(c.external_id)
        for channel, external_ids in senders.items():
            ahead: dict[tuple[Channel, str], Any] = dict.fromkeys(((channel, e) for e in external_ids), None)
            rows = await session.exec(  # type: ignore[call-overload]  # a Core select
                _OPEN_CONVERSATIONS_OF, params={"b_channel": channel, "b_external_ids": sorted(external_ids)})
            for external_id, *row in rows:
                ahead[channel, external_id] = row
            self._ahead.update(ahead)

    def forget(self) -> None:
        """A message was recorded the general way: what :meth:`read_ahead` read may be stale."""
        self._ahead.clear()

    async def take(self, session: AsyncSession, c: _Inbound, now: datetime) -> bool:
        """True: kept for :meth:`write` (its result is in ``results`` after it); False: not the
        common case with nothing to change on the contact (record it the usual way, after :meth:`write`)."""
        key = (c.channel, c.external_id)
        found = _common_case(c, self._ahead[key]) if key in self._ahead else await _open_conversation_of(session, c)
        if found is None or found[2]:
            return False
        self._kept.append((c, found[0], found[1], now))
        return True

    async def write(self, session: AsyncSession) -> None:
        if not self._kept:
            return
        kept, self._kept = self._kept, []
        connection = await session.connection()
        await connection.execute(_SEEN, [{"b_id": contact_id, "b_now": now} for _, contact_id, _, now in kept])
        rounds: list[list[tuple[_Inbound, int, int, datetime]]] = []
        seen: dict[int, int] = {}
        for item in kept:
            k = seen[item[2]] = seen.get(item[2], -1) + 1
            if k == len(rounds):
                rounds.append([])
            rounds[k].append(item)
        ids: dict[int, int] = {}  # id(kept item) -> message id
        for items in rounds:
            result = await connection.execute(_INSERT_MESSAGES, [_inbound_row(c, conv, now) for c, _, conv, now in items])
            of_conversation = {int(conv): int(message_id) for message_id, conv in result}
            ids.update({id(item): of_conversation[item[2]] for item in items})
        await connection.execute(_TOUCH_CONVERSATION, [{"b_id": conv, "b_now": now} for _, _, conv, now in kept])
        for item in kept:
            c, contact_id, conversation_id, _ = item
            message_id = ids[id(item)]
            collect(session, _inbound_event(c, message_id, conversation_id))
            self.results[id(c)] = RecordResult(message_id, conversation_id, contact_id,
                                                                 duplicate=False, new_conversation=False)


#: how long after resolving a reply may still be an answer to the satisfaction survey
SURVEY_ANSWER_WINDOW = timedelta(days=3)


def _awaits_survey(conversation: Conversation, now: datetime) -> bool:
    state = conversation.bot_state if isinstance(conversation.bot_state, dict) else {}
    resolved_at = conversation.resolved_at or conversation.updated_at
    return (conversation.status == ConversationStatus.resolved and state.get("flow") == "csat"
            and now - resolved_at <= SURVEY_ANSWER_WINDOW)


async def _conversation_for(
    session: AsyncSession, contact: Contact, now: datetime, reopen_days: int
) -> tuple[Conversation, bool, bool]:
    """(conversation, created, reopened) for a new customer message."""
    active = await active_conversation(session, contact.id)
    if active is not None:
        if active.status in (ConversationStatus.snoozed, ConversationStatus.pending):
            previous = ConversationStatus(active.status).value
            active.status = ConversationStatus.open
            active.snoozed_until = None
            write_audit(session, active.id, "conversation.woken", actor="system", detail={"from": previous}, now=now)
            collect(session, lambda: conversation_event(EventType.conversation_updated, active, change="woken"))
        return active, False, False

    latest = (
        await session.exec(
            select(Conversation)
            .where(Conversation.contact_id == contact.id)
            .order_by(col(Conversation.id).desc())
            .limit(1)
        )
    ).first()
    if latest is not None and _awaits_survey(latest, now):
        return latest, False, False  # maybe a rating: the bot decides (bot.handlers.csat), no reopening yet
    if latest is not None and reopen_days > 0:
        resolved_at = latest.resolved_at or latest.updated_at
        if now - resolved_at <= timedelta(days=reopen_days):
            latest.status = ConversationStatus.open
            latest.owner = Owner.bot
            latest.resolved_at = None
            latest.snoozed_until = None
            session.add(latest)
            write_audit(session, latest.id, "conversation.reopened", actor="system", now=now)
            collect(session, lambda: conversation_event(EventType.conversation_updated, latest, change="reopened"))
            return latest, False, True

    conversation = Conversation(
        contact_id=contact.id,  # type: ignore[arg-type]
        channel=contact.channel,
        status=ConversationStatus.open,
        owner=Owner.bot,
        language=contact.language,
        last_message_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(conversation)
    await session.flush()
    write_audit(session, conversation.id, "conversation.created", actor="system",
                detail={"contact_id": contact.id, "channel": contact.channel.value}, now=now)
    collect(session, conversation_event(EventType.conversation_updated, conversation, change="created"))
    return conversation, True, False
