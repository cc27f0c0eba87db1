"""An admin removes an entry of the agents' catalogs: a canned response or a label (labels
already on conversations stay there; only the pick list loses it)."""

from __future__ import annotations

from typing import Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.models import Agent, CannedResponse, Label
from shopbase.refusal import Refused

__all__ = ["CatalogKind", "catalog_delete"]

CatalogKind = Literal["canned", "label"]


async def catalog_delete(
    session: AsyncSession, kind: CatalogKind, row_id: int, *, by: Agent | None
) -> CannedResponse | Label:
    """Delete the row (audited) and return it; Refused (404) when it does not exist."""
    row: CannedResponse | Label | None = (
        await session.get(CannedResponse, row_id) if kind == "canned" else await session.get(Label, row_id)
    )
    if row is None:
        raise Refused("not_found", f"there is no such {kind}", status=404)
    await session.delete(row)
    write_audit(session, None, f"{kind}.deleted", agent=by, detail={f"{kind}_id": row.id})
    return row
