"""Database engine, sessions and migrations for SQLite (default) and PostgreSQL."""

from __future__ import annotations

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


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (alembic upgrade), inside one connection."""
    from alembic import command

    def _run(connection: Connection) -> None:
        command.upgrade(_alembic_config(connection), revision)

    async with engine.begin() as conn:
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
