"""An agent merges one customer profile into another (the same person on two channels, or with
two email addresses): the source's identities, notes and tags move to the target, and a
``CustomerMerge`` row remembers exactly what moved, so ``customer_unmerge`` can undo it."""

from __future__ import annotations

from sqlalchemy.exc import NoResultFound
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import customer_changed, write_audit
from inbox.models import Agent, CustomerIdentity, CustomerMerge, CustomerNote, CustomerProfile
from shopbase.clock import utcnow
from shopbase.refusal import Refused
from shopbase.rows import locked

__all__ = ["customer_merge", "lock_profile"]

_MAX_CHAIN = 1000


async def lock_profile(session: AsyncSession, profile_id: int) -> CustomerProfile:
    """The profile, locked for this transaction; Refused (404) when there is none."""
    try:
        return await locked(session, CustomerProfile, profile_id)
    except NoResultFound:
        raise Refused("no_customer", "That customer does not exist.", status=404) from None


async def _chain(session: AsyncSession, profile: CustomerProfile) -> list[int]:
    """The ids ``profile`` was merged into, nearest first (stops at a loop, which cannot happen)."""
    seen: list[int] = []
    current = profile
    while current.merged_into_id is not None and len(seen) < _MAX_CHAIN:
        if current.merged_into_id in seen:
            break
        seen.append(current.merged_into_id)
        following = await session.get(CustomerProfile, current.merged_into_id)
        if following is None:
            break
        current = following
    return seen


async def customer_merge(
    session: AsyncSession, source_id: int, target_id: int, *, agent: Agent
) -> CustomerMerge:
    """Merge profile ``source_id`` into ``target_id``; Refused (nothing written) for a merge of a
    profile into itself, into a profile merged into it (a cycle), or of a merged profile."""
    if source_id == target_id:
        raise Refused("merge_self", "A customer cannot be merged into itself.", status=400)
    source = await lock_profile(session, source_id)
    target = await lock_profile(session, target_id)
    if source.erased_at is not None or target.erased_at is not None:
        raise Refused("customer_erased", "An erased customer cannot be merged.", status=409)
    chain = await _chain(session, target)
    if source_id in chain:
        cycle = (f"Customer #{target_id} was merged into customer #{source_id}; merging #{source_id} into "
                 f"#{target_id} would make a cycle. Un-merge instead.")
        raise Refused("merge_cycle", cycle, status=409)
    if source.merged_into_id is not None:
        raise Refused("already_merged", f"Customer #{source_id} is already merged into customer "
                      f"#{source.merged_into_id}.", status=409)
    if target.merged_into_id is not None:
        raise Refused("target_merged", f"Customer #{target_id} was merged into customer "
                      f"#{chain[-1]}; merge into that one.", status=409)

    now = utcnow()
    identities = list((await session.exec(
        select(CustomerIdentity).where(col(CustomerIdentity.profile_id) == source_id))).all())
    notes = list((await session.exec(select(CustomerNote).where(col(CustomerNote.profile_id) == source_id))).all())
    for row in (*identities, *notes):
        row.profile_id = target_id
        session.add(row)
    known = {tag.casefold() for tag in target.tags}
    tags_added = []
    for tag in source.tags:
        if tag.casefold() not in known:
            known.add(tag.casefold())
            tags_added.append(tag)
    target.tags = [*target.tags, *tags_added]
    target.updated_at = now
    source.merged_into_id = target_id
    source.updated_at = now
    session.add_all([source, target])
    merge = CustomerMerge(
        source_id=source_id, target_id=target_id, agent_id=agent.id, created_at=now,
        moved={"identities": [r.id for r in identities], "notes": [n.id for n in notes], "tags_added": tags_added},
    )
    session.add(merge)
    await session.flush()
    customer_changed(session, source_id, target_id)
    write_audit(session, None, "customer.merged", agent=agent,
                detail={"merge_id": merge.id, "source_id": source_id, "target_id": target_id,
                        "identities": len(identities), "notes": len(notes)}, now=now)
    return merge
