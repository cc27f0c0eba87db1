"""A micro-batch's "answered" marks on PostgreSQL in ONE statement (issue 16).

``AnswerGroup.write`` marks every answered inbound message processed (``MARK_ANSWERED``) and
writes every answered conversation's new state (``ANSWER_CONVERSATION_SENT`` for a turn that
replied, ``ANSWER_CONVERSATION`` for a silent one) as executemany UPDATEs: one round trip each,
but one execution per row that PostgreSQL binds, starts and ends (two per answered message).
Here both are one statement for the whole batch, the rows' values as arrays (``unnest``): a
data-modifying CTE marks the messages, the statement itself updates the conversations. Same rows,
same values, same transaction (the caller's); the conversations are taken in id order. A silent
turn passes no time and keeps ``last_message_at`` / ``updated_at`` as they are, as
``ANSWER_CONVERSATION`` does. The conversations' row triggers (the analytics rollup) fire per
row as before. SQLite keeps the executemany statements (no round trips there).

Each ``unnest`` takes its ids through a sub-select (an init plan), so that no plan sees how many
rows there are: with the arrays in sight, the custom plan of a batch of fewer than 10 rows looked
cheaper than the generic one (which guesses 10), and PostgreSQL planned the statement again at
every batch; now it keeps the generic plan after the first five (``tests/test_pg_plans.py``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from inbox.models import Conversation

__all__ = ["ANSWER_BATCH", "answer_batch"]

_TIME = Conversation.__table__.c.last_message_at.type  # type: ignore[attr-defined]

ANSWER_BATCH = sa.text("""
WITH marked AS (
    UPDATE message SET intent = m.intent, processed = true, language = m.language
    FROM unnest((SELECT CAST(:m_ids AS integer[])), CAST(:m_intents AS varchar[]), CAST(:m_languages AS varchar[]))
        AS m(id, intent, language)
    WHERE message.id = m.id
)
UPDATE conversation
SET bot_state = CAST(c.state AS jsonb), language = c.language, last_intent = c.intent,
    last_message_at = coalesce(c.now, conversation.last_message_at),
    updated_at = coalesce(c.now, conversation.updated_at)
FROM unnest((SELECT CAST(:c_ids AS integer[])), CAST(:c_states AS text[]), CAST(:c_languages AS varchar[]),
            CAST(:c_intents AS varchar[]), CAST(:c_nows AS timestamptz[]))
    AS c(id, state, language, intent, now)
WHERE conversation.id = c.id
""").bindparams(
    sa.bindparam("m_ids", type_=postgresql.ARRAY(sa.Integer)),
    sa.bindparam("m_intents", type_=postgresql.ARRAY(sa.String)),
    sa.bindparam("m_languages", type_=postgresql.ARRAY(sa.String)),
    sa.bindparam("c_ids", type_=postgresql.ARRAY(sa.Integer)),
    sa.bindparam("c_states", type_=postgresql.ARRAY(sa.Text)),
    sa.bindparam("c_languages", type_=postgresql.ARRAY(sa.String)),
    sa.bindparam("c_intents", type_=postgresql.ARRAY(sa.String)),
    sa.bindparam("c_nows", type_=postgresql.ARRAY(_TIME)),
)


async def answer_batch(connection: AsyncConnection, marks: list[tuple[int, str, str]],
                       conversations: list[tuple[int, dict[str, Any], str, str, datetime | None]]) -> None:
    """``marks``: (message id, intent, language) of each answered message; ``conversations``:
    (id, bot state, language, last intent, time of the reply or None for a silent turn)."""
    conversations = sorted(conversations, key=lambda c: c[0])  # locks in one order
    await connection.execute(ANSWER_BATCH, {
        "m_ids": [m[0] for m in marks], "m_intents": [m[1] for m in marks], "m_languages": [m[2] for m in marks],
        "c_ids": [c[0] for c in conversations], "c_states": [json.dumps(c[1]) for c in conversations],
        "c_languages": [c[2] for c in conversations], "c_intents": [c[3] for c in conversations],
        "c_nows": [c[4] for c in conversations]})
