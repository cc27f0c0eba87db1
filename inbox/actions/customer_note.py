"""An agent writes a note about a customer (shown on the profile and in every conversation's sidebar)."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import customer_changed, write_audit
from inbox.actions.customer_merge import lock_profile
from inbox.models import Agent, CustomerNote
from shopbase.clock import utcnow
from shopbase.refusal import Refused
from shopbase.text import clean_text

__all__ = ["customer_note", "NOTE_MAX_CHARS"]

NOTE_MAX_CHARS = 4000


async def customer_note(session: AsyncSession, profile_id: int, body: str, *, agent: Agent) -> CustomerNote:
    """Add the note; Refused when it is empty or longer than ``NOTE_MAX_CHARS``."""
    text = clean_text(body or "")
    if not text:
        raise Refused("note_empty", "The note is empty.", status=400)
    if len(text) > NOTE_MAX_CHARS:
        raise Refused("note_too_long", f"The note is longer than {NOTE_MAX_CHARS} characters.", status=400)
    profile = await lock_profile(session, profile_id)
    if profile.merged_into_id is not None:
        raise Refused("target_merged", f"This customer was merged into customer #{profile.merged_into_id}.",
                      status=409)
    now = utcnow()
    note = CustomerNote(profile_id=profile_id, agent_id=agent.id, body=text, created_at=now)
    session.add(note)
    profile.updated_at = now
    session.add(profile)
    await session.flush()
    customer_changed(session, profile_id)
    write_audit(session, None, "customer.note", agent=agent, detail={"profile_id": profile_id, "note_id": note.id},
                now=now)
    return note
