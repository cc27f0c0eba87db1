"""Customer profile changes are pushed over ``/inbox/ws`` (SQLite and PostgreSQL): a note, tags,
a merge and an un-merge each send ``{"type": "customer.updated", "profile_ids": [...]}`` after
commit, only with the profiles the receiving agent may open, ids only (never the note's text);
a refused merge sends nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from inbox.actions.customer_link import ensure_profile
from inbox.actions.customer_merge import customer_merge
from inbox.actions.customer_note import customer_note
from inbox.actions.customer_tags import customer_tags
from inbox.actions.customer_unmerge import customer_unmerge
from inbox.models import Agent, Channel, Contact, Conversation, Team
from shopbase.refusal import Refused
from tests.web_helpers import add_agent, build_web_app, fast_hashing, login  # noqa: F401

ORIGIN = {"Origin": "http://127.0.0.1:8080"}


async def _next_customer(ws: Any, timeout: float = 30.0) -> dict[str, Any]:
    async def loop() -> dict[str, Any]:
        while True:
            frame = json.loads((await ws.receive()).data)
            if frame["type"] == "customer.updated":
                return frame

    return await asyncio.wait_for(loop(), timeout)


async def _nothing_more(ws: Any) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await _next_customer(ws, timeout=0.5)


async def _profile(sessions: Any, external_id: str, team_id: int | None = None) -> int:
    async with sessions() as db:
        contact = Contact(channel=Channel.telegram, external_id=external_id, display_name=f"C {external_id}")
        db.add(contact)
        await db.flush()
        db.add(Conversation(contact_id=contact.id, channel=Channel.telegram, team_id=team_id))
        profile = await ensure_profile(db, contact)
        await db.commit()
        assert profile.id is not None
        return profile.id


async def test_profile_changes_reach_only_agents_who_may_open_them(aiohttp_client: Any, sessions: Any) -> None:
    ana_client = await aiohttp_client(build_web_app(sessions).app)
    boss_client = TestClient(ana_client.server)
    await boss_client.start_server()
    try:
        await add_agent(sessions)
        await add_agent(sessions, "boss@shop.test", name="Boss", admin=True)
        async with sessions() as db:
            team = Team(name="Sales")
            db.add(team)
            await db.commit()
            team_id = team.id
        visible = await _profile(sessions, "1")
        hidden = await _profile(sessions, "2", team_id)  # only Sales and admins see its conversation
        async with sessions() as db:
            boss = (await db.exec(select(Agent).where(Agent.email == "boss@shop.test"))).one()
        await login(ana_client)
        await login(boss_client, "boss@shop.test")
        ana_ws = await ana_client.ws_connect("/inbox/ws", headers=ORIGIN)
        boss_ws = await boss_client.ws_connect("/inbox/ws", headers=ORIGIN)

        async with sessions() as db:
            await customer_note(db, hidden, "Secret VIP note", agent=boss)
            await db.commit()
        frame = await _next_customer(boss_ws)
        assert frame == {"type": "customer.updated", "profile_ids": [hidden]}  # ids only, no text
        async with sessions() as db:
            await customer_tags(db, visible, add=["vip"], agent=boss)
            await db.commit()
        assert await _next_customer(ana_ws) == {"type": "customer.updated", "profile_ids": [visible]}
        assert await _next_customer(boss_ws) == {"type": "customer.updated", "profile_ids": [visible]}

        # a refused merge (into itself) sends nothing; a merge names both profiles
        async with sessions() as db:
            with pytest.raises(Refused):
                await customer_merge(db, visible, visible, agent=boss)
            await db.rollback()
        async with sessions() as db:
            merge = await customer_merge(db, hidden, visible, agent=boss)
            await db.commit()
            merge_id = merge.id
        assert await _next_customer(boss_ws) == {"type": "customer.updated", "profile_ids": sorted([hidden, visible])}
        # merged into a profile Ana may open, the hidden one is now part of it
        assert await _next_customer(ana_ws) == {"type": "customer.updated", "profile_ids": sorted([hidden, visible])}
        async with sessions() as db:
            await customer_unmerge(db, merge_id, agent=boss)
            await db.commit()
        assert await _next_customer(boss_ws) == {"type": "customer.updated", "profile_ids": sorted([hidden, visible])}
        assert await _next_customer(ana_ws) == {"type": "customer.updated", "profile_ids": [visible]}
        await _nothing_more(ana_ws)
        await ana_ws.close()
        await boss_ws.close()
    finally:
        await boss_client.close()
