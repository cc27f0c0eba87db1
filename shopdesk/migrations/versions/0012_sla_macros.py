"""SLA clocks, hand-off context, macros and return overrides (issue 14): the conversation's
running SLA clock (``sla_kind``, ``sla_breached_at``, ``sla_paused_seconds`` beside the existing
``sla_due_at``, indexed for the breach job), the bot's structured ``handoff`` context, the
agent's ``can_override_returns`` permission, and the ``macro`` table.

Revision ID: 0012
Revises: 0011
"""

from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision: str = "0012"
down_revision: Union[str, None] = "0011"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # plain ADD COLUMN (no batch copy on SQLite: the tables have triggers and foreign keys to them)
    op.add_column("conversation", sa.Column("sla_kind", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))
    op.add_column("conversation", sa.Column("sla_breached_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.add_column("conversation", sa.Column("sla_paused_seconds", sa.Integer(), nullable=True))
    op.add_column("conversation", sa.Column("handoff", _json(), nullable=True))
    op.create_index("ix_conversation_sla_due", "conversation", ["sla_due_at"], unique=False)
    op.add_column("agent", sa.Column("can_override_returns", sa.Boolean(), nullable=False,
                                     server_default=sa.false()))
    op.create_table(
        "macro",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("shortcut", sqlmodel.sql.sqltypes.AutoString(length=1), nullable=True),
        sa.Column("canned_id", sa.Integer(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("priority", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("add_labels", _json(), nullable=False),
        sa.Column("assign", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("snooze_hours", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["canned_id"], ["canned_response.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("macro")
    op.drop_column("agent", "can_override_returns")
    op.drop_index("ix_conversation_sla_due", table_name="conversation")
    op.drop_column("conversation", "handoff")
    op.drop_column("conversation", "sla_paused_seconds")
    op.drop_column("conversation", "sla_breached_at")
    op.drop_column("conversation", "sla_kind")
