"""Indexes for the analytics page (issue 15).

Every conversation KPI reads the conversations opened in a period: ``(created_at, channel,
last_intent, first_response_at, resolved_at, assignee_id)`` makes that one index range scan that
never visits the table (covering on SQLite, index-only on PostgreSQL). Satisfaction reads ratings
given in a period (``rated_at``), and the late-shipment chart shipments due in it (``eta``).

Revision ID: 0014
Revises: 0013
"""

from typing import Sequence, Union

from alembic import op

revision: str = "0014"
down_revision: Union[str, None] = "0013"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index("ix_conversation_created_analytics", "conversation",
                    ["created_at", "channel", "last_intent", "first_response_at", "resolved_at", "assignee_id"],
                    unique=False)
    op.create_index("ix_csat_survey_rated_at", "csat_survey", ["rated_at"], unique=False)
    op.create_index("ix_shipment_eta", "shipment", ["eta"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_shipment_eta", table_name="shipment")
    op.drop_index("ix_csat_survey_rated_at", table_name="csat_survey")
    op.drop_index("ix_conversation_created_analytics", table_name="conversation")
