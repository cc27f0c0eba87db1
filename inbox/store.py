"""Every write to the inbox: inbound messages, outbound messages, and agent/bot actions.

``record_inbound`` runs its OWN transaction (the webhook answers only after it commits);
everything else works in the caller's transaction and never commits. Each action writes an
:class:`AuditEvent`, bumps ``Conversation.updated_at`` and collects events that are published
after the caller's commit (see ``inbox.events``).

Concurrency of ``record_inbound``: platform retries and concurrent first messages must give
one contact, one active conversation and one message per delivery. The database enforces it
(unique ``(channel, external_id)`` on contacts, unique ``(channel, dedupe_key)`` on messages,
the partial unique index ``uq_conversation_active_contact``); the loser of a race gets an
IntegrityError, rolls back and runs again, now reading the winner's rows. SQLite's "database
is locked" (and PostgreSQL serialization failures/deadlocks) are retried with a short,
jittered backoff.

Conversation lifecycle on a customer message: the active conversation gets it (a snoozed or
pending one wakes up: status open); with none active, the latest resolved conversation is
reopened if it was resolved within ``reopen_days`` (status open, owner bot, assignee kept so
that a new escalation returns to the same agent), otherwise a new conversation starts.

The read side lives in ``inbox.queries`` and is re-exported here.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import col, select

from inbox.events import Event, EventType, collect
from inbox.messages import (
    Attachment,
    InboundMessage,
    InvalidMessage,
    OutboundPayload,
    check_text,
)
from inbox.models import (
    PRIORITY_RANK,
    Agent,
    AuditEvent,
    Author,
    Channel,
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    OutboxMessage,
    Owner,
    Priority,
    utcnow,
)
from inbox.queries import (
    VIEWS,
    ConversationRow,
    InvalidQuery,
    View,
    access_condition,
    check_access,
    count_conversations,
    get_conversation,
    list_conversations,
    transcript,
)
from ordersvc.models import Customer
from shopbase.text import clean_line, clean_text

__all__ = [
    "RecordResult",
    "InvalidMessage",
    "InvalidAction",
    "record_inbound",
    "add_outbound",
    "mark_processed",
    "unprocessed_message_ids",
    "agent_reply",
    "add_note",
    "assign",
    "claim",
    "set_status",
    "set_priority",
    "set_labels",
    "hand_back_to_bot",
    "escalate",
    "link_contact_to_customer",
    "wake_snoozed",
    "write_audit",
    "normalize_labels",
    # reads (inbox.queries)
    "View",
    "VIEWS",
    "ConversationRow",
    "InvalidQuery",
    "check_access",
    "access_condition",
    "list_conversations",
    "count_conversations",
    "get_conversation",
    "transcript",
]

log = logging.getLogger(__name__)

PREVIEW_CHARS = 140
MAX_ATTACHMENTS = 20
MAX_LABELS = 20
_RECORD_ATTEMPTS = 12
_LANG = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$")


class InvalidAction(ValueError):
    """An action that cannot be done in the conversation's current state (fit for a 4xx answer)."""


@dataclass(frozen=True)
class RecordResult:
    message_id: int
    conversation_id: int
    contact_id: int
    duplicate: bool
    new_conversation: bool
    #: a resolved conversation was reopened by this message
    reopened: bool = False


# --------------------------------------------------------------------------- helpers


def write_audit(
    session: Any,
    conversation_id: int | None,
    action: str,
    *,
    agent: Agent | None = None,
    actor: str | None = None,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEvent:
    """Add one audit row (ids and states only, never message text or emails)."""
    audit = AuditEvent(
        conversation_id=conversation_id,
        agent_id=agent.id if agent is not None else None,
        actor=actor or ("agent" if agent is not None else "system"),
        action=action,
        detail=detail or {},
        created_at=now or utcnow(),
    )
    session.add(audit)
    return audit


def _conversation_event(kind: EventType, conversation: Conversation, **data: Any) -> Event:
    base = {
        "status": ConversationStatus(conversation.status).value,
        "owner": Owner(conversation.owner).value,
        "priority": Priority(conversation.priority).value,
        "assignee_id": conversation.assignee_id,
    }
    base.update(data)
    return Event(kind.value, conversation.id, base)


def _touch(session: Any, conversation: Conversation, now: datetime) -> None:
    conversation.updated_at = now
    session.add(conversation)


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


def normalize_labels(labels: Any) -> list[str]:
    """Labels as stored: trimmed, lower-case, one line, at most 64 characters, unique, in order."""
    if isinstance(labels, str):
        labels = [labels]
    out: list[str] = []
    for raw in labels or ():
        label = clean_line(str(raw), 64).lower()
        if label and label not in out:
            out.append(label)
    if len(out) > MAX_LABELS:
        raise InvalidAction(f"too many labels: {len(out)}, at most {MAX_LABELS}")
    return out


def _priority(value: Any) -> Priority:
    try:
        return Priority(value)
    except ValueError:
        raise InvalidAction(f"unknown priority {value!r}") from None


def _status(value: Any) -> ConversationStatus:
    try:
        return ConversationStatus(value)
    except ValueError:
        raise InvalidAction(f"unknown status {value!r}") from None


async def _other_active(session: Any, conversation: Conversation) -> int | None:
    """The id of another not-resolved conversation of the same contact, if any."""
    row = (
        await session.exec(
            select(Conversation.id).where(
                Conversation.contact_id == conversation.contact_id,
                Conversation.status != ConversationStatus.resolved,
                Conversation.id != conversation.id,
            )
        )
    ).first()
    return int(row) if row is not None else None


async def _make_active(session: Any, conversation: Conversation) -> None:
    """Check that a resolved conversation may become active again (one active per contact)."""
    if conversation.status == ConversationStatus.resolved:
        other = await _other_active(session, conversation)
        if other is not None:
            raise InvalidAction(f"this customer already has an active conversation (#{other})")
        conversation.resolved_at = None


# --------------------------------------------------------------------------- inbound


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
    value = "" if value is None else str(value).strip()
    if not value:
        raise InvalidMessage(f"{what} is missing")
    if len(value) > 128:
        raise InvalidMessage(f"{what} too long: {len(value)} characters, at most 128")
    if "\x00" in value or any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise InvalidMessage(f"{what} contains invalid characters")
    return value


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


async def record_inbound(
    sessions: Any,
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
    delay = 0.01
    last_error: Exception | None = None
    for _attempt in range(_RECORD_ATTEMPTS):
        try:
            async with sessions() as session:
                result = await _record(session, clean, reopen_days=reopen_days, now=now or utcnow())
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


async def _record(session: Any, c: _Inbound, *, reopen_days: int, now: datetime) -> RecordResult:
    dup = (
        await session.exec(
            select(Message.id, Message.conversation_id, Contact.id, Contact.external_id)
            .join(Conversation, Conversation.id == Message.conversation_id)  # type: ignore[arg-type]
            .join(Contact, Contact.id == Conversation.contact_id)  # type: ignore[arg-type]
            .where(Message.channel == c.channel, Message.dedupe_key == c.dedupe_key)
        )
    ).first()
    if dup is not None:
        message_id, conversation_id, contact_id, external_id = dup
        if external_id != c.external_id:
            raise InvalidMessage("this delivery id was already used by another sender")
        return RecordResult(message_id, conversation_id, contact_id, duplicate=True, new_conversation=False)

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
        named_by_customer = contact.channel in _NAMELESS_CHANNELS and contact.customer_id is not None
        if c.display_name and c.display_name != contact.display_name and not named_by_customer:
            contact.display_name = c.display_name
        if c.username and c.username != contact.username:
            contact.username = c.username
        if c.language and c.language != contact.language:
            contact.language = c.language
        contact.last_seen_at = now
        contact.undeliverable_at = None  # they wrote to us: reachable again
        session.add(contact)

    conversation, new_conversation, reopened = await _conversation_for(session, contact, now, reopen_days)
    message = Message(
        conversation_id=conversation.id,
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
    _touch(session, conversation, now)
    await session.flush()

    collect(
        session,
        Event(
            EventType.message_created.value,
            conversation.id,
            {
                "message_id": message.id,
                "direction": Direction.inbound.value,
                "author": Author.customer.value,
                "is_internal": False,
                "preview": c.text[:PREVIEW_CHARS],
                "new_conversation": new_conversation,
            },
        ),
    )
    assert message.id is not None and conversation.id is not None and contact.id is not None
    return RecordResult(message.id, conversation.id, contact.id, duplicate=False, new_conversation=new_conversation,
                        reopened=reopened)


async def _conversation_for(
    session: Any, contact: Contact, now: datetime, reopen_days: int
) -> tuple[Conversation, bool, bool]:
    """(conversation, created, reopened) for a new customer message."""
    active = (
        await session.exec(
            select(Conversation).where(
                Conversation.contact_id == contact.id, Conversation.status != ConversationStatus.resolved
            )
        )
    ).first()
    if active is not None:
        if active.status in (ConversationStatus.snoozed, ConversationStatus.pending):
            previous = ConversationStatus(active.status).value
            active.status = ConversationStatus.open
            active.snoozed_until = None
            write_audit(session, active.id, "conversation.woken", actor="system", detail={"from": previous}, now=now)
            collect(session, lambda: _conversation_event(EventType.conversation_updated, active, change="woken"))
        return active, False, False

    latest = (
        await session.exec(
            select(Conversation)
            .where(Conversation.contact_id == contact.id)
            .order_by(col(Conversation.id).desc())
            .limit(1)
        )
    ).first()
    if latest is not None and reopen_days > 0:
        resolved_at = latest.resolved_at or latest.updated_at
        if now - resolved_at <= timedelta(days=reopen_days):
            latest.status = ConversationStatus.open
            latest.owner = Owner.bot
            latest.resolved_at = None
            latest.snoozed_until = None
            session.add(latest)
            write_audit(session, latest.id, "conversation.reopened", actor="system", now=now)
            collect(session, lambda: _conversation_event(EventType.conversation_updated, latest, change="reopened"))
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
    collect(session, _conversation_event(EventType.conversation_updated, conversation, change="created"))
    return conversation, True, False


async def mark_processed(session: Any, message_id: int) -> None:
    """Mark an inbound message handled (in the caller's transaction, with its effects)."""
    await session.exec(update(Message).where(col(Message.id) == message_id).values(processed=True))


async def unprocessed_message_ids(session: Any) -> list[int]:
    """Inbound messages not yet handled, oldest first (the worker's startup sweep)."""
    rows = await session.exec(
        select(Message.id)
        .where(col(Message.processed).is_(False), Message.direction == Direction.inbound)
        .order_by(col(Message.id))
    )
    return [int(r) for r in rows.all()]


# --------------------------------------------------------------------------- outbound


def add_outbound(
    session: Any,
    conversation: Conversation,
    payload: OutboundPayload,
    *,
    author: Author,
    agent_id: int | None = None,
) -> Message:
    """Add an outgoing Message and its pending OutboxMessage to the caller's transaction.

    Synchronous: both rows are only added (the unit of work fills ``OutboxMessage.message_id``
    at flush), so ``message.id`` is known after the caller flushes or commits. The
    ``message.created`` event is built after commit, with that id.
    """
    if conversation.id is None:
        raise ValueError("add_outbound needs a conversation that has been flushed")
    now = utcnow()
    text = clean_text(payload.text)
    message = Message(
        conversation_id=conversation.id,
        channel=conversation.channel,
        direction=Direction.outbound,
        author=Author(author),
        agent_id=agent_id,
        text=text,
        attachments=[a.to_dict() for a in payload.attachments],
        quick_replies=[{"label": q.label, "value": q.value} for q in payload.quick_replies],
        processed=True,
        delivery_status="pending",
        created_at=now,
    )
    outbox = OutboxMessage(
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        channel=conversation.channel,
        payload=OutboundPayload(text, payload.quick_replies, payload.attachments).to_json(),
        next_attempt_at=now,
        created_at=now,
        message=message,
    )
    session.add(message)
    session.add(outbox)
    conversation.last_message_at = now
    _touch(session, conversation, now)
    conversation_id = conversation.id
    collect(
        session,
        lambda: Event(
            EventType.message_created.value,
            conversation_id,
            {
                "message_id": message.id,
                "outbox_id": outbox.id,
                "direction": Direction.outbound.value,
                "author": Author(author).value,
                "agent_id": agent_id,
                "is_internal": False,
                "preview": text[:PREVIEW_CHARS],
            },
        ),
    )
    return message


# --------------------------------------------------------------------------- agent and bot actions


async def agent_reply(
    session: Any, conversation: Conversation, agent: Agent, text: str, *, max_chars: int = 4096
) -> Message:
    """An agent answers: the text goes to the outbox; the agent now owns the conversation
    (assigned to them if nobody was) and the first response time is set once."""
    body = check_text(text, max_chars=max_chars)
    if not body:
        raise InvalidMessage("message is empty")
    now = utcnow()
    message = add_outbound(session, conversation, OutboundPayload(text=body), author=Author.agent, agent_id=agent.id)
    newly_assigned = conversation.assignee_id is None
    conversation.owner = Owner.agent
    if newly_assigned:
        conversation.assignee_id = agent.id
    if conversation.first_response_at is None:
        conversation.first_response_at = now
    _touch(session, conversation, now)
    await session.flush()
    write_audit(session, conversation.id, "message.agent_reply", agent=agent,
                detail={"message_id": message.id}, now=now)
    if newly_assigned:
        collect(session, _conversation_event(EventType.conversation_assigned, conversation, by_agent_id=agent.id))
    collect(session, _conversation_event(EventType.conversation_updated, conversation, change="agent_reply"))
    return message


async def add_note(
    session: Any, conversation: Conversation, agent: Agent, text: str, *, max_chars: int = 4096
) -> Message:
    """An internal note: stored in the transcript, never sent."""
    body = check_text(text, max_chars=max_chars, what="note")
    if not body:
        raise InvalidMessage("note is empty")
    now = utcnow()
    note = Message(
        conversation_id=conversation.id,  # type: ignore[arg-type]
        channel=conversation.channel,
        direction=Direction.outbound,
        author=Author.agent,
        agent_id=agent.id,
        is_internal=True,
        text=body,
        processed=True,
        created_at=now,
    )
    session.add(note)
    _touch(session, conversation, now)
    await session.flush()
    write_audit(session, conversation.id, "message.note", agent=agent, detail={"message_id": note.id}, now=now)
    collect(
        session,
        Event(
            EventType.message_created.value,
            conversation.id,
            {
                "message_id": note.id,
                "direction": Direction.outbound.value,
                "author": Author.agent.value,
                "agent_id": agent.id,
                "is_internal": True,
                "preview": body[:PREVIEW_CHARS],
            },
        ),
    )
    return note


async def assign(
    session: Any,
    conversation: Conversation,
    assignee: Agent | None,
    *,
    by: Agent | None,
    actor: str = "agent",
) -> None:
    """Give the conversation to ``assignee`` (the agents now own it), or put it back in the
    unassigned queue with ``assignee=None``."""
    if assignee is not None:
        if not assignee.is_active:
            raise InvalidAction("that agent is deactivated")
        if not check_access(assignee, conversation):
            raise InvalidAction("that agent cannot see this conversation")
    now = utcnow()
    previous = conversation.assignee_id
    conversation.assignee_id = assignee.id if assignee is not None else None
    conversation.owner = Owner.agent
    _touch(session, conversation, now)
    write_audit(session, conversation.id, "conversation.assigned", agent=by, actor=actor,
                detail={"from": previous, "to": conversation.assignee_id}, now=now)
    collect(
        session,
        _conversation_event(
            EventType.conversation_assigned,
            conversation,
            previous_assignee_id=previous,
            by_agent_id=by.id if by is not None else None,
        ),
    )


async def claim(session: Any, conversation: Conversation, agent: Agent) -> bool:
    """Take an unassigned conversation. Atomic: of two agents claiming at once, one wins;
    returns False (and changes nothing) when someone else has it."""
    if not agent.is_active or not check_access(agent, conversation):
        raise InvalidAction("you cannot claim this conversation")
    now = utcnow()
    result = await session.exec(
        update(Conversation)
        .where(
            col(Conversation.id) == conversation.id,
            (col(Conversation.assignee_id).is_(None)) | (col(Conversation.assignee_id) == agent.id),
        )
        .values(assignee_id=agent.id, owner=Owner.agent, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        await session.refresh(conversation)
        return False
    previous = conversation.assignee_id
    conversation.assignee_id = agent.id
    conversation.owner = Owner.agent
    conversation.updated_at = now
    session.add(conversation)
    if previous != agent.id:
        write_audit(session, conversation.id, "conversation.claimed", agent=agent, now=now)
        collect(session, _conversation_event(EventType.conversation_assigned, conversation,
                                             previous_assignee_id=previous, by_agent_id=agent.id))
    return True


async def set_status(
    session: Any,
    conversation: Conversation,
    status: ConversationStatus | str,
    *,
    by: Agent | None,
    snoozed_until: datetime | None = None,
    actor: str | None = None,
) -> None:
    """Change the status. Resolving hands the conversation back to the bot; snoozing needs a
    future ``snoozed_until``; un-resolving fails if the customer has another active one."""
    new = _status(status)
    now = utcnow()
    previous = ConversationStatus(conversation.status)
    if new == ConversationStatus.snoozed:
        if snoozed_until is None or snoozed_until.tzinfo is None or snoozed_until <= now:
            raise InvalidAction("snooze needs a future, timezone-aware time")
        conversation.snoozed_until = snoozed_until
    else:
        conversation.snoozed_until = None
    if new == ConversationStatus.resolved:
        conversation.owner = Owner.bot
        if previous != ConversationStatus.resolved:
            conversation.resolved_at = now
    else:
        await _make_active(session, conversation)
    conversation.status = new
    _touch(session, conversation, now)
    detail: dict[str, Any] = {"from": previous.value, "to": new.value}
    if snoozed_until is not None and new == ConversationStatus.snoozed:
        detail["snoozed_until"] = snoozed_until.isoformat()
    write_audit(session, conversation.id, "conversation.status", agent=by, actor=actor, detail=detail, now=now)
    collect(session, _conversation_event(EventType.conversation_updated, conversation, change="status",
                                         previous_status=previous.value))


async def set_priority(
    session: Any, conversation: Conversation, priority: Priority | str, *, by: Agent | None, actor: str | None = None
) -> None:
    new = _priority(priority)
    previous = Priority(conversation.priority)
    now = utcnow()
    conversation.priority = new
    _touch(session, conversation, now)
    write_audit(session, conversation.id, "conversation.priority", agent=by, actor=actor,
                detail={"from": previous.value, "to": new.value}, now=now)
    collect(session, _conversation_event(EventType.conversation_updated, conversation, change="priority"))


async def set_labels(
    session: Any, conversation: Conversation, labels: list[str] | tuple[str, ...], *, by: Agent | None,
    actor: str | None = None,
) -> list[str]:
    """Replace the labels (normalized by :func:`normalize_labels`); returns the stored list."""
    new = normalize_labels(labels)
    previous = list(conversation.labels or [])
    now = utcnow()
    conversation.labels = new  # reassign: JSON columns only track assignment
    _touch(session, conversation, now)
    write_audit(session, conversation.id, "conversation.labels", agent=by, actor=actor,
                detail={"added": [x for x in new if x not in previous],
                        "removed": [x for x in previous if x not in new]}, now=now)
    collect(session, _conversation_event(EventType.conversation_updated, conversation, change="labels", labels=new))
    return new


async def hand_back_to_bot(session: Any, conversation: Conversation, by: Agent | None, *, actor: str | None = None) -> None:
    """The bot answers again; the conversation leaves the agent queues (assignee cleared)."""
    now = utcnow()
    previous = conversation.assignee_id
    conversation.owner = Owner.bot
    conversation.assignee_id = None
    _touch(session, conversation, now)
    write_audit(session, conversation.id, "conversation.handed_back", agent=by, actor=actor,
                detail={"previous_assignee_id": previous}, now=now)
    collect(session, _conversation_event(EventType.conversation_updated, conversation, change="handed_back"))


async def escalate(
    session: Any,
    conversation: Conversation,
    *,
    priority: Priority | str,
    summary: str,
    reason: str,
    actor: str = "bot",
) -> None:
    """Hand the conversation to people: owner agent, into the unassigned queue unless someone
    already has it; priority only goes up; the status becomes open."""
    wanted = _priority(priority)
    now = utcnow()
    if conversation.status != ConversationStatus.open:
        await _make_active(session, conversation)
        conversation.status = ConversationStatus.open
        conversation.snoozed_until = None
    previous_owner = Owner(conversation.owner)
    current = Priority(conversation.priority)
    if PRIORITY_RANK[wanted] > PRIORITY_RANK[current]:
        conversation.priority = wanted
    conversation.owner = Owner.agent
    conversation.summary = clean_summary(summary)
    _touch(session, conversation, now)
    reason = clean_line(reason, 64)
    write_audit(session, conversation.id, "conversation.escalated", actor=actor,
                detail={"reason": reason, "priority": Priority(conversation.priority).value,
                        "from_owner": previous_owner.value}, now=now)
    collect(session, _conversation_event(EventType.conversation_escalated, conversation, reason=reason,
                                         summary=(conversation.summary or "")[:500]))


def clean_summary(summary: str | None) -> str | None:
    return clean_text(summary, 2000) or None


# Channels whose contacts carry no name of their own: once verified, the customer's name is shown.
_NAMELESS_CHANNELS = frozenset({Channel.webchat})


async def link_contact_to_customer(
    session: Any, contact: Contact, customer_id: int, *, actor: str = "bot"
) -> None:
    """Point the contact at an order-store customer. Call only after the customer proved
    who they are (order verification), never because they typed an email."""
    now = utcnow()
    previous = contact.customer_id
    contact.customer_id = customer_id
    contact.verified_at = now
    if contact.channel in _NAMELESS_CHANNELS:
        # The widget only knows a placeholder ("Web visitor 7F3A"); agents should see who it is.
        customer = await session.get(Customer, customer_id)
        if customer is not None and (customer.first_name or customer.last_name):
            contact.display_name = clean_line(customer.display_name, 255)
    session.add(contact)
    active = (
        await session.exec(
            select(Conversation).where(
                Conversation.contact_id == contact.id, Conversation.status != ConversationStatus.resolved
            )
        )
    ).first()
    if active is not None:
        _touch(session, active, now)
    conversation_id = active.id if active is not None else None
    write_audit(session, conversation_id, "contact.verified", actor=actor,
                detail={"contact_id": contact.id, "customer_id": customer_id, "previous_customer_id": previous},
                now=now)
    contact_id = contact.id
    collect(session, lambda: Event(EventType.contact_updated.value, conversation_id,
                                   {"contact_id": contact_id, "customer_id": customer_id, "verified": True}))


async def wake_snoozed(session: Any, now: datetime | None = None) -> list[int]:
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
        _touch(session, conversation, now)
        write_audit(session, conversation.id, "conversation.woken", actor="system", detail={"from": "snoozed"},
                    now=now)
        collect(session, _conversation_event(EventType.conversation_updated, conversation, change="woken"))
        woken.append(int(conversation.id))  # type: ignore[arg-type]
    return woken
