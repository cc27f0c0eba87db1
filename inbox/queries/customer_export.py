"""Everything Shopdesk holds about a person, as one JSON-ready dict (GDPR access request;
``shopdesk customers export EMAIL``). It reads the same set of records that
:mod:`inbox.actions.customer_erase` erases (:func:`inbox.queries.person.find_person`)."""

from __future__ import annotations

import enum
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import (
    AuditEvent,
    Contact,
    Conversation,
    CsatSurvey,
    CustomerNote,
    CustomerProfile,
    Message,
)
from inbox.queries.person import customer_files, find_person
from ordersvc.privacy import order_store_report
from shopbase.clock import utcnow

__all__ = ["customer_export"]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _row(row: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: _plain(getattr(row, name)) for name in fields}


_CONTACT = ("id", "channel", "external_id", "display_name", "username", "language", "customer_id", "verified_at",
            "updates_allowed_at", "updates_stopped_at", "created_at", "last_seen_at")
_CONVERSATION = ("id", "channel", "status", "priority", "labels", "language", "last_intent", "summary",
                 "created_at", "resolved_at", "last_message_at")
_MESSAGE = ("id", "direction", "author", "is_internal", "text", "attachments", "language", "created_at")


async def customer_export(session: AsyncSession, email: str, *, files_dir: Path | None = None) -> dict[str, Any]:
    """The report (Refused for a malformed email). Only ids in ``audit``; every message in full."""
    person = await find_person(session, email)
    conv_ids = person.conversation_ids
    conversations = list(await session.exec(select(Conversation).where(
        col(Conversation.id).in_(conv_ids)).order_by(col(Conversation.id)))) if conv_ids else []
    messages = list(await session.exec(select(Message).where(
        col(Message.conversation_id).in_(conv_ids)).order_by(col(Message.id)))) if conv_ids else []
    surveys = list(await session.exec(select(CsatSurvey).where(
        col(CsatSurvey.conversation_id).in_(conv_ids)))) if conv_ids else []
    profiles = list(await session.exec(select(CustomerProfile).where(
        col(CustomerProfile.id).in_(person.profile_ids)))) if person.profile_ids else []
    notes = list(await session.exec(select(CustomerNote).where(
        col(CustomerNote.profile_id).in_(person.profile_ids)))) if person.profile_ids else []
    audits = list(await session.exec(select(AuditEvent).where(
        col(AuditEvent.conversation_id).in_(conv_ids)).order_by(col(AuditEvent.id)))) if conv_ids else []
    by_conversation: dict[int, list[dict[str, Any]]] = {}
    for message in messages:
        by_conversation.setdefault(message.conversation_id, []).append(_row(message, _MESSAGE))
    files = await customer_files(session, files_dir, person)
    contacts: list[Contact] = person.contacts
    return {
        "email": email.strip(),
        "generated_at": utcnow().isoformat(),
        "order_store": await order_store_report(session, person.match),
        "profiles": [{"id": p.id, "display_name": p.display_name, "tags": p.tags,
                      "created_at": _plain(p.created_at)} for p in profiles],
        "notes": [{"profile_id": n.profile_id, "body": n.body, "created_at": _plain(n.created_at)} for n in notes],
        "contacts": [_row(c, _CONTACT) for c in contacts],
        "conversations": [{**_row(c, _CONVERSATION), "messages": by_conversation.get(c.id or 0, [])}
                          for c in conversations],
        "satisfaction": [{"conversation_id": s.conversation_id, "rating": s.rating, "comment": s.comment,
                          "rated_at": _plain(s.rated_at)} for s in surveys],
        "audit": [{"id": a.id, "conversation_id": a.conversation_id, "action": a.action,
                   "created_at": _plain(a.created_at)} for a in audits],
        "files": [str(p.relative_to(files_dir)) for p in files] if files_dir is not None else [],
    }
