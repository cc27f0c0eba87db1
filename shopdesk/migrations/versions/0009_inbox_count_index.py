"""A covering index for the inbox's counts (tabs and statuses).

With 100,000 conversations the counts read every row of the status (or the whole table) to
see its owner, assignee and team (about 75 ms per page); an index of ``(status, owner,
assignee_id, team_id)`` answers them from the index alone. On SQLite with planner statistics
(``ANALYZE``), the conversation's are refreshed, or the new index would look best for the list.

Revision ID: 0009
Revises: 0008
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: Union[str, None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index("ix_conversation_status_counts", "conversation", ["status", "owner", "assignee_id", "team_id"],
                    unique=False)
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and bind.execute(
        sa.text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")
    ).first():
        # a database with planner statistics but none for the new index: SQLite would take it
        # for the list too (status=?) and sort every open conversation; refresh them
        op.execute("ANALYZE conversation")


def downgrade() -> None:
    op.drop_index("ix_conversation_status_counts", table_name="conversation")
