"""The benchmark's bulk seed (tests/bench/seed.py) writes an inbox the application reads and
searches like its own, on both databases, and leaves the database writable by the app (search
triggers back in place, PostgreSQL sequences past the explicit ids). A small seed here keeps
``make bench`` working when the schema moves."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import func, select

from inbox.models import Contact, Conversation, Message
from tests.bench.seed import seed_postgresql, seed_sqlite
from tests.web_helpers import (  # noqa: F401  (fast_hashing is an autouse fixture)
    add_agent,
    build_web_app,
    customer_says,
    fast_hashing,
    login,
)


async def _seed(db_url: str, conversations: int, messages: int) -> None:
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        await asyncio.to_thread(seed_sqlite, str(url.database), conversations, messages)
    else:
        await seed_postgresql(str(url.host), int(url.port or 5432), str(url.username), str(url.database),
                              conversations, messages)


async def _sqlite_triggers(sessions: Any) -> set[str]:
    async with sessions() as db:
        result = await db.exec(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        return {str(r[0]) for r in result}


async def test_seeded_inbox_is_listed_searched_and_writable(aiohttp_client: Any, sessions: Any,
                                                            db_url: str) -> None:
    sqlite = db_url.startswith("sqlite")
    triggers_before = await _sqlite_triggers(sessions) if sqlite else set()
    await _seed(db_url, 30, 300)
    async with sessions() as db:
        assert (await db.exec(select(func.count()).select_from(Message))).one() == 300
        assert (await db.exec(select(func.count()).select_from(Conversation))).one() == 30
        # message 7 carries an order number ("#1007"); find whose conversation it is
        seventh = await db.get(Message, 7)
        assert seventh is not None and "#1007" in seventh.text
        conversation = await db.get(Conversation, seventh.conversation_id)
        assert conversation is not None
        assert (await db.exec(select(func.count()).select_from(Contact))).one() == 30
    if sqlite:
        assert await _sqlite_triggers(sessions) == triggers_before

    await add_agent(sessions, admin=True)
    web = build_web_app(sessions)
    client = await aiohttp_client(web.app)
    await login(client)
    page = await client.get("/inbox?status=any")
    assert page.status == 200
    found = await client.get("/inbox?status=any&q=1007")
    assert found.status == 200
    body = await found.text()
    assert f"/inbox/c/{conversation.id}" in body

    # the app keeps writing after the bulk insert (ids and search index included)
    result = await customer_says(sessions, "a parcel question after the seed 55123", contact="visitor-after-seed")
    assert result.message_id > 300
    after = await client.get("/inbox?status=any&q=55123")
    assert f"/inbox/c/{result.conversation_id}" in await after.text()
