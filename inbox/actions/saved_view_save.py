"""An agent saves the inbox list's current filters under a name (their own views), or deletes one."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.models import Agent, SavedView
from shopbase.refusal import Refused
from shopbase.text import clean_line

__all__ = ["MAX_SAVED_VIEWS", "saved_view_save", "saved_view_delete"]

MAX_SAVED_VIEWS = 30


async def saved_view_save(session: AsyncSession, agent: Agent, name: str, query: str) -> SavedView:
    """Save ``query`` (the list's query string, already checked by the caller) as ``name``;
    the same name again replaces that view's filters."""
    if agent.id is None or not agent.is_active:
        raise Refused("no_access", "you cannot save views", status=403)
    clean = clean_line(str(name or ""), 60)
    if not clean:
        raise Refused("name_required", "Give the view a name.", status=400)
    if len(query) > 1000:
        raise Refused("view_too_long", "These filters are too long to save.", status=400)
    mine = list((await session.exec(select(SavedView).where(col(SavedView.agent_id) == agent.id))).all())
    row = next((v for v in mine if v.name == clean), None)
    if row is None:
        if len(mine) >= MAX_SAVED_VIEWS:
            raise Refused("too_many_views", "You have too many saved views; delete one first.", status=400)
        row = SavedView(agent_id=agent.id, name=clean, query=query)
    else:
        row.query = query
    session.add(row)
    await session.flush()
    write_audit(session, None, "saved_view.saved", agent=agent, detail={"view_id": row.id})
    return row


async def saved_view_delete(session: AsyncSession, agent: Agent, view_id: int) -> None:
    """Delete one of the agent's own saved views (someone else's is "no such view")."""
    row = await session.get(SavedView, view_id)
    if row is None or row.agent_id != agent.id:
        raise Refused("no_such_view", "There is no such saved view.", status=404)
    await session.delete(row)
    write_audit(session, None, "saved_view.deleted", agent=agent, detail={"view_id": view_id})
