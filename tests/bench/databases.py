"""Fresh migrated databases for each server under test: copies of a migrated SQLite file, and
databases cloned from a migrated template on a throwaway PostgreSQL cluster
(``tests/pg_cluster.py``, the same helper the test suite uses)."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
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


async def _analyze(url: str) -> None:
    """Fresh planner statistics (a restored seed has new indexes after its migration)."""
    from sqlalchemy import text

    from shopdesk.db import create_engine

    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
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

    # ------------------------------------------------------------------ seeded databases, kept

    @staticmethod
    def _seed_key(kind: str, conversations: int, messages: int) -> str:
        """A kept seed's name: the seed generator's own source (tests/bench/seed.py and the
        agents of pages.py) and the size; the schema is brought to head after a restore."""
        from tests.bench.pages import AGENTS

        digest = hashlib.sha256((Path(__file__).parent / "seed.py").read_bytes() + str(AGENTS).encode()).hexdigest()[:12]
        return f"inbox_{kind}_{conversations}_{messages}_{digest}" + (".db" if kind == "sqlite" else ".dump")

    async def restore_seeded(self, kind: str, name: str, cache: Path | None, conversations: int,
                             messages: int) -> str | None:
        """The URL of database ``name`` restored from a kept seed in ``cache`` and migrated to head
        (then ANALYZEd), or None when there is none (or it cannot be used: seed afresh)."""
        if cache is None or not (kept := cache / self._seed_key(kind, conversations, messages)).exists():
            return None
        try:
            if kind == "sqlite":
                path = self.workdir / f"{name}.db"
                await asyncio.to_thread(shutil.copyfile, kept, path)
                url = f"sqlite+aiosqlite:///{path}"
            else:
                if not await self.start_pg():
                    raise RuntimeError(self.pg_error)
                assert self.pg is not None and self.pg.bindir is not None
                await _pg_admin(self.pg, f'CREATE DATABASE "{name}"')
                await asyncio.to_thread(subprocess.run, [
                    str(self.pg.bindir / "pg_restore"), "-h", self.pg.host, "-p", str(self.pg.port), "-U", self.pg.user,
                    "-d", name, "-j", "2", "--no-owner", str(kept)], check=True, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE, timeout=1800)
                url = self.pg.url(name)
            await _migrate(url)
            await _analyze(url)
            return url
        except Exception:
            if kind == "postgresql" and self.pg is not None:
                await _pg_admin(self.pg, f'DROP DATABASE IF EXISTS "{name}"')
            return None

    async def save_seeded(self, kind: str, name: str, cache: Path | None, conversations: int, messages: int) -> None:
        """Keep the freshly seeded database ``name`` in ``cache`` (a file copy; pg_dump)."""
        if cache is None:
            return
        cache.mkdir(parents=True, exist_ok=True)
        kept = cache / self._seed_key(kind, conversations, messages)
        partial = kept.with_suffix(kept.suffix + ".partial")
        if kind == "sqlite":
            await asyncio.to_thread(shutil.copyfile, self.workdir / f"{name}.db", partial)
        else:
            assert self.pg is not None and self.pg.bindir is not None
            await asyncio.to_thread(subprocess.run, [
                str(self.pg.bindir / "pg_dump"), "-h", self.pg.host, "-p", str(self.pg.port), "-U", self.pg.user,
                "-Fc", "-Z", "1", "-f", str(partial), name], check=True, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, timeout=1800)
        partial.replace(kept)

    def close(self) -> None:
        if self.pg is not None:
            stop_cluster(self.pg)
            self.pg = None
