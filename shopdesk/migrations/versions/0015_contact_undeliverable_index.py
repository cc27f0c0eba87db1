"""A partial index of undeliverable contacts, for /metrics.

``shopdesk_contacts_undeliverable`` is counted per channel at every Prometheus scrape; the
index holds only the (few) undeliverable contacts, so the count never reads the contact table.

Revision ID: 0015
Revises: 0014
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: Union[str, None] = "0014"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index(
        "ix_contact_undeliverable",
        "contact",
        ["channel"],
        unique=False,
        sqlite_where=sa.text("undeliverable_at IS NOT NULL"),
        postgresql_where=sa.text("undeliverable_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_contact_undeliverable", table_name="contact")
