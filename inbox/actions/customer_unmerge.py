"""An agent undoes a merge of customer profiles: what moved goes back, the source is its own
customer again, and both changes are audited."""

from __future__ import annotations

from sqlalchemy.exc import NoResultFound
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import customer_changed, write_audit
from inbox.actions.customer_merge import lock_profile
from inbox.models import Agent, CustomerIdentity, CustomerMerge, CustomerNote
from shopbase.clock import utcnow
from shopbase.refusal import Refused
from shopbase.rows import locked

__all__ = ["customer_unmerge"]


async def customer_unmerge(session: AsyncSession, merge_id: int, *, agent: Agent) -> CustomerMerge:
    """Undo merge ``merge_id``. Identities and notes that moved and are still with the target go
    back to the source, and tags the merge added are removed from the target. Refused when the
    merge was undone already or the target has since been merged into another customer."""
    try:
        merge = await locked(session, CustomerMerge, merge_id)
    except NoResultFound:
        raise Refused("no_merge", "That merge does not exist.", status=404) from None
    if merge.undone_at is not None:
        raise Refused("merge_undone", "That merge was undone already.", status=409)
    source = await lock_profile(session, merge.source_id)
    target = await lock_profile(session, merge.target_id)
    if target.merged_into_id is not None:
        raise Refused("target_merged", f"Customer #{target.id} has since been merged into customer "
                      f"#{target.merged_into_id}; un-merge that first.", status=409)
    if source.merged_into_id != target.id:
        raise Refused("merge_undone", "That merge was undone already.", status=409)

    now = utcnow()
    moved = merge.moved or {}
    identity_ids = [int(i) for i in moved.get("identities", [])]
    note_ids = [int(i) for i in moved.get("notes", [])]
    identities = list(await session.exec(select(CustomerIdentity).where(
        col(CustomerIdentity.id).in_(identity_ids), col(CustomerIdentity.profile_id) == target.id))) if identity_ids else []
    notes = list(await session.exec(select(CustomerNote).where(
        col(CustomerNote.id).in_(note_ids), col(CustomerNote.profile_id) == target.id))) if note_ids else []
    for row in (*identities, *notes):
        row.profile_id = source.id
        session.add(row)
    added = set(moved.get("tags_added", []))
    target.tags = [tag for tag in target.tags if tag not in added]
    target.updated_at = now
    source.merged_into_id = None
    source.updated_at = now
    merge.undone_at = now
    merge.undone_by_id = agent.id
    session.add_all([source, target, merge])
    await session.flush()
    customer_changed(session, source.id, target.id)
    write_audit(session, None, "customer.unmerged", agent=agent,
                detail={"merge_id": merge.id, "source_id": source.id, "target_id": target.id,
                        "identities": len(identities), "notes": len(notes)}, now=now)
    return merge
