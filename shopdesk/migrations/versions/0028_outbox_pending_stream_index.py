"""A partial index of the pending outbox rows by stream (conversation, channel, id).

Two hot questions ask "is there an earlier pending row of this conversation on this channel?":
the claim (a row is a head of its stream) and the INSERT of a reply born claimed. With only
``ix_outbox_conversation_id`` they read every outbox row the conversation ever had, sent ones
included, so they grew with the conversation's length. This index holds only pending rows (a
handful at any time), so the answer costs the same on a conversation's first reply and its
thousandth. The queries compare ``status`` with the literal ``'pending'``: a prepared
statement's generic plan on PostgreSQL can prove the partial index applies only from a literal.

Revision ID: 0028
Revises: 0027
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: Union[str, None] = "0027"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index(
        "ix_outbox_pending_stream",
        "outbox",
        ["conversation_id", "channel", "id"],
        unique=False,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_pending_stream", table_name="outbox")
