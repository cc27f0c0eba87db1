"""Developer tools (not part of the product surface): regenerate the initial migration.

While nothing has shipped, the schema lives in one initial revision generated from the
models: ``python -m shopdesk.devtools regen-initial``. Once a release is out, add new
revisions with alembic instead and never rewrite old ones.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from sqlalchemy.engine import Connection

from shopdesk.db import MIGRATIONS_DIR, _alembic_config, create_engine


async def regen_initial() -> Path:
    from alembic import command

    versions = MIGRATIONS_DIR / "versions"
    for old in versions.glob("0001_*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp}/empty.db")

        def _gen(connection: Connection) -> None:
            cfg = _alembic_config(connection)
            command.revision(cfg, message="initial", autogenerate=True, rev_id="0001")

        async with engine.begin() as conn:
            await conn.run_sync(_gen)
        await engine.dispose()
    (generated,) = versions.glob("0001_*.py")
    target = versions / "0001_initial.py"
    generated.rename(target)
    source = target.read_text().replace("astext_type=Text()", "astext_type=sa.Text()")
    target.write_text(source)
    # a portable schema: batch_alter ops are only for SQLite ALTERs, not for create_table
    return target


if __name__ == "__main__":
    if sys.argv[1:] != ["regen-initial"]:
        sys.exit("usage: python -m shopdesk.devtools regen-initial")
    print(asyncio.run(regen_initial()))
