"""The labels on a conversation, and the one rule for what a stored label looks like."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import conversation_event, touch, write_audit
from inbox.events import EventType, collect
from inbox.models import Agent, Conversation
from shopbase.clock import utcnow
from shopbase.refusal import Refused
from shopbase.text import clean_line

__all__ = ["MAX_LABELS", "normalize_labels", "conversation_labels"]

MAX_LABELS = 20


def normalize_labels(labels: str | Iterable[object] | None) -> list[str]:
    """Labels as stored: trimmed, lower-case, one line, at most 64 characters, unique, in order."""
    if isinstance(labels, str):
        labels = [labels]
    out: list[str] = []
    for raw in labels or ():
        label = clean_line(str(raw), 64).lower()
        if label and label not in out:
            out.append(label)
    if len(out) > MAX_LABELS:
        raise Refused("too_many_labels", f"too many labels: {len(out)}, at most {MAX_LABELS}", status=400)
    return out


async def conversation_labels(
    session: AsyncSession,
    conversation: Conversation,
    labels: Iterable[str],
    *,
    by: Agent | None,
    actor: str | None = None,
) -> list[str]:
    """Replace the labels (normalized by :func:`normalize_labels`); returns the stored list."""
    new = normalize_labels(list(labels))
    previous = list(conversation.labels or [])
    now = utcnow()
    conversation.labels = new  # reassign: JSON columns only track assignment
    touch(session, conversation, now)
    write_audit(session, conversation.id, "conversation.labels", agent=by, actor=actor,
                detail={"added": [x for x in new if x not in previous],
                        "removed": [x for x in previous if x not in new]}, now=now)
    collect(session, conversation_event(EventType.conversation_updated, conversation, change="labels", labels=new))
    return new
