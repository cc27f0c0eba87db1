"""Triage (issue 14): agents' saved views, notification preferences, and the triage index.

``ix_conversation_triage (status, owner, assignee_id, team_id, priority, sla_due_at,
last_message_at)`` lets every triage view's count ("Needs a human", "Bot is handling", "Mine",
"Unassigned", "Waiting on customer", "Snoozed", "Resolved", under the access rule) and the ids
of a page in the triage order (priority, SLA due time, waiting time) be read from the index alone.

Revision ID: 0011
Revises: 0010
"""

from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: Union[str, None] = "0010"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "saved_view",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("query", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_id", "name", name="uq_saved_view_agent_name"),
    )
    with op.batch_alter_table("saved_view", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_saved_view_agent_id"), ["agent_id"], unique=False)
    op.create_table(
        "agent_preference",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("notify_sound", sa.Boolean(), nullable=False),
        sa.Column("notify_desktop", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.PrimaryKeyConstraint("agent_id"),
    )
    op.create_index("ix_conversation_triage", "conversation",
                    ["status", "owner", "assignee_id", "team_id", "priority", "sla_due_at", "last_message_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_conversation_triage", table_name="conversation")
    op.drop_table("agent_preference")
    with op.batch_alter_table("saved_view", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_saved_view_agent_id"))
    op.drop_table("saved_view")
