"""Shared fixtures: a real database per test, on SQLite and on a throwaway PostgreSQL cluster.

``db_url`` is parametrized over both databases, so every test that asks for ``engine`` or
``sessions`` runs twice. The PostgreSQL cluster is started once per test worker by
``initdb`` + ``pg_ctl`` on a free loopback port in a temporary directory, and each test gets
its own database cloned from a migrated template. Outside CI, missing PostgreSQL binaries
skip those runs with a reason; with ``CI=true`` they fail instead.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.log_scan import (  # noqa: F401  (the suite-wide scan of every log for secrets: pytest hooks)
    pytest_collection_finish,
    pytest_configure,
    pytest_runtest_makereport,
    pytest_runtest_setup,
    pytest_sessionfinish,
)
from tests.pg_cluster import PgServer, pg_bindir, start_cluster, stop_cluster

os.environ.setdefault("PTB_TIMEDELTA", "1")
# the suite never reads a developer's shopdesk.toml
os.environ["SHOPDESK_CONFIG"] = os.devnull

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bindir = pg_bindir()
    if bindir is None:
        if IN_CI:
            pytest.fail("PostgreSQL binaries (initdb, pg_ctl) are missing; CI must run the PostgreSQL suite")
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found; install postgresql to run these")
    server = start_cluster(bindir)
    try:
        yield server
    finally:
        stop_cluster(server)


async def _pg_admin(server: PgServer, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=server.host, port=server.port, user=server.user, database="postgres")
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


async def _migrate_url(url: str) -> None:
    from shopdesk.db import create_engine, migrate

    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


def _run_in_thread(coro_fn, *args):  # type: ignore[no-untyped-def]
    """Run a coroutine to completion on a private loop (session fixtures may be set up inside a test's loop)."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coro_fn(*args))).result()


@pytest.fixture(scope="session")
def pg_template(pg_server: PgServer) -> str:
    _run_in_thread(_pg_admin, pg_server, "DROP DATABASE IF EXISTS shopdesk_tpl", "CREATE DATABASE shopdesk_tpl")
    _run_in_thread(_migrate_url, pg_server.url("shopdesk_tpl"))
    return "shopdesk_tpl"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    _run_in_thread(_migrate_url, f"sqlite+aiosqlite:///{path}")
    return path


_db_counter = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated, empty database of the parametrized kind, private to this test."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "shopdesk.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    async for url in _private_pg_database(request):
        yield url


async def _private_pg_database(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    server: PgServer = request.getfixturevalue("pg_server")
    template_db: str = request.getfixturevalue("pg_template")
    name = f"t_{os.getpid()}_{next(_db_counter)}_{int(time.time() * 1000) % 100000}"
    await _pg_admin(server, f'CREATE DATABASE "{name}" TEMPLATE {template_db}')
    yield server.url(name)
    await _pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def pg_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A migrated, empty PostgreSQL database private to this test (for PostgreSQL-only features:
    several processes on one database)."""
    async for url in _private_pg_database(request):
        yield url


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite database only (for tests about SQLite itself or the browser)."""
    path = tmp_path / "shopdesk.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def lite_settings(sqlite_url: str, tmp_path: Path) -> object:
    """Settings for tests that never touch the database (run once, not per database)."""
    from shopdesk.settings import load_settings

    return load_settings(database_url=sqlite_url, secret_key="test-secret-key-0123456789abcdef0123456789",
                         data_dir=tmp_path / "data")


@pytest.fixture
async def telegram(aiohttp_server: object) -> object:
    """A loopback fake Telegram Bot API (tests.fakes.telegram), its base_url set."""
    from tests.fakes.telegram import FakeTelegram

    tg = FakeTelegram()
    server = await aiohttp_server(tg.app)  # type: ignore[operator]
    tg.base_url = str(server.make_url("")).rstrip("/")
    return tg


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[object]:
    from shopdesk.db import create_engine

    eng = create_engine(db_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessions(engine: object) -> object:
    """An ``async_sessionmaker`` bound to the test's database."""
    from shopdesk.db import session_maker

    return session_maker(engine)  # type: ignore[arg-type]


@pytest.fixture
def bus(sessions: object) -> object:
    """An ``EventBus`` bound to the test's sessions: events collected on them are published to it
    after their commit."""
    from inbox.events import EventBus

    b = EventBus()
    b.bind(sessions)  # type: ignore[arg-type]
    return b


@pytest.fixture
def published(bus: object) -> list[object]:
    """Every event ``bus`` publishes, in order."""
    seen: list[object] = []
    bus.subscribe(seen.append)  # type: ignore[attr-defined]
    return seen


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> object:
    from shopdesk.settings import load_settings

    s = load_settings(
        database_url=db_url,
        secret_key="test-secret-key-0123456789abcdef0123456789",
        data_dir=tmp_path / "data",
        shopify_webhook_secret="shpss_test_secret",
    )
    return s
