"""Inbox search: the conversations whose messages (or contact name) match a query, ranked.

The index (migration 0004) holds ``message.search_text``, the folded and tokenised text of
:func:`shopbase.search_text.index_text`: FTS5 ``message_fts`` on SQLite, a GIN index on the
generated column ``search_vector = to_tsvector('simple', search_text)`` on PostgreSQL (the
same for ``contact``). The query goes through the same folding
(:func:`shopbase.search_text.query_terms`), so accents, case, traditional/simplified Chinese
and CJK word boundaries do not matter, on both databases alike.

A query is terms that must all match (AND); a term is one or more alternatives (OR: the word
as a prefix, its stems); an alternative is a phrase (a CJK run's bigrams, in order). Tokens
contain only letters and digits, and every token is quoted for FTS5 anyway, so user input
is never query syntax (``"``, ``*``, ``NEAR``, ``-``, ``AND``/``OR`` are ignored or searched as
words); for PostgreSQL the tokens become a ``to_tsquery`` text from the same structure.

The index query stops early: the :data:`MAX_HITS` most recent matching messages (and
contacts) are the candidates, read in id order from the index; they are ranked by bm25
(SQLite) or ``ts_rank`` (PostgreSQL) of the best matching message, then by the conversation's
last activity, and only then joined with the access rules and filters. Conversations whose
contact's name or username matches (folded the same way) come first.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

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
    "search_scores",
]

MAX_QUERY_CHARS = 200
#: the most recent matching messages (and contacts) a search ranks; older matches are not listed
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


# The index queries stop early: the MAX_HITS most recent matching messages (contacts), found in
# id order straight from the index, are the candidates; only they are ranked. Their cost does not
# grow with the number of matches, so a word in every tenth message stays as fast as a rare one.
_SQLITE_HITS = (
    "SELECT conversation_id, max(score) AS score FROM ("
    "SELECT conversation.id AS conversation_id, {name_score} AS score "
    "FROM (SELECT rowid FROM contact_fts WHERE contact_fts MATCH :search_match "
    "ORDER BY rowid DESC LIMIT :search_hits) AS named "
    "JOIN conversation ON conversation.contact_id = named.rowid "
    "UNION ALL "
    # FTS5's rank is bm25(), negative: lower is better
    "SELECT message.conversation_id AS conversation_id, -hit.bm25 AS score "
    "FROM (SELECT rowid, rank AS bm25 FROM message_fts WHERE message_fts MATCH :search_match "
    "ORDER BY rowid DESC LIMIT :search_hits) AS hit "
    "JOIN message ON message.id = hit.rowid"
    ") AS search_every_hit GROUP BY conversation_id ORDER BY score DESC LIMIT :search_conversations"
)
# search_vector is a generated column, to_tsvector('simple', search_text), with a GIN index
_POSTGRES_HITS = (
    "SELECT conversation_id, max(score) AS score FROM ("
    "SELECT conversation.id AS conversation_id, {name_score} AS score "
    # the matching contacts are few: read from the GIN index (OFFSET 0 keeps the planner from
    # walking every contact backwards by id instead, 100,000 of them when no name matches)
    "FROM (SELECT id FROM (SELECT id FROM contact WHERE search_vector @@ to_tsquery('simple', :search_tsquery) "
    "OFFSET 0) AS matched ORDER BY id DESC LIMIT :search_hits) AS named "
    "JOIN conversation ON conversation.contact_id = named.id "
    "UNION ALL "
    "SELECT conversation_id, "
    "CAST(ts_rank(search_vector, to_tsquery('simple', :search_tsquery)) AS DOUBLE PRECISION) AS score "
    "FROM (SELECT conversation_id, search_vector FROM message "
    "WHERE search_vector @@ to_tsquery('simple', :search_tsquery) "
    "ORDER BY id DESC LIMIT :search_hits) AS hit"
    ") AS search_every_hit GROUP BY conversation_id ORDER BY score DESC LIMIT :search_conversations"
)
_NO_HITS = "SELECT 0 AS conversation_id, 0.0 AS score WHERE 1 = 0"


def conversation_hits(dialect: str, q: str | None) -> sa.Subquery | None:
    """A subquery ``(conversation_id, score)``, one row per matching conversation (its best
    score, higher is better); None when ``q`` is empty after cleaning (no search at all), no
    rows when it has no letters or digits."""
    text = clean_query(q)
    if not text:
        return None
    terms = query_terms(text)
    params: dict[str, object] = {}
    if not terms:
        sql = _NO_HITS
    elif dialect == "sqlite":
        sql, params = _SQLITE_HITS, {"search_match": fts5_query(terms)}
    else:
        sql, params = _POSTGRES_HITS, {"search_tsquery": tsquery_text(terms)}
    if terms:
        params.update(search_hits=MAX_HITS, search_conversations=2 * MAX_HITS)
    statement = sa.text(sql.format(name_score=repr(NAME_SCORE))).bindparams(**params)
    return statement.columns(conversation_id=sa.Integer, score=sa.Float).subquery("search_hit")


async def search_scores(session: AsyncSession, q: str | None) -> dict[int, float] | None:
    """Run the search once: conversation id -> score (higher is better) of every matching
    conversation (at most ``2 * MAX_HITS``); None when ``q`` is empty (no search)."""
    hits = conversation_hits(str(session.get_bind().dialect.name), q)
    if hits is None:
        return None
    rows = (await session.exec(sa.select(hits.c.conversation_id, hits.c.score))).all()  # type: ignore[call-overload]
    return {int(cid): float(score) for cid, score in rows}
