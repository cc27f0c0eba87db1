"""The notification count is pushed over ``/inbox/ws`` (SQLite and PostgreSQL): after ``hello``,
when an alert fires (only to agents who may see its conversation) and when an agent marks
notifications read (only to that agent's tabs). Numbers only, never alert text."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient
from sqlmodel import select

from inbox.actions.alert_fire import alert_fire
from inbox.actions.notifications_read import notifications_read
from inbox.alerts.rules import Finding
from inbox.models import Agent, Channel, Contact, Conversation, Team
from tests.web_helpers import add_agent, build_web_app, fast_hashing, login  # noqa: F401

ORIGIN = {"Origin": "http://127.0.0.1:8080"}


async def _next_count(ws: Any, timeout: float = 30.0) -> dict[str, Any]:
    async def loop() -> dict[str, Any]:
        while True:
            frame = json.loads((await ws.receive()).data)
            if frame["type"] == "notifications":
                return frame

    return await asyncio.wait_for(loop(), timeout)


async def _fire(sessions: Any, subject: str, conversation_id: int | None = None) -> int:
    async with sessions() as db:
        [alert_id] = await alert_fire(db, [Finding(rule="low_stock", subject=subject, window="w", kind="low_stock",
                                                   conversation_id=conversation_id, detail={"sku": subject})],
                                      now=datetime.now(UTC))
        await db.commit()
    return alert_id


async def test_counts_are_pushed_to_those_who_may_see_them(aiohttp_client: Any, sessions: Any) -> None:
    ana_client = await aiohttp_client(build_web_app(sessions).app)
    boss_client = TestClient(ana_client.server)
    await boss_client.start_server()
    try:
        await add_agent(sessions)
        await add_agent(sessions, "boss@shop.test", name="Boss", admin=True)
        async with sessions() as db:
            team = Team(name="Sales")
            db.add(team)
            contact = Contact(channel=Channel.telegram, external_id="77", display_name="Lan")
            db.add(contact)
            await db.flush()
            hidden = Conversation(contact_id=contact.id, channel=Channel.telegram, team_id=team.id)
            db.add(hidden)
            await db.commit()
        await login(ana_client)
        await login(boss_client, "boss@shop.test")
        ana = await ana_client.ws_connect("/inbox/ws", headers=ORIGIN)
        boss = await boss_client.ws_connect("/inbox/ws", headers=ORIGIN)
        assert await _next_count(ana) == {"type": "notifications", "unread": 0}  # right after hello
        assert await _next_count(boss) == {"type": "notifications", "unread": 0}

        await _fire(sessions, "SALES-ONLY", hidden.id)  # about a conversation only Sales and admins see
        assert await _next_count(boss) == {"type": "notifications", "unread": 1}
        newest = await _fire(sessions, "MUG")
        assert await _next_count(boss) == {"type": "notifications", "unread": 2}
        assert await _next_count(ana) == {"type": "notifications", "unread": 1}  # nothing came for the hidden one

        async with sessions() as db:  # the boss reads: only the boss's tabs hear of it
            boss_agent = (await db.exec(select(Agent).where(Agent.email == "boss@shop.test"))).one()
            await notifications_read(db, boss_agent, newest)
            await db.commit()
        assert await _next_count(boss) == {"type": "notifications", "unread": 0}
        await _fire(sessions, "CUP")
        assert await _next_count(ana) == {"type": "notifications", "unread": 2}
        assert await _next_count(boss) == {"type": "notifications", "unread": 1}
        await ana.close()
        await boss.close()
    finally:
        await boss_client.close()
