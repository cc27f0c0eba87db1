"""An agent adds or removes tags of a customer ("vip", "wholesale", "chargeback risk")."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import customer_changed, write_audit
from inbox.actions.customer_merge import lock_profile
from inbox.models import Agent
from shopbase.clock import utcnow
from shopbase.refusal import Refused
from shopbase.text import clean_line

__all__ = ["customer_tags", "TAG_MAX_CHARS", "MAX_TAGS"]

TAG_MAX_CHARS = 40
MAX_TAGS = 30


def _clean(tag: str) -> str:
    text = " ".join(clean_line(tag or "").split())
    if len(text) > TAG_MAX_CHARS:
        raise Refused("tag_too_long", f"A tag is at most {TAG_MAX_CHARS} characters.", status=400)
    return text


async def customer_tags(
    session: AsyncSession, profile_id: int, *, add: list[str] = (), remove: list[str] = (),  # type: ignore[assignment]
    agent: Agent,
) -> list[str]:
    """Add ``add`` and remove ``remove`` (case-insensitive); returns the profile's tags."""
    profile = await lock_profile(session, profile_id)
    if profile.merged_into_id is not None:
        raise Refused("target_merged", f"This customer was merged into customer #{profile.merged_into_id}.",
                      status=409)
    tags = list(profile.tags)
    known = {tag.casefold() for tag in tags}
    added = []
    for raw in add:
        tag = _clean(raw)
        if tag and tag.casefold() not in known:
            tags.append(tag)
            known.add(tag.casefold())
            added.append(tag)
    gone = {_clean(raw).casefold() for raw in remove}
    removed = [tag for tag in tags if tag.casefold() in gone]
    tags = [tag for tag in tags if tag.casefold() not in gone]
    if len(tags) > MAX_TAGS:
        raise Refused("too_many_tags", f"A customer has at most {MAX_TAGS} tags.", status=400)
    if not added and not removed:
        return tags
    now = utcnow()
    profile.tags = tags
    profile.updated_at = now
    session.add(profile)
    await session.flush()
    customer_changed(session, profile_id)
    write_audit(session, None, "customer.tags", agent=agent,
                detail={"profile_id": profile_id, "added": added, "removed": removed}, now=now)
    return tags
