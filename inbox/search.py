"""Full-text search over message text: SQLite FTS5 or PostgreSQL ``to_tsvector``.

The index comes from migration 0002 (``message_fts`` on SQLite, a GIN expression index on
PostgreSQL). User input is never spliced into SQL or into FTS5 query syntax: for FTS5 every
whitespace-separated token becomes a double-quoted string (inner quotes doubled), so
``AND``, ``NEAR``, ``*``, ``:`` and parentheses are searched for as words; PostgreSQL gets the
raw text through ``plainto_tsquery('simple', :q)``, which ignores operators. All tokens must
match (AND).
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from inbox.models import Message
from shopbase.text import clean_line

__all__ = ["MAX_QUERY_CHARS", "MAX_QUERY_TOKENS", "fts5_query", "clean_query", "matching_conversation_ids"]

MAX_QUERY_CHARS = 200
MAX_QUERY_TOKENS = 12
# characters the unicode61 tokenizer treats as separators; a token of only these matches nothing
_WORDLESS = re.compile(r"^\W+$")


def clean_query(q: str | None) -> str:
    """The search text with control characters and lone surrogates removed, cut to a sane size."""
    return clean_line(q, MAX_QUERY_CHARS)


def fts5_query(q: str | None) -> str | None:
    """An FTS5 MATCH expression for ``q`` that treats every token as a literal string."""
    tokens = [t for t in clean_query(q).split() if not _WORDLESS.match(t)][:MAX_QUERY_TOKENS]
    if not tokens:
        return None
    return " ".join('"' + t.replace('"', '""') + '"' for t in tokens)


def matching_conversation_ids(dialect: str, q: str | None) -> sa.Select[int] | None:
    """A ``SELECT conversation_id`` of messages matching ``q``, or None when ``q`` has no words."""
    if dialect == "sqlite":
        match = fts5_query(q)
        if match is None:
            return None
        rowids = (
            sa.text("SELECT rowid FROM message_fts WHERE message_fts MATCH :fts_q")
            .bindparams(fts_q=match)
            .columns(rowid=sa.Integer)
        )
        cond: ColumnElement[bool] | sa.TextClause = col(Message.id).in_(rowids)
    else:
        text = clean_query(q)
        if not any(not _WORDLESS.match(t) for t in text.split()):
            return None
        # literal 'simple' so that PostgreSQL uses the expression index ix_message_text_fts
        cond = sa.text("to_tsvector('simple', message.text) @@ plainto_tsquery('simple', :fts_q)").bindparams(
            fts_q=text
        )
    return sa.select(col(Message.conversation_id)).where(cond).distinct()
