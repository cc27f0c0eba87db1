"""Canned responses: an admin adds or edits one (the shortcut is unique); it has a body per language."""

from __future__ import annotations

from collections.abc import Mapping

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.models import Agent, CannedResponse
from inbox.replies import SUPPORTED_LANGUAGES as CANNED_LANGUAGES
from shopbase.refusal import Refused

__all__ = ["canned_save", "CANNED_LANGUAGES"]


async def canned_save(
    session: AsyncSession,
    shortcut: str,
    title: str,
    bodies: Mapping[str, str],
    *,
    canned_id: int | None = None,
    by: Agent | None = None,
) -> CannedResponse:
    """Add (``canned_id`` None) or replace a canned response whose fields the caller checked;
    ``bodies`` maps language codes to body templates (empty bodies are dropped; at least one must
    remain). Refused when a language is unknown, no body is left, the shortcut is taken or (404)
    the response to edit is gone."""
    unknown = sorted(set(bodies) - set(CANNED_LANGUAGES))
    if unknown:
        raise Refused("bad_language", f"unknown language {unknown[0]}", status=400)
    kept = {lang: bodies[lang] for lang in CANNED_LANGUAGES if (bodies.get(lang) or "").strip()}
    if not kept:
        raise Refused("invalid", "write the body in at least one language", status=400)
    clash = (await session.exec(select(CannedResponse).where(CannedResponse.shortcut == shortcut))).first()
    if canned_id is None:
        if clash is not None:
            raise Refused("taken", f"the shortcut {shortcut} is taken", status=400)
        row = CannedResponse(shortcut=shortcut, title=title, bodies=kept)
    else:
        found = await session.get(CannedResponse, canned_id)
        if found is None:
            raise Refused("not_found", "there is no such canned response", status=404)
        if clash is not None and clash.id != found.id:
            raise Refused("taken", f"the shortcut {shortcut} is taken", status=400)
        row = found
        row.shortcut, row.title, row.bodies = shortcut, title, kept  # reassign: JSON columns track assignment
    session.add(row)
    await session.flush()
    write_audit(session, None, "canned.saved", agent=by, detail={"canned_id": row.id, "languages": sorted(kept)})
    return row
