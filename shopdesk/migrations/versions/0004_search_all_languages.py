"""Search in every language: an index over ``message.search_text``, the folded, tokenised text.

``search_text`` is ``shopbase.search_text.index_text(text)``: case- and accent-folded words,
simplified Chinese, CJK runs as overlapping bigrams. The application writes it on every
insert (``inbox.models``); this migration fills it for the existing messages in batches.

SQLite: the FTS5 external-content table ``message_fts`` is rebuilt over ``search_text`` with
the ``ascii`` tokenizer (it only splits at the spaces Python put there) and kept in step by
insert/update/delete triggers, as before. PostgreSQL: a GIN index on
``to_tsvector('simple', search_text)`` replaces the one on ``text`` (queries must use that
exact expression, with the literal 'simple', to use it).

Changing ``index_text`` later needs a migration that runs :func:`fill_search_text` again.
A batch ("move and copy") ALTER of ``message`` drops its triggers; recreate them with
:func:`create_sqlite_search`.

Revision ID: 0004
Revises: 0003
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from shopbase.search_text import index_text

revision: str = "0004"
down_revision: Union[str, None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BATCH = 2000

SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS message_fts_au",
    "DROP TRIGGER IF EXISTS message_fts_ad",
    "DROP TRIGGER IF EXISTS message_fts_ai",
    "DROP TABLE IF EXISTS message_fts",
]
SQLITE_UP = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS message_fts USING fts5("
    "search_text, content='message', content_rowid='id', tokenize='ascii')",
    "CREATE TRIGGER IF NOT EXISTS message_fts_ai AFTER INSERT ON message BEGIN "
    "INSERT INTO message_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS message_fts_ad AFTER DELETE ON message BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS message_fts_au AFTER UPDATE OF search_text ON message BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO message_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "INSERT INTO message_fts(message_fts) VALUES ('rebuild')",
]
# what 0002 built, for the downgrade
SQLITE_0002 = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS message_fts USING fts5("
    "text, content='message', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS message_fts_ai AFTER INSERT ON message BEGIN "
    "INSERT INTO message_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER IF NOT EXISTS message_fts_ad AFTER DELETE ON message BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER IF NOT EXISTS message_fts_au AFTER UPDATE OF text ON message BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO message_fts(rowid, text) VALUES (new.id, new.text); END",
    "INSERT INTO message_fts(message_fts) VALUES ('rebuild')",
]
POSTGRES_INDEX = "ix_message_search_text"
POSTGRES_UP = [
    "DROP INDEX IF EXISTS ix_message_text_fts",
    f"CREATE INDEX IF NOT EXISTS {POSTGRES_INDEX} ON message USING gin (to_tsvector('simple', search_text))",
]
POSTGRES_DOWN = [
    f"DROP INDEX IF EXISTS {POSTGRES_INDEX}",
    "CREATE INDEX IF NOT EXISTS ix_message_text_fts ON message USING gin (to_tsvector('simple', text))",
]


def fill_search_text(connection: sa.Connection, batch: int = BATCH) -> int:
    """Write ``search_text`` for every message, ``batch`` rows at a time, in id order; returns
    how many rows were written."""
    select = sa.text("SELECT id, text FROM message WHERE id > :last ORDER BY id LIMIT :n")
    update = sa.text("UPDATE message SET search_text = :search_text WHERE id = :id")
    last, done = 0, 0
    while True:
        rows = connection.execute(select, {"last": last, "n": batch}).all()
        if not rows:
            return done
        connection.execute(update, [{"id": row.id, "search_text": index_text(row.text)} for row in rows])
        last, done = rows[-1].id, done + len(rows)


def create_sqlite_search() -> None:
    for statement in SQLITE_UP:
        op.execute(statement)


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_DROP:
            op.execute(statement)
    # a plain ADD COLUMN (no table copy), on both databases
    op.execute("ALTER TABLE message ADD COLUMN search_text TEXT")
    fill_search_text(bind)
    if dialect == "sqlite":
        create_sqlite_search()
    elif dialect == "postgresql":
        for statement in POSTGRES_UP:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_DROP:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {POSTGRES_INDEX}")
    op.execute("ALTER TABLE message DROP COLUMN search_text")
    if dialect == "sqlite":
        for statement in SQLITE_0002:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute(POSTGRES_DOWN[1])
