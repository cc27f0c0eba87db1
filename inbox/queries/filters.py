"""The one declared filter set of conversation lists and counts: status, channel, intent,
priority, label and search text. The web's list parameters, the list and the counts all use
:class:`ConversationFilters`; an unknown value is an :class:`InvalidQuery` (a 400)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Channel, Conversation, ConversationStatus, Priority
from inbox.search import conversation_hits, search_scores
from shopbase.refusal import Refused

__all__ = ["InvalidQuery", "ConversationFilters", "FILTER_NAMES"]

FILTER_NAMES = ("status", "channel", "intent", "priority", "label", "q")
_E = TypeVar("_E", bound=enum.Enum)


class InvalidQuery(Refused, ValueError):
    """A filter or cursor that makes no sense; the message is fit for a 400 answer."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid_query", message, status=400)


def _enum(cls: type[_E], value: Any, what: str) -> _E:
    try:
        return cls(value)
    except ValueError:
        raise InvalidQuery(f"unknown {what} {value!r}") from None


@dataclass(frozen=True)
class ConversationFilters:
    """Every filter a conversation list can take; None means "any"."""

    status: ConversationStatus | None = None
    channel: Channel | None = None
    intent: str | None = None
    priority: Priority | None = None
    label: str | None = None
    q: str | None = None
    #: the search already run (:meth:`resolve`): conversation id -> score; None if not run
    scores: Mapping[int, float] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(
        cls,
        *,
        status: Any = None,
        channel: Any = None,
        intent: Any = None,
        priority: Any = None,
        label: Any = None,
        q: Any = None,
    ) -> ConversationFilters:
        """Check raw values (strings or enums; empty means "any"); InvalidQuery for unknown ones."""
        return cls(
            status=_enum(ConversationStatus, status, "status") if status else None,
            channel=_enum(Channel, channel, "channel") if channel else None,
            intent=str(intent)[:32] if intent else None,
            priority=_enum(Priority, priority, "priority") if priority else None,
            label=str(label)[:64] if label else None,
            q=str(q) if q else None,
        )

    def without_status(self) -> ConversationFilters:
        return replace(self, status=None)

    async def resolve(self, session: AsyncSession) -> ConversationFilters:
        """These filters with the search run once (:attr:`scores`), so that a list and its
        counts do not search again; unchanged without search text or when already run."""
        if not self.q or self.scores is not None:
            return self
        scores = await search_scores(session, self.q)
        return self if scores is None else replace(self, scores=scores)

    def search_hits(self, dialect: str) -> sa.Subquery | None:
        """``(conversation_id, score)`` of the conversations the search text matches (higher
        score is better); None without search text (see :mod:`inbox.search`)."""
        return conversation_hits(dialect, self.q) if self.q else None

    def conditions(self, dialect: str) -> list[ColumnElement[bool]]:
        """The SQL conditions over ``Conversation``. After :meth:`resolve`, the search is the list
        of matching ids, and on SQLite the other conditions are marked as :meth:`secondary`."""
        conds: list[ColumnElement[bool]] = []
        if self.status is not None:
            conds.append(Conversation.status == self.status)  # type: ignore[arg-type]
        if self.channel is not None:
            conds.append(Conversation.channel == self.channel)  # type: ignore[arg-type]
        if self.priority is not None:
            conds.append(Conversation.priority == self.priority)  # type: ignore[arg-type]
        if self.intent:
            conds.append(Conversation.last_intent == self.intent)  # type: ignore[arg-type]
        if self.label:
            conds.append(_label_condition(dialect, self.label))
        conds = [self.secondary(dialect, c) for c in conds]
        if self.scores is not None:
            conds.append(Conversation.id.in_(list(self.scores)) if self.scores else sa.false())  # type: ignore[union-attr]
        elif (hits := self.search_hits(dialect)) is not None:
            conds.append(Conversation.id.in_(sa.select(hits.c.conversation_id)))  # type: ignore[union-attr]
        return conds

    def secondary(self, dialect: str, cond: ColumnElement[bool]) -> ColumnElement[bool]:
        """``cond`` as a condition that should not drive the query when the search ids do:
        SQLite has no statistics by default and would rather scan the status index than look
        up a few hundred ids; ``likely()`` tells it the condition is no filter worth an index."""
        if self.scores is None or dialect != "sqlite":
            return cond
        return sa.func.likely(cond)


def _label_condition(dialect: str, label: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return sa.type_coerce(Conversation.labels, JSONB).contains([label])
    each = sa.func.json_each(Conversation.labels).table_valued("value")
    return sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value == label))
