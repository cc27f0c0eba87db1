"""Search in every language: indexes over ``message.search_text`` and ``contact.search_text``.

``search_text`` is ``shopbase.search_text.index_text`` of the message text (of the contact's
display name and username): case- and accent-folded words, simplified Chinese, CJK runs as
overlapping bigrams. The application writes it on every insert (``inbox.models``); this
migration fills it for the existing rows in batches.

SQLite: FTS5 external-content tables ``message_fts`` (rebuilt, now over ``search_text``) and
``contact_fts``, with the ``ascii`` tokenizer (it only splits at the spaces Python put
there), kept in step by insert/update/delete triggers. PostgreSQL: a generated column
``search_vector = to_tsvector('simple', search_text)`` (the 'simple' parser also only splits
the tokens) with a GIN index, on both tables; the expression index on ``message.text`` goes.

Changing ``index_text`` later needs a migration that runs :func:`fill_search_text` again.
A batch ("move and copy") ALTER of ``message`` or ``contact`` drops their triggers; recreate
them with :func:`create_sqlite_search`.

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

SEARCHED = {"message": ("text",), "contact": ("display_name", "username")}


def _sqlite_drop(table: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {table}_fts_au",
        f"DROP TRIGGER IF EXISTS {table}_fts_ad",
        f"DROP TRIGGER IF EXISTS {table}_fts_ai",
        f"DROP TABLE IF EXISTS {table}_fts",
    ]


def _sqlite_up(table: str) -> list[str]:
    fts = f"{table}_fts"
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5("
        f"search_text, content='{table}', content_rowid='id', tokenize='ascii')",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_ai AFTER INSERT ON {table} BEGIN "
        f"INSERT INTO {fts}(rowid, search_text) VALUES (new.id, new.search_text); END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_ad AFTER DELETE ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, search_text) VALUES ('delete', old.id, old.search_text); END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_au AFTER UPDATE OF search_text ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, search_text) VALUES ('delete', old.id, old.search_text); "
        f"INSERT INTO {fts}(rowid, search_text) VALUES (new.id, new.search_text); END",
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",
    ]


SQLITE_DROP = _sqlite_drop("message") + _sqlite_drop("contact")
SQLITE_UP = _sqlite_up("message") + _sqlite_up("contact")
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
# PostgreSQL keeps the tsvector itself (a generated column): matching and ranking then read it
# instead of parsing search_text again for every candidate row
POSTGRES_UP = [
    "DROP INDEX IF EXISTS ix_message_text_fts",
    *(
        statement
        for table in ("message", "contact")
        for statement in (
            f"ALTER TABLE {table} ADD COLUMN search_vector tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple', coalesce(search_text, ''))) STORED",
            f"CREATE INDEX IF NOT EXISTS ix_{table}_search_vector ON {table} USING gin (search_vector)",
        )
    ),
]
POSTGRES_DOWN = [
    "DROP INDEX IF EXISTS ix_contact_search_vector",
    "DROP INDEX IF EXISTS ix_message_search_vector",
    "ALTER TABLE contact DROP COLUMN IF EXISTS search_vector",
    "ALTER TABLE message DROP COLUMN IF EXISTS search_vector",
]
POSTGRES_0002 = "CREATE INDEX IF NOT EXISTS ix_message_text_fts ON message USING gin (to_tsvector('simple', text))"


def fill_search_text(connection: sa.Connection, table: str = "message", batch: int = BATCH) -> int:
    """Write ``search_text`` for every row of ``table`` (``message`` or ``contact``), ``batch`` rows
    at a time, in id order; returns how many rows were written."""
    fields = SEARCHED[table]
    select = sa.text(f"SELECT id, {', '.join(fields)} FROM {table} WHERE id > :last ORDER BY id LIMIT :n")
    update = sa.text(f"UPDATE {table} SET search_text = :search_text WHERE id = :id")
    last, done = 0, 0
    while True:
        rows = connection.execute(select, {"last": last, "n": batch}).all()
        if not rows:
            return done
        values = [
            {"id": row[0], "search_text": index_text(" ".join(str(v or "") for v in row[1:]))} for row in rows
        ]
        connection.execute(update, values)
        last, done = rows[-1][0], done + len(rows)


def create_sqlite_search() -> None:
    for statement in SQLITE_UP:
        op.execute(statement)


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_DROP:
            op.execute(statement)
    for table in SEARCHED:
        # a plain ADD COLUMN (no table copy), on both databases
        op.execute(f"ALTER TABLE {table} ADD COLUMN search_text TEXT")
        fill_search_text(bind, table)
    if dialect == "sqlite":
        create_sqlite_search()
    elif dialect == "postgresql":
        for statement in POSTGRES_UP:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_DROP if dialect == "sqlite" else POSTGRES_DOWN if dialect == "postgresql" else []:
        op.execute(statement)
    for table in SEARCHED:
        op.execute(f"ALTER TABLE {table} DROP COLUMN search_text")
    if dialect == "sqlite":
        for statement in SQLITE_0002:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute(POSTGRES_0002)
