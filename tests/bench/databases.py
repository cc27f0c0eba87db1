"""Fresh migrated databases for each server under test: copies of a migrated SQLite file, and
databases cloned from a migrated template on a throwaway PostgreSQL cluster
(``tests/pg_cluster.py``, the same helper the test suite uses)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from tests.pg_cluster import PgServer, pg_bindir, start_cluster, stop_cluster

__all__ = ["Databases"]


async def _migrate(url: str) -> None:
    from shopdesk.db import create_engine, migrate

    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


async def _pg_admin(server: PgServer, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=server.host, port=server.port, user=server.user, database="postgres",
                                 timeout=30)
    try:
        for sql in statements:
            await conn.execute(sql, timeout=300)
    finally:
        await conn.close()


class Databases:
    """``url(kind, name)`` gives a new migrated database of ``kind`` ("sqlite" or "postgresql")."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._sqlite_template: Path | None = None
        self.pg: PgServer | None = None
        self.pg_error: str | None = None
        self._pg_template = False
        self._lock = asyncio.Lock()  # servers are prepared concurrently; templates are made once

    async def _sqlite(self, name: str) -> str:
        if self._sqlite_template is None:
            template = self.workdir / "template.db"
            await _migrate(f"sqlite+aiosqlite:///{template}")
            self._sqlite_template = template
        path = self.workdir / f"{name}.db"
        shutil.copyfile(self._sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"

    async def start_pg(self) -> bool:
        """Start the cluster once; False (with ``pg_error`` set) when it cannot run here."""
        if self.pg is not None:
            return True
        if self.pg_error is not None:
            return False
        bindir = pg_bindir()
        if bindir is None:
            self.pg_error = "PostgreSQL binaries (initdb, pg_ctl) not found"
            return False
        try:
            self.pg = start_cluster(bindir, max_connections=300)
        except Exception as exc:  # CalledProcessError, TimeoutExpired, OSError
            self.pg_error = f"cannot start PostgreSQL: {exc}"
            return False
        return True

    async def _postgresql(self, name: str) -> str:
        if not await self.start_pg():
            raise RuntimeError(self.pg_error)
        assert self.pg is not None
        if not self._pg_template:
            await _pg_admin(self.pg, "CREATE DATABASE bench_tpl")
            await _migrate(self.pg.url("bench_tpl"))
            self._pg_template = True
        await _pg_admin(self.pg, f'CREATE DATABASE "{name}" TEMPLATE bench_tpl')
        return self.pg.url(name)

    async def url(self, kind: str, name: str) -> str:
        async with self._lock:  # one template, and PostgreSQL copies a template for one CREATE at a time
            return await (self._sqlite(name) if kind == "sqlite" else self._postgresql(name))

    def close(self) -> None:
        if self.pg is not None:
            stop_cluster(self.pg)
            self.pg = None
