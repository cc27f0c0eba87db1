"""Customer profiles (issue 14, CRM): one customer across channels (identities: contacts and
order-store customers), agents' notes about the customer, merges that can be undone.
Contacts verified before this revision get their profiles here (one per verified customer).

Revision ID: 0013
Revises: 0012
"""

from datetime import UTC, datetime
from typing import Any, Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: Union[str, None] = "0012"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "customer_profile",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("display_name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("tags", _JSON, nullable=False),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.Column("erased_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["merged_into_id"], ["customer_profile.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("customer_profile", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_profile_merged_into_id"), ["merged_into_id"], unique=False)
    op.create_table(
        "customer_identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("via", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint("(contact_id IS NULL) != (customer_id IS NULL)", name="ck_customer_identity_one"),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["profile_id"], ["customer_profile.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contact_id"),
        sa.UniqueConstraint("customer_id"),
    )
    with op.batch_alter_table("customer_identity", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_identity_profile_id"), ["profile_id"], unique=False)
    op.create_table(
        "customer_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.ForeignKeyConstraint(["profile_id"], ["customer_profile.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("customer_note", schema=None) as batch_op:
        batch_op.create_index("ix_customer_note_profile_created", ["profile_id", "created_at"], unique=False)
    op.create_table(
        "customer_merge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("moved", _JSON, nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("undone_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("undone_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.ForeignKeyConstraint(["source_id"], ["customer_profile.id"]),
        sa.ForeignKeyConstraint(["target_id"], ["customer_profile.id"]),
        sa.ForeignKeyConstraint(["undone_by_id"], ["agent.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("customer_merge", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_merge_source_id"), ["source_id"], unique=False)
        batch_op.create_index("ix_customer_merge_target", ["target_id", "created_at"], unique=False)
    backfill(op.get_bind())


def backfill(connection: Any) -> int:
    """One profile per order-store customer that verified contacts point at, holding the
    customer and those contacts (what ``contact_link`` now does for every new verification)."""
    now = datetime.now(UTC)
    profile = sa.table(
        "customer_profile", sa.column("id", sa.Integer()), sa.column("display_name", sa.String()),
        sa.column("tags", _JSON), sa.column("created_at", sqlmodel.sql.sqltypes.UTCDateTime()),
        sa.column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime()),
    )
    identity = sa.table(
        "customer_identity", sa.column("profile_id", sa.Integer()), sa.column("contact_id", sa.Integer()),
        sa.column("customer_id", sa.Integer()), sa.column("via", sa.String()),
        sa.column("created_at", sqlmodel.sql.sqltypes.UTCDateTime()),
    )
    rows = connection.execute(sa.text(
        "SELECT c.customer_id, c.id, cu.first_name, cu.last_name FROM contact c "
        "JOIN customer cu ON cu.id = c.customer_id "
        "WHERE c.verified_at IS NOT NULL ORDER BY c.customer_id, c.id"
    )).all()
    groups: dict[int, list[Any]] = {}
    for row in rows:
        groups.setdefault(row[0], []).append(row)
    for customer_id, members in groups.items():
        name = " ".join(p for p in (members[0][2], members[0][3]) if p)
        profile_id = connection.execute(profile.insert().values(
            display_name=name[:255], tags=[], created_at=now, updated_at=now).returning(profile.c.id)).scalar_one()
        connection.execute(identity.insert(), [
            {"profile_id": profile_id, "contact_id": None, "customer_id": customer_id, "via": "verified",
             "created_at": now},
            *({"profile_id": profile_id, "contact_id": m[1], "customer_id": None, "via": "verified",
               "created_at": now} for m in members),
        ])
    return len(groups)


def downgrade() -> None:
    with op.batch_alter_table("customer_merge", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_merge_target")
        batch_op.drop_index(batch_op.f("ix_customer_merge_source_id"))
    op.drop_table("customer_merge")
    with op.batch_alter_table("customer_note", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_note_profile_created")
    op.drop_table("customer_note")
    with op.batch_alter_table("customer_identity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_identity_profile_id"))
    op.drop_table("customer_identity")
    with op.batch_alter_table("customer_profile", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_profile_merged_into_id"))
    op.drop_table("customer_profile")
