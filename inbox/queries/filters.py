"""The one declared filter set of conversation lists and counts: status, channel, intent,
priority, label and search text. The web's list parameters, the list and the counts all use
:class:`ConversationFilters`; an unknown value is an :class:`InvalidQuery` (a 400)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from inbox.models import Channel, Conversation, ConversationStatus, Priority
from inbox.search import conversation_hits
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

    def search_hits(self, dialect: str) -> sa.Subquery | None:
        """``(conversation_id, score)`` of the conversations the search text matches, best
        first by ``score``; None without search text (see :mod:`inbox.search`)."""
        return conversation_hits(dialect, self.q) if self.q else None

    def conditions(self, dialect: str, *, search: bool = True) -> list[ColumnElement[bool]]:
        """The SQL conditions over ``Conversation``; with ``search=False`` the search text is left
        out (a caller that joins :meth:`search_hits` itself, to order by score)."""
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
        hits = self.search_hits(dialect) if search else None
        if hits is not None:
            conds.append(Conversation.id.in_(sa.select(hits.c.conversation_id)))  # type: ignore[union-attr]
        return conds


def _label_condition(dialect: str, label: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return sa.type_coerce(Conversation.labels, JSONB).contains([label])
    each = sa.func.json_each(Conversation.labels).table_valued("value")
    return sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value == label))
