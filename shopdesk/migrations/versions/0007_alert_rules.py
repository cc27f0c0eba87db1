"""Alert rules: an index for finding escalations by time, merchant settings per rule, fired alerts (once per rule, subject and window) that are
also the agents' notifications, each agent's read mark; Shopify inventory items and the
``updated_at`` of the last stock update applied to a level.

Revision ID: 0007
Revises: 0006
"""

from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: Union[str, None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "alert_rule",
        sa.Column("rule", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("params", _JSON, nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("rule"),
    )
    op.create_table(
        "fired_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("window", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("detail", _JSON, nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("rule", "subject", "window", name="uq_fired_alert_key"),
    )
    with op.batch_alter_table("fired_alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fired_alert_conversation_id"), ["conversation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_fired_alert_created_at"), ["created_at"], unique=False)
    op.create_table(
        "notification_read",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("last_read_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.PrimaryKeyConstraint("agent_id"),
    )
    op.create_table(
        "inventory_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("sku", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("tracked", sa.Boolean(), nullable=False),
        sa.Column("source_updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("external_id"),
    )
    with op.batch_alter_table("inventory_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inventory_item_sku"), ["sku"], unique=False)
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index("ix_audit_event_action_created", ["action", "created_at"], unique=False)
    with op.batch_alter_table("inventory_level", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inventory_level", schema=None) as batch_op:
        batch_op.drop_column("source_updated_at")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_event_action_created")
    with op.batch_alter_table("inventory_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inventory_item_sku"))
    op.drop_table("inventory_item")
    op.drop_table("notification_read")
    with op.batch_alter_table("fired_alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fired_alert_created_at"))
        batch_op.drop_index(batch_op.f("ix_fired_alert_conversation_id"))
    op.drop_table("fired_alert")
    op.drop_table("alert_rule")
