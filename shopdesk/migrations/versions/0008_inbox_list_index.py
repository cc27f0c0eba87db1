"""An index for the inbox's list of every conversation, newest activity first.

With 100,000 conversations the "all" list sorted the whole table for each page (about 250 ms);
reading ``(last_message_at, id)`` in order makes it one short index scan.

Revision ID: 0008
Revises: 0007
"""

from typing import Sequence, Union

from alembic import op

revision: str = "0008"
down_revision: Union[str, None] = "0007"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index("ix_conversation_last_activity", "conversation", ["last_message_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_conversation_last_activity", table_name="conversation")
