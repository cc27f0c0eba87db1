"""Languages in the agents' UI: a canned response has a body per language, an agent has a UI
language, a message keeps the language the bot detected in it.

Existing canned bodies become the body of the shop's default language (``SHOPDESK_DEFAULT_LANGUAGE``,
"en" when unset or not one of the six); the downgrade keeps the default language's body (or any one).

Revision ID: 0005
Revises: 0004
"""

import json
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: Union[str, None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_LANGUAGES = ("en", "es", "ru", "vi", "zh-Hans", "zh-Hant")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _default_language() -> str:
    try:
        from shopdesk.settings import load_settings

        language = load_settings().default_language
    except Exception:  # settings that cannot be read here are reported when the app starts
        language = "en"
    return language if language in _LANGUAGES else "en"


def upgrade() -> None:
    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
    with op.batch_alter_table("canned_response", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bodies", _JSON, nullable=True))

    default = _default_language()
    canned = sa.table("canned_response", sa.column("id", sa.Integer()), sa.column("body", sa.Text()),
                      sa.column("bodies", _JSON))
    bind = op.get_bind()
    for row_id, body in bind.execute(sa.select(canned.c.id, canned.c.body)).all():
        bodies = {default: body} if body else {}
        bind.execute(canned.update().where(canned.c.id == row_id).values(bodies=bodies))
    bind.execute(canned.update().where(canned.c.bodies.is_(None)).values(bodies={}))

    with op.batch_alter_table("canned_response", schema=None) as batch_op:
        batch_op.alter_column("bodies", existing_type=_JSON, nullable=False)
        batch_op.drop_column("body")


def downgrade() -> None:
    with op.batch_alter_table("canned_response", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    default = _default_language()
    canned = sa.table("canned_response", sa.column("id", sa.Integer()), sa.column("body", sa.Text()),
                      sa.column("bodies", _JSON))
    bind = op.get_bind()
    for row_id, bodies in bind.execute(sa.select(canned.c.id, canned.c.bodies)).all():
        if isinstance(bodies, str):
            bodies = json.loads(bodies)
        bodies = bodies or {}
        body = bodies.get(default) or next((b for b in bodies.values() if b), "")
        bind.execute(canned.update().where(canned.c.id == row_id).values(body=body))
    with op.batch_alter_table("canned_response", schema=None) as batch_op:
        batch_op.alter_column("body", existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=False)
        batch_op.drop_column("bodies")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("language")
    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.drop_column("language")
