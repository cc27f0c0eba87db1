"""Inbox search: the conversations whose messages (or contact name) match a query, ranked.

The index (migration 0004) holds ``message.search_text``, the folded and tokenised text of
:func:`shopbase.search_text.index_text`: FTS5 ``message_fts`` on SQLite, a GIN index on
``to_tsvector('simple', search_text)`` on PostgreSQL. The query goes through the same folding
(:func:`shopbase.search_text.query_terms`), so accents, case, traditional/simplified Chinese
and CJK word boundaries do not matter, on both databases alike.

A query is terms that must all match (AND); a term is one or more alternatives (OR: the word
as a prefix, its stems); an alternative is a phrase (a CJK run's bigrams, in order). Tokens
contain only letters and digits, and every token is quoted for FTS5 anyway, so user input
is never query syntax (``"``, ``*``, ``NEAR``, ``-``, ``AND``/``OR`` are ignored or searched as
words); for PostgreSQL the tokens become a ``to_tsquery`` text from the same structure.

Ranking: bm25 (SQLite) or ``ts_rank`` (PostgreSQL) of the best matching message; ties and
everything else by recency. The index query stops early: only the :data:`MAX_HITS` best
messages are considered, then their conversations are joined with the access rules and
filters. Conversations whose contact's name or username contains the query come first.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col

from inbox.models import Contact, Conversation
from shopbase.search_text import Term, query_terms
from shopbase.text import clean_line

__all__ = [
    "MAX_QUERY_CHARS",
    "MAX_HITS",
    "NAME_SCORE",
    "clean_query",
    "fts5_query",
    "tsquery_text",
    "conversation_hits",
]

MAX_QUERY_CHARS = 200
#: the best-ranked messages a search looks at; conversations beyond them are not listed
MAX_HITS = 1000
#: the score of a conversation whose contact name matches (above any text match)
NAME_SCORE = 1.0e6


def clean_query(q: str | None) -> str:
    """The search text with control characters and lone surrogates removed, cut to a sane size."""
    return clean_line(q, MAX_QUERY_CHARS)


def _fts5_alternative(tokens: tuple[str, ...], prefix: bool) -> str:
    # tokens are letters and digits only; quoting (with doubled quotes) keeps them literal regardless
    phrase = '"' + " ".join(tokens).replace('"', '""') + '"'
    return phrase + "*" if prefix else phrase


def fts5_query(terms: list[Term] | str | None) -> str | None:
    """An FTS5 MATCH expression for a query (text or its terms), or None when it has no words."""
    if terms is None or isinstance(terms, str):
        terms = query_terms(terms)
    parts = []
    for term in terms:
        alternatives = [_fts5_alternative(a.tokens, a.prefix) for a in term.alternatives]
        parts.append(alternatives[0] if len(alternatives) == 1 else "(" + " OR ".join(alternatives) + ")")
    return " AND ".join(parts) or None


def _ts_alternative(tokens: tuple[str, ...], prefix: bool) -> str:
    # a token is letters and digits; quoted and escaped for to_tsquery all the same
    quoted = ["'" + t.replace("\\", "\\\\").replace("'", "''") + "'" for t in tokens]
    if prefix:
        quoted[-1] += ":*"
    return "(" + " <-> ".join(quoted) + ")" if len(quoted) > 1 else quoted[0]


def tsquery_text(terms: list[Term] | str | None) -> str | None:
    """A ``to_tsquery('simple', ...)`` text for a query (text or its terms), or None."""
    if terms is None or isinstance(terms, str):
        terms = query_terms(terms)
    parts = []
    for term in terms:
        alternatives = [_ts_alternative(a.tokens, a.prefix) for a in term.alternatives]
        parts.append(alternatives[0] if len(alternatives) == 1 else "(" + " | ".join(alternatives) + ")")
    return " & ".join(parts) or None


def _text_hits(dialect: str, terms: list[Term]) -> sa.TextualSelect | None:
    """``(conversation_id, score)`` of the :data:`MAX_HITS` best messages, higher score = better."""
    if dialect == "sqlite":
        match = fts5_query(terms)
        if match is None:
            return None
        # FTS5's rank is bm25(), negative: lower is better
        sql = (
            "SELECT message.conversation_id AS conversation_id, -hit.rank AS score "
            "FROM (SELECT rowid, rank FROM message_fts WHERE message_fts MATCH :search_match "
            "ORDER BY rank, rowid DESC LIMIT :search_hits) AS hit "
            "JOIN message ON message.id = hit.rowid"
        )
        params = {"search_match": match}
    else:
        tsq = tsquery_text(terms)
        if tsq is None:
            return None
        # the literal 'simple' makes PostgreSQL use the expression index ix_message_search_text
        sql = (
            "SELECT conversation_id, "
            "CAST(ts_rank(to_tsvector('simple', search_text), search_query) AS DOUBLE PRECISION) AS score "
            "FROM message, to_tsquery('simple', :search_tsquery) AS search_query "
            "WHERE to_tsvector('simple', search_text) @@ search_query "
            "ORDER BY score DESC, message.id DESC LIMIT :search_hits"
        )
        params = {"search_tsquery": tsq}
    return sa.text(sql).bindparams(search_hits=MAX_HITS, **params).columns(conversation_id=sa.Integer, score=sa.Float)


def _name_hits(text: str) -> sa.Select[tuple[int, float]]:
    pattern = "%" + text[:100].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return (
        sa.select(col(Conversation.id).label("conversation_id"), sa.literal(NAME_SCORE, sa.Float).label("score"))
        .join(Contact, col(Contact.id) == col(Conversation.contact_id))
        .where(
            sa.or_(
                col(Contact.display_name).ilike(pattern, escape="\\"),
                col(Contact.username).ilike(pattern, escape="\\"),
            )
        )
        .limit(MAX_HITS)
    )


def conversation_hits(dialect: str, q: str | None) -> sa.Subquery | None:
    """A subquery ``(conversation_id, score)``, one row per matching conversation (its best
    score); None when ``q`` is empty after cleaning (no search at all)."""
    text = clean_query(q)
    if not text:
        return None
    parts: list[sa.Select[tuple[int, float]] | sa.TextualSelect] = [_name_hits(text)]
    text_hits = _text_hits(dialect, query_terms(text))
    if text_hits is not None:
        parts.append(text_hits)
    # each part in its own subquery: SQLite allows no LIMIT inside a compound SELECT
    both = sa.union_all(*[sa.select(*part.subquery().c) for part in parts])
    every = both.subquery("search_every_hit")
    return (
        sa.select(every.c.conversation_id, sa.func.max(every.c.score).label("score"))
        .group_by(every.c.conversation_id)
        .subquery("search_hit")
    )
