"""Erase a customer (GDPR erasure; ``shopdesk customers erase EMAIL`` and Shopify's
``customers/redact`` / ``shop/redact``): every trace of the person goes, in ONE transaction.

What is held about a person, and what happens to it:

* the order store (``ordersvc.privacy.erase_order_records``): the customers with that email
  and every customer merged with them in a profile; their orders and guest orders placed with
  the email lose name, email, phone, addresses and notes (rows, lines and money stay);
* contacts (every channel of the profile, and contacts verified as those customers):
  name, username and the platform's id are replaced by a pseudonym (``erased-<id>``), the
  link to the customer goes; the customer profile loses its name, tags, notes and identities;
* their conversations stay as rows (counts, reports, SLA history) but every message's text,
  attachments, buttons and search text are emptied (the search indexes follow: FTS5 triggers
  on SQLite, a generated tsvector on PostgreSQL), the summary and dialog state are cleared,
  CSAT comments dropped, outbox payloads (replies and Slack notices) emptied and unsent ones
  marked undeliverable;
* audit entries, alerts and messages elsewhere: every string that contains one of the
  person's identifying values (emails, phones, names, address lines) is replaced;
* files (return labels, invoices, anything under ``<files_dir>/customers/<customer id>/``)
  are removed right AFTER the commit (:func:`pending_file_removals`); a rollback removes none.

The audit row of the erasure holds counts only. A refusal writes nothing.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.models import (
    Agent,
    AuditEvent,
    Contact,
    Conversation,
    CsatSurvey,
    CustomerIdentity,
    CustomerMerge,
    CustomerNote,
    CustomerProfile,
    FiredAlert,
    Message,
    OutboxMessage,
    OutboxStatus,
)
from inbox.queries.person import customer_files, find_person
from ordersvc.privacy import erase_order_records
from shopbase.clock import utcnow

__all__ = ["ERASED", "ERASED_ACTION", "Erasure", "customer_erase", "pending_file_removals", "scrub"]

log = logging.getLogger(__name__)

ERASED = "[erased]"
#: the audit action of every erasure (bot.forget watches for it in every process)
ERASED_ACTION = "customer.erased"
_FILES_KEY = "shopdesk.erase_files"
_HOOKED_KEY = "shopdesk.erase_hooked"


@dataclass
class Erasure:
    customers: int = 0
    orders: int = 0
    contacts: int = 0
    conversations: int = 0
    messages: int = 0
    files: list[Path] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"customers": self.customers, "orders": self.orders, "contacts": self.contacts,
                "conversations": self.conversations, "messages": self.messages, "files": len(self.files)}


def scrub(value: Any, needles: Iterable[str]) -> Any:
    """``value`` (JSON) with every occurrence of a needle in a string replaced (case-insensitive)."""
    patterns = [re.compile(re.escape(n), re.IGNORECASE) for n in sorted(set(needles), key=len, reverse=True) if n]
    if not patterns:
        return value

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            for pattern in patterns:
                item = pattern.sub(ERASED, item)
            return item
        if isinstance(item, list):
            return [walk(v) for v in item]
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        return item

    return walk(value)


def _mentions(column: Any, needles: Iterable[str]) -> sa.ColumnElement[bool]:
    """The column (text, or JSON as its text) contains a needle, also as JSON escapes it
    (SQLite stores JSON with non-ASCII characters as ``\\uXXXX``)."""
    text = sa.func.lower(sa.cast(column, sa.Text))
    forms = {form for n in needles for form in (n.lower(), json.dumps(n.lower())[1:-1])}
    return sa.or_(*(text.contains(form, autoescape=True) for form in sorted(forms)))


def _remove_after_commit(session: AsyncSession, paths: list[Path]) -> None:
    sync = session.sync_session
    sync.info.setdefault(_FILES_KEY, []).extend(paths)
    if sync.info.get(_HOOKED_KEY):
        return
    sync.info[_HOOKED_KEY] = True

    def on_commit(s: Session) -> None:
        for path in s.info.pop(_FILES_KEY, []):
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.error("erase: could not remove a file (%s)", type(exc).__name__)

    def on_rollback(s: Session) -> None:
        s.info.pop(_FILES_KEY, None)

    sa_event.listen(sync, "after_commit", on_commit)
    sa_event.listen(sync, "after_rollback", on_rollback)


def pending_file_removals(session: AsyncSession) -> list[Path]:
    """The files that will be removed when ``session`` commits (for tests and reports)."""
    return list(session.sync_session.info.get(_FILES_KEY, []))


async def customer_erase(
    session: AsyncSession, email: str | None, *, everyone: bool = False, files_dir: Path | None = None,
    agent: Agent | None = None, actor: str = "system",
) -> Erasure:
    """Erase the person with ``email`` (``everyone``: every customer, for ``shop/redact``).
    Refused (nothing written) for a malformed email; an email nobody has erases nothing."""
    person = await find_person(session, email, everyone=everyone)
    now = utcnow()
    result = Erasure()
    needles = person.needles

    def among(column: Any, ids: list[int]) -> sa.ColumnElement[bool]:
        # every row for shop/redact: no list of ids that could exceed the driver's parameter limit
        return sa.true() if everyone else col(column).in_(ids)

    # 1. the order store
    counts = await erase_order_records(session, person.match, everyone=everyone)
    result.customers, result.orders = counts["customers"], counts["orders"]

    # 2. conversations, their messages, outbox rows, surveys, alerts and audit rows
    conv_ids = person.conversation_ids
    contact_ids = person.contact_ids
    if conv_ids:
        erased = await session.exec(sa.update(Message).where(
            among(Message.conversation_id, conv_ids)).values(
            text="", search_text="", attachments=[], quick_replies=[], postback=None, start_payload=None,
            dedupe_key=None))
        result.messages = int(erased.rowcount or 0)
        await session.exec(sa.update(Conversation).where(
            among(Conversation.id, conv_ids)).values(summary=None, bot_state={}))
        await session.exec(sa.update(CsatSurvey).where(
            among(CsatSurvey.conversation_id, conv_ids)).values(comment=None))
        await session.exec(sa.update(FiredAlert).where(
            among(FiredAlert.conversation_id, conv_ids)).values(detail={}))
        if not everyone:  # (everyone: every audit row is reduced below)
            for audit in (await session.exec(select(AuditEvent).where(
                    col(AuditEvent.conversation_id).in_(conv_ids)))):
                audit.detail = _ids_only(audit.detail)
                session.add(audit)
    result.conversations = len(conv_ids)
    outbox_where: list[sa.ColumnElement[bool]] = [sa.true()] if everyone else []
    if conv_ids and not everyone:
        outbox_where.append(col(OutboxMessage.conversation_id).in_(conv_ids))
    if contact_ids and not everyone:
        outbox_where.append(col(OutboxMessage.contact_id).in_(contact_ids))
    if outbox_where:
        await session.exec(sa.update(OutboxMessage).where(sa.or_(*outbox_where)).values(
            payload={}, last_error=None))
        await session.exec(sa.update(OutboxMessage).where(
            sa.or_(*outbox_where), col(OutboxMessage.status) == OutboxStatus.pending).values(
            status=OutboxStatus.undeliverable, last_error="erased"))

    # 3. contacts and the customer profile
    if everyone:
        await session.exec(sa.update(Contact).values(
            display_name="", username=None, external_id=sa.literal("erased-") + sa.cast(col(Contact.id), sa.String),
            customer_id=None, verified_at=None, updates_allowed_at=None, search_text=""))
    for contact in [] if everyone else person.contacts:
        contact.display_name = ""
        contact.username = None
        contact.external_id = f"erased-{contact.id}"
        contact.customer_id = None
        contact.verified_at = None
        contact.updates_allowed_at = None
        session.add(contact)
    result.contacts = len(person.contacts)
    if person.profile_ids:
        profile_ids = person.profile_ids
        await session.exec(sa.delete(CustomerNote).where(among(CustomerNote.profile_id, profile_ids)))
        await session.exec(sa.delete(CustomerIdentity).where(among(CustomerIdentity.profile_id, profile_ids)))
        await session.exec(sa.update(CustomerProfile).where(among(CustomerProfile.id, profile_ids)).values(
            display_name="", tags=[], erased_at=now, updated_at=now))
        await session.exec(sa.update(CustomerMerge).where(sa.or_(
            among(CustomerMerge.source_id, profile_ids), among(CustomerMerge.target_id, profile_ids))).values(
            moved={}))
        profile_set = set(profile_ids)
        for audit in (await session.exec(select(AuditEvent).where(
                col(AuditEvent.action).in_(_PROFILE_ACTIONS)))).all():
            detail = audit.detail if isinstance(audit.detail, dict) else {}
            if not everyone and {detail.get(k) for k in ("profile_id", "source_id", "target_id")} & profile_set:
                audit.detail = _ids_only(detail)
                session.add(audit)
    if everyone:
        await session.exec(sa.delete(CustomerNote))
        await session.exec(sa.delete(CustomerIdentity))

    # 4. the person's identifying values anywhere else (quoted in other chats, audit rows, notices)
    if everyone:
        await session.exec(sa.update(FiredAlert).values(detail={}))
        await session.exec(sa.update(OutboxMessage).values(payload={}))
        for audit in (await session.exec(select(AuditEvent))).all():
            audit.detail = _ids_only(audit.detail)
            session.add(audit)
    elif needles:
        await _sweep(session, needles)
    await session.flush()
    await _compact_search_index(session)

    # 5. files: listed now, removed after the commit
    result.files = await customer_files(session, files_dir, person)
    if everyone and files_dir is not None and files_dir.is_dir():
        result.files = sorted(p for p in files_dir.rglob("*") if p.is_file())
    _remove_after_commit(session, result.files)
    write_audit(session, None, ERASED_ACTION, agent=agent, actor=actor if agent is None else None,
                detail={"everyone": everyone, **result.counts()}, now=now)
    return result


_PROFILE_ACTIONS = ("customer.created", "customer.note", "customer.tags", "customer.merged", "customer.unmerged")


async def _compact_search_index(session: AsyncSession) -> None:
    """SQLite's FTS5 keeps a deleted row's terms in old segments until they are merged: merge
    them now, so the erased words leave the index file too (PostgreSQL's generated tsvector
    changes with the row)."""
    if session.get_bind().dialect.name != "sqlite":
        return
    for table in ("message_fts", "contact_fts"):
        exists = (await session.exec(sa.text(  # type: ignore[call-overload]
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name").bindparams(name=table))).first()
        if exists is not None:
            await session.exec(sa.text(f"INSERT INTO {table}({table}) VALUES ('optimize')"))  # type: ignore[call-overload]


_ID_KEY = re.compile(r"(^id$|_id$|_ids$|^status$|^action$)")


def _ids_only(detail: Any) -> dict[str, Any]:
    """An audit detail of the erased person's conversation, reduced to ids, statuses and numbers."""
    if not isinstance(detail, dict):
        return {}
    kept: dict[str, Any] = {}
    for key, value in detail.items():
        if isinstance(value, bool | int | float) or value is None:
            kept[key] = value
        elif _ID_KEY.search(str(key)) and isinstance(value, list) and all(isinstance(v, int) for v in value):
            kept[key] = value
        elif _ID_KEY.search(str(key)) and isinstance(value, str) and len(value) <= 32 and "@" not in value:
            kept[key] = value
    return kept


async def _sweep(session: AsyncSession, needles: set[str]) -> None:
    """Replace the needles in free text and JSON that is not the person's own."""
    for model, column in ((AuditEvent, AuditEvent.detail), (FiredAlert, FiredAlert.detail),
                          (OutboxMessage, OutboxMessage.payload)):
        rows = (await session.exec(select(model).where(_mentions(column, needles)))).all()
        for row in rows:
            name = column.key  # type: ignore[attr-defined]
            setattr(row, name, scrub(getattr(row, name), needles))
            session.add(row)
    for message in (await session.exec(select(Message).where(_mentions(Message.text, needles)))).all():
        message.text = scrub(message.text, needles)  # the ORM listener re-derives search_text
        session.add(message)
    for conversation in (await session.exec(select(Conversation).where(sa.or_(
            _mentions(Conversation.summary, needles), _mentions(Conversation.bot_state, needles))))).all():
        conversation.summary = scrub(conversation.summary, needles)
        conversation.bot_state = scrub(conversation.bot_state, needles)
        session.add(conversation)
    for note in (await session.exec(select(CustomerNote).where(_mentions(CustomerNote.body, needles)))).all():
        note.body = scrub(note.body, needles)
        session.add(note)
