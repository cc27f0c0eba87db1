"""Proactive shipment updates and CSAT: the ``shipment_update`` outbox, the customer's
permission for updates on the contact, and ``csat_survey``.

Revision ID: 0006
Revises: 0005
"""

from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: Union[str, None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "shipment_update",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("processed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["shop_order.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipment.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shipment_id", "status", name="uq_shipment_update_status"),
    )
    op.create_index("ix_shipment_update_due", "shipment_update", ["processed_at", "due_at"], unique=False)
    op.create_index(op.f("ix_shipment_update_order_id"), "shipment_update", ["order_id"], unique=False)

    # plain ADD COLUMN (no batch "move and copy" on SQLite, which would drop contact's search triggers)
    op.add_column("contact", sa.Column("updates_allowed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.add_column("contact", sa.Column("updates_stopped_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))

    op.create_table(
        "csat_survey",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("intent", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("resolved_by", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("comment", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("asked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("rated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("commented_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conversation_id"),
    )
    op.create_index("ix_csat_contact_rated", "csat_survey", ["contact_id", "rated_at"], unique=False)
    op.create_index(op.f("ix_csat_survey_agent_id"), "csat_survey", ["agent_id"], unique=False)
    op.create_index(op.f("ix_csat_survey_customer_id"), "csat_survey", ["customer_id"], unique=False)
    op.create_index(op.f("ix_csat_survey_intent"), "csat_survey", ["intent"], unique=False)


def downgrade() -> None:
    op.drop_table("csat_survey")
    # plain DROP COLUMN (SQLite >= 3.35): a batch copy of contact would fail on the foreign keys to it
    op.drop_column("contact", "updates_stopped_at")
    op.drop_column("contact", "updates_allowed_at")
    op.drop_index("ix_shipment_update_due", table_name="shipment_update")
    op.drop_table("shipment_update")
