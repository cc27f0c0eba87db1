"""The source's own id of a tracking event (a Shopify fulfillment event id), unique per
shipment, so a replayed carrier event is recognised by its id.

Revision ID: 0010
Revises: 0009
"""

from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: Union[str, None] = "0009"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("tracking_event",
                  sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    op.create_index("uq_tracking_event_external", "tracking_event", ["shipment_id", "external_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_tracking_event_external", table_name="tracking_event")
    op.drop_column("tracking_event", "external_id")
