"""Canned responses: an admin adds or edits one (the shortcut is unique)."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.models import Agent, CannedResponse
from shopbase.refusal import Refused

__all__ = ["canned_save"]


async def canned_save(
    session: AsyncSession,
    shortcut: str,
    title: str,
    body: str,
    *,
    canned_id: int | None = None,
    by: Agent | None = None,
) -> CannedResponse:
    """Add (``canned_id`` None) or replace a canned response whose fields the caller checked.
    Refused when the shortcut is taken or (404) the response to edit is gone."""
    clash = (await session.exec(select(CannedResponse).where(CannedResponse.shortcut == shortcut))).first()
    if canned_id is None:
        if clash is not None:
            raise Refused("taken", f"the shortcut {shortcut} is taken", status=400)
        row = CannedResponse(shortcut=shortcut, title=title, body=body)
    else:
        found = await session.get(CannedResponse, canned_id)
        if found is None:
            raise Refused("not_found", "there is no such canned response", status=404)
        if clash is not None and clash.id != found.id:
            raise Refused("taken", f"the shortcut {shortcut} is taken", status=400)
        row = found
        row.shortcut, row.title, row.body = shortcut, title, body
    session.add(row)
    await session.flush()
    write_audit(session, None, "canned.saved", agent=by, detail={"canned_id": row.id})
    return row
