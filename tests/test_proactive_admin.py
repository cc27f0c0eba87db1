"""The customer-updates admin page on SQLite and PostgreSQL: admins only, CSRF, the switches go
through the ``customer_updates_save`` action (audited) and the proactive job obeys them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from inbox.actions.customer_updates_save import customer_updates_save
from inbox.models import AuditEvent
from inbox.proactive import update_settings
from shopbase.refusal import Refused
from tests.web_helpers import add_agent, build_web_app, fast_hashing, login  # noqa: F401

ALL_ON = {"out_for_delivery": "on", "delivered": "on", "failed_attempt": "on", "exception": "on", "late": "on",
          "csat": "on"}


@pytest.fixture
async def client(aiohttp_client: Any, sessions: Any) -> Any:
    return await aiohttp_client(build_web_app(sessions).app)


async def test_only_admins_switch_updates_with_csrf_and_it_is_audited(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    await add_agent(sessions, "boss@shop.test", name="Boss", admin=True)
    token = await login(client)
    assert (await client.get("/inbox/admin/updates")).status == 404
    form = {**ALL_ON, "csrf_token": token}
    assert (await client.post("/inbox/admin/updates", data=form, allow_redirects=False)).status == 404
    await client.post("/logout", data={"csrf_token": token})

    token = await login(client, "boss@shop.test")
    page = await (await client.get("/inbox/admin/updates")).text()
    assert 'id="update-delivered"' in page and "checked" in page and "Failed delivery attempt" in page
    off = {k: v for k, v in ALL_ON.items() if k not in ("delivered", "late")}
    assert (await client.post("/inbox/admin/updates", data=off, allow_redirects=False)).status == 403  # no token
    resp = await client.post("/inbox/admin/updates", data={**off, "csrf_token": token}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/inbox/admin/updates"
    async with sessions() as db:
        assert await update_settings(db) == {**{k: True for k in ALL_ON}, "delivered": False, "late": False,
                                             "paid_broadcast": False}  # paid broadcasts: off unless opted in
        [audit] = (await db.exec(select(AuditEvent).where(AuditEvent.action == "customer_updates.saved"))).all()
    assert audit.detail == {"changed": {"delivered": False, "late": False}} and audit.agent_id is not None
    page = await (await client.get("/inbox/admin/updates")).text()
    assert "Customer updates saved." in page
    assert 'id="update-delivered" type="checkbox" name="delivered" aria-describedby="update-delivered-hint" >' in page
    # the same form again changes nothing and writes no second audit row
    await client.post("/inbox/admin/updates", data={**off, "csrf_token": token}, allow_redirects=False)
    async with sessions() as db:
        assert len((await db.exec(select(AuditEvent).where(AuditEvent.action == "customer_updates.saved"))).all()) == 1


async def test_the_action_refuses_agents_and_unknown_kinds_without_writing(sessions: Any) -> None:
    agent = await add_agent(sessions)
    async with sessions() as db:
        with pytest.raises(Refused) as refused:
            await customer_updates_save(db, {"delivered": False}, by=agent)
        assert refused.value.status == 403
        with pytest.raises(Refused) as refused:
            await customer_updates_save(db, {"delivered": False, "<b>sms</b>": True}, actor="cli")
        assert refused.value.status == 400
        assert (await update_settings(db))["delivered"] is True
        assert (await db.exec(select(AuditEvent))).all() == []
