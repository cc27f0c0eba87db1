"""Flood waits (429 retry_after) per recipient and per channel in the database, so that replies
created after a restart, or by another process, wait them out too.

Revision ID: 0023
Revises: 0020
"""

from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0023"
down_revision: Union[str, None] = "0020"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "delivery_hold",
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("contact_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("not_before", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "contact_id"),
    )
    with op.batch_alter_table("delivery_hold", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_hold_not_before"), ["not_before"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delivery_hold", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_hold_not_before"))
    op.drop_table("delivery_hold")
