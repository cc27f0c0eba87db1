"""Alembic environment: runs on the connection that ``shopdesk.db.migrate`` hands over."""

from alembic import context
from sqlmodel import SQLModel

from shopdesk.db import import_models

import_models()
target_metadata = SQLModel.metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `shopdesk db upgrade`, which supplies the connection")

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
