"""Macros: an admin adds, edits or deletes a bundle of conversation actions (``macro_apply`` runs it)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import parse_priority, parse_status, write_audit
from inbox.actions.conversation_labels import normalize_labels
from inbox.models import Agent, CannedResponse, ConversationStatus, Macro
from shopbase.clock import utcnow
from shopbase.refusal import Refused
from shopbase.text import clean_line

__all__ = ["macro_save", "macro_delete", "MAX_SNOOZE_HOURS"]

MAX_SNOOZE_HOURS = 24 * 30


async def macro_save(
    session: AsyncSession,
    *,
    name: str,
    by: Agent,
    macro_id: int | None = None,
    shortcut: str | None = None,
    canned_id: int | None = None,
    status: str | None = None,
    priority: str | None = None,
    add_labels: Iterable[str] = (),
    assign: str | None = None,
    snooze_hours: int | None = None,
) -> Macro:
    """Add (``macro_id`` None) or replace a macro; everything is checked before anything is
    written. Admins only. A snoozing macro needs its hours; a macro must do something."""
    if not by.is_admin:
        raise Refused("forbidden", "only admins can change macros", status=403)
    name = clean_line(name, 120)
    if not name:
        raise Refused("invalid", "give the macro a name", status=400)
    key = (shortcut or "").strip().lower() or None
    if key is not None and not (len(key) == 1 and key.isascii() and key.isalnum()):
        raise Refused("invalid", "the shortcut is one letter or digit", status=400)
    if canned_id is not None and await session.get(CannedResponse, canned_id) is None:
        raise Refused("invalid", "there is no such canned response", status=400)
    status_value = parse_status(status).value if status else None
    priority_value = parse_priority(priority).value if priority else None
    labels = normalize_labels(list(add_labels))
    assign_value = (assign or "").strip() or None
    if assign_value not in (None, "me", "none"):
        assignee = await session.get(Agent, int(assign_value)) if assign_value.isdigit() and len(assign_value) < 10 \
            else None
        if assignee is None or not assignee.is_active:
            raise Refused("invalid", "there is no such agent to assign to", status=400)
    if status_value == ConversationStatus.snoozed.value:
        if snooze_hours is None or not 1 <= snooze_hours <= MAX_SNOOZE_HOURS:
            raise Refused("invalid", "a snoozing macro needs the hours to snooze (1 to 720)", status=400)
    else:
        snooze_hours = None
    if not any((canned_id, status_value, priority_value, labels, assign_value)):
        raise Refused("invalid", "the macro does nothing: choose at least one action", status=400)
    for field, value in (("name", name), ("shortcut", key)):
        if value is None:
            continue
        clash = (await session.exec(select(Macro).where(getattr(Macro, field) == value))).first()
        if clash is not None and clash.id != macro_id:
            raise Refused("taken", f"another macro already uses the {field} {value}", status=400)
    now = utcnow()
    if macro_id is None:
        row = Macro(name=name, created_at=now)
    else:
        found = await session.get(Macro, macro_id)
        if found is None:
            raise Refused("not_found", "there is no such macro", status=404)
        row = found
    row.name, row.shortcut, row.canned_id = name, key, canned_id
    row.status, row.priority, row.add_labels = status_value, priority_value, labels
    row.assign, row.snooze_hours, row.updated_at = assign_value, snooze_hours, now
    session.add(row)
    await session.flush()
    write_audit(session, None, "macro.saved", agent=by, detail={"macro_id": row.id}, now=now)
    return row


async def macro_delete(session: AsyncSession, macro_id: int, *, by: Agent) -> None:
    if not by.is_admin:
        raise Refused("forbidden", "only admins can change macros", status=403)
    row = await session.get(Macro, macro_id)
    if row is None:
        raise Refused("not_found", "there is no such macro", status=404)
    await session.delete(row)
    write_audit(session, None, "macro.deleted", agent=by, detail={"macro_id": macro_id})
