"""The inbox's alert pages on SQLite and PostgreSQL: rules admin (admins only, CSRF, clear 400s),
returns insight with customers' words escaped, and the agents' notifications with an unread count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from inbox.alerts.runner import AlertRunner
from inbox.models import AlertRule, Channel, Contact, Conversation, FiredAlert, Team
from ordersvc.models import ReturnAuthorization, ReturnLine, ReturnReason
from tests.ordersvc_builders import make_level, make_order, make_warehouse
from tests.web_helpers import (  # noqa: F401  (fast_hashing is an autouse fixture)
    add_agent,
    build_web_app,
    fast_hashing,
    login,
)

XSS = "<script>alert(1)</script> too small"


@pytest.fixture
async def client(aiohttp_client: Any, sessions: Any) -> Any:
    return await aiohttp_client(build_web_app(sessions).app)


async def post(client: Any, url: str, token: str, **data: Any) -> Any:
    return await client.post(url, data={"csrf_token": token, **data}, allow_redirects=False)


def form(**overrides: str) -> dict[str, str]:
    data = {"escalation.enabled": "on", "sla_breach.enabled": "on",
            "shipment.enabled": "on", "shipment.lookback_days": "30", "return_spike.enabled": "on",
            "return_spike.reason_count": "3", "return_spike.reason_days": "7", "return_spike.rate_factor": "2",
            "return_spike.min_returns": "3", "daily_digest.enabled": "on", "daily_digest.at": "08:30"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v != "-"}


async def test_rules_page_is_for_admins_and_saves_with_csrf(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    await add_agent(sessions, "boss@shop.test", name="Boss", admin=True)
    token = await login(client)
    assert (await client.get("/inbox/admin/alerts")).status == 404
    assert (await post(client, "/inbox/admin/alerts", token, **form())).status == 404
    await client.post("/logout", data={"csrf_token": token})
    token = await login(client, "boss@shop.test")
    page = await (await client.get("/inbox/admin/alerts")).text()
    assert "Low stock (per SKU and location)" in page and 'name="shipment.lookback_days" value="30"' in page
    # without the CSRF token nothing happens
    resp = await client.post("/inbox/admin/alerts", data=form(), allow_redirects=False)
    assert resp.status == 403
    # low_stock unticked: switched off
    assert (await post(client, "/inbox/admin/alerts", token, **form())).status == 303
    async with sessions() as db:
        saved = {r.rule: (r.enabled, r.params) for r in (await db.exec(select(AlertRule))).all()}
    assert saved["low_stock"] == (False, {})
    assert saved["sla_breach"] == (True, {})
    assert saved["daily_digest"] == (True, {"at": "08:30"})
    page = await (await client.get("/inbox/admin/alerts")).text()
    assert "Alert rules saved." in page and 'value="08:30"' in page
    # a bad value: 400 naming the field, nothing changed
    resp = await post(client, "/inbox/admin/alerts", token, **form(**{"daily_digest.at": "25:99"}))
    text = await resp.text()
    assert resp.status == 400 and "Daily digest: at: must be a time such as 09:00" in text
    resp = await post(client, "/inbox/admin/alerts", token, **form(**{"return_spike.rate_factor": "<b>x"}))
    assert resp.status == 400 and "<b>x" not in await resp.text()
    async with sessions() as db:
        assert (await db.get(AlertRule, "daily_digest")).params == {"at": "08:30"}


async def test_returns_page_lists_rates_reasons_and_escaped_words(client: Any, sessions: Any) -> None:
    await add_agent(sessions, "boss@shop.test", name="Boss", admin=True)
    now = datetime.now(UTC)
    async with sessions() as db:
        _, (tee, mug) = await make_order(db, [{"sku": "TEE", "quantity": 4, "title": "Linen tee"},
                                              {"sku": "MUG", "quantity": 2, "title": "Mug"}],
                                         placed_at=now - timedelta(days=3))
        for i, (line, reason, note) in enumerate([(tee, ReturnReason.too_small, XSS), (tee, ReturnReason.too_small, None),
                                                  (tee, ReturnReason.damaged, None)]):
            rma = ReturnAuthorization(rma_number=f"R-{i}", order_id=line.order_id, requested_at=now - timedelta(days=1))
            db.add(rma)
            await db.flush()
            db.add(ReturnLine(rma_id=rma.id, order_line_id=line.id, reason=reason, reason_note=note))
        await db.commit()
    await login(client, "boss@shop.test")
    page = await (await client.get("/inbox/admin/returns?days=30")).text()
    assert "Linen tee" in page and "75%" in page and "too small (2), damaged (1)" in page
    assert "Mug" not in page  # nothing returned
    detail = await (await client.get("/inbox/admin/returns?days=7&product=TEE")).text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; too small" in detail and "<script>alert(1)" not in detail
    assert (await client.get("/inbox/admin/returns?days=abc&product=%3Cx%3E")).status == 200


async def test_notifications_unread_count_and_visibility(client: Any, sessions: Any) -> None:
    ana = await add_agent(sessions)
    async with sessions() as db:
        team = Team(name="VIP")
        db.add(team)
        await db.flush()
        contact = Contact(channel=Channel.telegram, external_id="9", display_name="<b>Lan</b>")
        db.add(contact)
        await db.flush()
        hidden = Conversation(contact_id=contact.id, channel=Channel.telegram, team_id=team.id, owner="agent",
                              created_at=datetime.now(UTC) - timedelta(hours=3), sla_kind="first",
                              sla_due_at=datetime.now(UTC) - timedelta(hours=1),
                              sla_breached_at=datetime.now(UTC) - timedelta(hours=1))
        db.add(hidden)
        main = await make_warehouse(db, "MAIN")
        await make_level(db, main, "MUG", on_hand=0)
        await db.commit()
    await AlertRunner(sessions).run_once(datetime.now(UTC))
    async with sessions() as db:
        fired = {a.rule: a for a in (await db.exec(select(FiredAlert))).all()}
    assert {"low_stock", "sla_breach"} <= set(fired)
    await login(client)
    count = await client.get("/inbox/notifications/count", headers={"Accept": "application/json"})
    visible = len(fired) - 1  # the breach is about a conversation of a team Ana is not in
    assert (await count.json()) == {"unread": visible}
    page = await (await client.get("/inbox/notifications")).text()
    assert "Low stock: MUG at Warehouse MAIN" in page and f"conversation #{hidden.id}" not in page
    assert "Notifications" in await (await client.get("/inbox")).text()
    token_page = page
    from tests.web_helpers import csrf_from

    newest = max(a.id for r, a in fired.items() if r != "sla_breach")
    resp = await post(client, "/inbox/notifications/read", csrf_from(token_page), up_to=str(newest))
    assert resp.status == 303
    assert (await (await client.get("/inbox/notifications/count")).text()) == ""
    assert (await post(client, "/inbox/notifications/read", csrf_from(token_page), up_to="x")).status == 400
    assert ana.id is not None
