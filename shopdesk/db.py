"""Database engine, sessions and migrations for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shopbase.sessions import session_maker
from shopdesk.pgpool import ping_when_idle
from shopdesk.sqlite_inline import inline_creator

__all__ = ["create_engine", "session_maker", "migrate", "ping", "MIGRATIONS_DIR", "import_models"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def import_models() -> None:
    """Import every module that defines tables, so ``SQLModel.metadata`` is complete."""
    import inbox.models  # noqa: F401
    import ordersvc.models  # noqa: F401
    import shopbase.dedupe  # noqa: F401


#: how long a statement waits for another process's write lock on the SQLite file (the CLI, a backup)
SQLITE_BUSY_SECONDS = 10.0


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=10000"):
        cur.execute("PRAGMA " + pragma)
    cur.close()


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout on every connection.

    SQL parameters (customer emails, addresses, message text) never appear in error messages
    or SQL logging (``hide_parameters``): a logged database error must not leak them.
    """
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        db_path = url.split("///", 1)[-1]
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        if db_path and db_path != ":memory:":
            # one connection, statements run on the loop's thread (see shopdesk.sqlite_inline)
            kwargs.setdefault("pool_size", 1)
            kwargs.setdefault("max_overflow", 0)
            kwargs.setdefault("pool_timeout", 60)
            kwargs.setdefault("async_creator", inline_creator(db_path, timeout=SQLITE_BUSY_SECONDS))
            engine = create_async_engine(url, **kwargs)
        else:
            engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    if "pool_pre_ping" in kwargs:
        return create_async_engine(url, **kwargs)
    engine = create_async_engine(url, **kwargs)
    ping_when_idle(engine)  # not every checkout: shopdesk.pgpool
    return engine


#: the advisory lock taken while a process migrates ("migrate!" as a number; not the periodic
#: jobs' LEADER_LOCK_KEY in shopdesk.cluster)
MIGRATION_LOCK_KEY = int.from_bytes(b"migrate!", "big") & 0x7FFFFFFFFFFFFFFF


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


_REVISION = re.compile(r"^revision(?:\s*:[^=]*)?\s*=\s*['\"]([^'\"]+)['\"]\s*$", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision(?:\s*:[^=]*)?\s*=\s*(None|['\"][^'\"]+['\"])\s*$", re.MULTILINE)


def _plain_head() -> str | None:
    """The one head of a plain chain of migrations, read from the files' ``revision`` and
    ``down_revision`` lines without importing alembic; None whenever anything is not plain (a
    file without exactly one of each, a merge or branch, two heads): then alembic decides."""
    parents: dict[str, str | None] = {}
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        if path.name.startswith("__"):
            continue
        source = path.read_text(encoding="utf-8")
        revisions, downs = _REVISION.findall(source), _DOWN_REVISION.findall(source)
        if len(revisions) != 1 or len(downs) != 1 or revisions[0] in parents:
            return None
        parents[revisions[0]] = None if downs[0] == "None" else downs[0][1:-1]
    heads = set(parents) - {p for p in parents.values() if p is not None}
    roots = [r for r, p in parents.items() if p is None]
    if len(heads) != 1 or len(roots) != 1 or any(p is not None and p not in parents for p in parents.values()):
        return None
    return heads.pop()


async def _at_head(engine: AsyncEngine) -> bool:
    """True when the database is already at the one head of a plain chain (see :func:`_plain_head`)."""
    head = _plain_head()
    if head is None:
        return False
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    except Exception:  # no version table yet (a new database): alembic creates everything
        return False
    return list(rows) == [head]


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (alembic upgrade), inside one connection. A database
    already at the head of a plain chain of migrations (every restart without a new one) is
    left alone without importing alembic: alembic, mako and pygments would stay resident in the
    server for nothing (~11 MB)."""
    if revision == "head" and await _at_head(engine):
        return
    from alembic import command

    def _run(connection: Connection) -> None:
        command.upgrade(_alembic_config(connection), revision)

    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # processes started together (systemd starting N units, a restart after an upgrade)
            # migrate one at a time: the others wait here, then find the schema at its head and
            # do nothing; without it two alembic runs create the same tables at once (in
            # tests/test_migrate_together.py such a start never finished). Held until this
            # transaction ends.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        await conn.run_sync(_run)


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def _get(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(_get)


async def ping(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
