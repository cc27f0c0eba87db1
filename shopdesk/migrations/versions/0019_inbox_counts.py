"""The inbox's counts kept on write (issues 11 and 14: list ≤ 50 ms, view switch ≤ 100 ms at
100,000 conversations).

``conversation_count`` gets a row (status, owner, assignee_id, team_id, +1) whenever a
conversation enters that group (insert, or an update of one of those columns) and (…, -1)
when it leaves it (update, delete), written by triggers in the same transaction; the tab and
status counts are the sums per group (``inbox.queries.counts``), a read of a few dozen rows
instead of a pass over every conversation. On PostgreSQL rows are only ever added (and now
and then folded into one per group by the reader), so concurrent writers never wait on, or
deadlock over, a counter row; SQLite has one writer at a time, and its triggers keep one row
per group, updated in place. The table starts with the current counts.

``ix_conversation_status_counts (status, owner, assignee_id, team_id)`` served only those
counts and is a prefix of ``ix_conversation_triage``: dropped.

PostgreSQL: ``ix_conversation_triage`` gets ``INCLUDE (id)``, so that a triage page's ids (the
queue order over a view's conversations) are read from the index alone (an index-only scan
instead of visiting 40,000 table rows); SQLite's indexes hold the rowid already.

Revision ID: 0019
Revises: 0017
"""

from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0019"
down_revision: Union[str, None] = "0017"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_COLUMNS = "status, owner, assignee_id, team_id"
_TRIAGE = ["status", "owner", "assignee_id", "team_id", "priority", "sla_due_at", "last_message_at"]
_CHANGED = ("OLD.status IS DISTINCT FROM NEW.status OR OLD.owner IS DISTINCT FROM NEW.owner "
            "OR OLD.assignee_id IS DISTINCT FROM NEW.assignee_id OR OLD.team_id IS DISTINCT FROM NEW.team_id")


def _row(of: str, n: int) -> str:
    return f"({of}.status, {of}.owner, {of}.assignee_id, {of}.team_id, {n})"


def _sqlite_add(of: str, n: int) -> str:
    """Add ``n`` to the one row of ``of``'s group (made first when missing)."""
    same = (f"status = {of}.status AND owner = {of}.owner AND assignee_id IS {of}.assignee_id "
            f"AND team_id IS {of}.team_id")
    return (f"INSERT INTO conversation_count ({_COLUMNS}, n) SELECT {of}.status, {of}.owner, {of}.assignee_id, "
            f"{of}.team_id, 0 WHERE NOT EXISTS (SELECT 1 FROM conversation_count WHERE {same}); "
            f"UPDATE conversation_count SET n = n + ({n}) WHERE {same};")


def upgrade() -> None:
    op.create_table(
        "conversation_count",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    insert = f"INSERT INTO conversation_count ({_COLUMNS}, n) VALUES"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION conversation_count_track() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP IN ('UPDATE', 'DELETE') THEN
                    {insert} {_row("OLD", -1)};
                END IF;
                IF TG_OP IN ('UPDATE', 'INSERT') THEN
                    {insert} {_row("NEW", 1)};
                END IF;
                RETURN NULL;
            END
            $$""")
        op.execute("CREATE TRIGGER conversation_count_insert_delete AFTER INSERT OR DELETE ON conversation "
                   "FOR EACH ROW EXECUTE FUNCTION conversation_count_track()")
        op.execute(f"CREATE TRIGGER conversation_count_update AFTER UPDATE OF {_COLUMNS} ON conversation "
                   f"FOR EACH ROW WHEN ({_CHANGED}) EXECUTE FUNCTION conversation_count_track()")
    else:
        # SQLite has one writer at a time: each group keeps exactly one row, updated in place
        changed = _CHANGED.replace("IS DISTINCT FROM", "IS NOT")
        op.execute(f"CREATE TRIGGER conversation_count_insert AFTER INSERT ON conversation "
                   f"BEGIN {_sqlite_add('NEW', 1)} END")
        op.execute(f"CREATE TRIGGER conversation_count_delete AFTER DELETE ON conversation "
                   f"BEGIN {_sqlite_add('OLD', -1)} END")
        op.execute(f"CREATE TRIGGER conversation_count_update AFTER UPDATE OF {_COLUMNS} ON conversation "
                   f"WHEN {changed} BEGIN {_sqlite_add('OLD', -1)} {_sqlite_add('NEW', 1)} END")
    op.execute(f"INSERT INTO conversation_count ({_COLUMNS}, n) "
               f"SELECT {_COLUMNS}, count(*) FROM conversation GROUP BY {_COLUMNS}")
    op.create_index("ix_conversation_count_group", "conversation_count", ["status", "owner", "assignee_id", "team_id"],
                    unique=False)
    op.drop_index("ix_conversation_status_counts", table_name="conversation")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_conversation_triage", table_name="conversation")
        op.create_index("ix_conversation_triage", "conversation", _TRIAGE, unique=False, postgresql_include=["id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_conversation_triage", table_name="conversation")
        op.create_index("ix_conversation_triage", "conversation", _TRIAGE, unique=False)
    op.create_index("ix_conversation_status_counts", "conversation", ["status", "owner", "assignee_id", "team_id"],
                    unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER conversation_count_update ON conversation")
        op.execute("DROP TRIGGER conversation_count_insert_delete ON conversation")
        op.execute("DROP FUNCTION conversation_count_track()")
    else:
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER conversation_count_{name}")
    op.drop_index("ix_conversation_count_group", table_name="conversation_count")
    op.drop_table("conversation_count")
