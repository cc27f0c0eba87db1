"""Labels agents can pick: an admin adds one or changes its colour."""

from __future__ import annotations

import re

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.actions.conversation_labels import normalize_labels
from inbox.models import Agent, Label
from shopbase.refusal import Refused

__all__ = ["label_save"]

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


async def label_save(session: AsyncSession, name: str, color: str, *, by: Agent | None = None) -> Label:
    """Add the label (stored as conversations store labels) or update the colour of an
    existing one. Refused for an empty name or a colour that is not ``#rrggbb``."""
    names = normalize_labels([name])
    if not names:
        raise Refused("no_name", "enter a label name", status=400)
    color = color.strip()
    if not _COLOR.match(color):
        raise Refused("bad_color", "the colour must look like #1d4ed8", status=400)
    row = (await session.exec(select(Label).where(Label.name == names[0]))).first() or Label(name=names[0])
    row.color = color
    session.add(row)
    await session.flush()
    write_audit(session, None, "label.saved", agent=by, detail={"label_id": row.id})
    return row
