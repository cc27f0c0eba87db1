"""Macros, the SLA admin page and the hand-off summary through the web app, on both databases:
admins define macros (a warning, never a 500, for variables that do not exist), agents apply one
in one transaction (all of it or nothing), the SLA policy saves only valid, and the hand-off
sentence is written in the agent's language."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlmodel import select

from inbox.actions.canned_save import canned_save
from inbox.actions.conversation_escalate import conversation_escalate
from inbox.models import Agent, AuditEvent, Conversation, Macro, Message
from inbox.sla import load_policy
from tests.web_helpers import (  # noqa: F401  (fast_hashing is an autouse fixture)
    add_agent,
    build_web_app,
    customer_says,
    fast_hashing,
    login,
)


@pytest.fixture
async def client(aiohttp_client: Any, sessions: Any) -> Any:
    return await aiohttp_client(build_web_app(sessions).app)


async def post(client: Any, url: str, token: str, **data: Any) -> Any:
    return await client.post(url, data={"csrf_token": token, **data}, allow_redirects=False)


async def canned(sessions: Any, shortcut: str, body: str) -> int:
    async with sessions() as db:
        row = await canned_save(db, shortcut, shortcut.title(), {"en": body})
        await db.commit()
        return int(row.id)  # type: ignore[arg-type]


async def escalated(sessions: Any, text: str = "where is my order", contact: str = "visitor-aaaaaaaaaaaaaaaa",
                    context: dict[str, Any] | None = None) -> int:
    result = await customer_says(sessions, text, contact=contact)
    async with sessions() as db:
        conv = await db.get(Conversation, result.conversation_id)
        await conversation_escalate(db, conv, priority="normal", summary="intent: track_order (47%)",
                                    reason="late_shipment", context=context)
        await db.commit()
    return result.conversation_id


async def test_admins_define_macros_with_a_warning_for_unknown_variables(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    await add_agent(sessions, "boss@shop.test", name="Boss", admin=True)
    good = await canned(sessions, "thanks", "Thanks {{ customer.first_name }}! Order {{ order.name }} is on its way.")
    typo = await canned(sessions, "typo", "Hi {{ customer.frist_name }}, your {{ coupon }} {% for x in range(2) %}{{ x }}{% endfor %}")
    token = await login(client)
    assert (await client.get("/inbox/admin/macros")).status == 404  # agents: not found
    assert (await post(client, "/inbox/admin/macros", token, name="x", status="resolved")).status == 404
    await client.post("/logout", data={"csrf_token": token})
    token = await login(client, "boss@shop.test")

    resp = await post(client, "/inbox/admin/macros", token, name="Shipped & thanks", shortcut="1",
                      canned_id=str(good), status="resolved", add_labels="wismo", new_labels="vip, Late")
    assert resp.status == 303
    assert "Macro saved." in await (await client.get("/inbox/admin/macros")).text()
    resp = await post(client, "/inbox/admin/macros", token, name="Typo", canned_id=str(typo), priority="high")
    assert resp.status == 303
    page = await (await client.get("/inbox/admin/macros")).text()
    assert "customer.frist_name, coupon" in page  # flash and the table both warn; x and range are fine
    # refusals answer 400 naming the problem and write nothing
    for bad in ({"name": "", "status": "open"}, {"name": "Nothing"}, {"name": "Dup", "shortcut": "1", "status": "open"},
                {"name": "Snooze", "status": "snoozed"}, {"name": "Bad", "status": "sleeping"},
                {"name": "Who", "assign": "999999"}, {"name": "Key", "shortcut": "%", "status": "open"},
                {"name": "Gone", "canned_id": "999999"}):
        resp = await post(client, "/inbox/admin/macros", token, **bad)
        assert resp.status == 400, bad
        assert "The macro was not saved" in await resp.text()
    async with sessions() as db:
        macros = (await db.exec(select(Macro).order_by(Macro.id))).all()
    assert [(m.name, m.shortcut, m.add_labels) for m in macros] == [
        ("Shipped & thanks", "1", ["wismo", "vip", "late"]), ("Typo", None, [])]


async def _conv(sessions: Any, cid: int) -> Conversation:
    async with sessions() as db:
        conv = await db.get(Conversation, cid)
        assert conv is not None
        return conv


async def _agent_texts(sessions: Any, cid: int) -> list[str]:
    async with sessions() as db:
        rows = (await db.exec(select(Message).where(Message.conversation_id == cid, Message.author == "agent")
                              .order_by(Message.id))).all()
    return [m.text for m in rows]


async def _audits(sessions: Any, cid: int) -> list[str]:
    async with sessions() as db:
        return [a.action for a in (await db.exec(select(AuditEvent).where(AuditEvent.conversation_id == cid)
                                                 .order_by(AuditEvent.id))).all()]


async def test_a_macro_fills_the_composer_and_its_status_waits_for_the_send(client: Any, sessions: Any) -> None:
    ana = await add_agent(sessions)
    ben = await add_agent(sessions, "ben@shop.test", name="Ben")
    body = await canned(sessions, "done", "Thanks {{ customer.display_name }}, all sorted.{{ order.name }}{{ coupon }}")
    cid = await escalated(sessions)
    async with sessions() as db:
        boss = Agent(email="b@shop.test", password_hash="x", role="admin")
        db.add(boss)
        await db.flush()
        from inbox.actions.macro_save import macro_save

        good = await macro_save(db, name="Sort it", by=boss, canned_id=body, status="resolved", priority="high",
                                add_labels=["sorted"], assign="me")
        doomed = await macro_save(db, name="To Ben", by=boss, assign=str(ben.id), status="resolved",
                                  add_labels=["x"])
        await db.commit()
        good_id, doomed_id = good.id, doomed.id
    token = await login(client)
    page = await (await client.get(f"/inbox/c/{cid}")).text()
    assert f'action="/inbox/c/{cid}/macro/{good_id}"' in page

    # Ben is deactivated: the second macro is refused as a whole, nothing of it stays
    async with sessions() as db:
        b = await db.get(Agent, ben.id)
        b.is_active = False
        await db.commit()
    resp = await post(client, f"/inbox/c/{cid}/macro/{doomed_id}", token)
    assert resp.status == 400
    conv = await _conv(sessions, cid)
    assert conv.labels == [] and conv.status.value == "open" and conv.assignee_id is None

    # applied from the page's script: the reply comes back for the composer, nothing is sent,
    # labels / priority / assignment are done, the status waits
    resp = await client.post(f"/inbox/c/{cid}/macro/{good_id}", data={"csrf_token": token},
                             headers={"Accept": "application/json"})
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert data["text"] == "Thanks Jane, all sorted."  # no order, no coupon: unknown variables are empty
    assert data["macro_id"] == good_id and data["done"] == ["labels", "priority", "assign"]
    assert "sets the status to Resolved" in data["pending"]
    conv = await _conv(sessions, cid)
    assert (conv.status.value, conv.priority.value, conv.labels, conv.assignee_id) == ("open", "high", ["sorted"], ana.id)
    assert await _agent_texts(sessions, cid) == []
    assert (await _audits(sessions, cid)).count("macro.applied") == 1

    # the agent edits the text and sends it with the macro: the reply goes out, then the status
    resp = await post(client, f"/inbox/c/{cid}/reply", token, text="Thanks Jane, all sorted now!",
                      macro_id=str(good_id))
    assert resp.status == 303, await resp.text()
    conv = await _conv(sessions, cid)
    assert conv.status.value == "resolved"
    assert await _agent_texts(sessions, cid) == ["Thanks Jane, all sorted now!"]
    audits = await _audits(sessions, cid)
    assert audits.index("message.agent_reply") < audits.index("macro.sent")
    assert (await post(client, f"/inbox/c/{cid}/macro/999999", token)).status == 404


async def test_a_macro_without_script_redirects_to_a_filled_composer(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    body = await canned(sessions, "wait", "Hi {{ customer.display_name }}, checking with the warehouse.")
    cid = await escalated(sessions)
    async with sessions() as db:
        boss = Agent(email="b@shop.test", password_hash="x", role="admin")
        db.add(boss)
        await db.flush()
        from inbox.actions.macro_save import macro_save

        with_reply = await macro_save(db, name="Warehouse", by=boss, canned_id=body, status="pending")
        no_reply = await macro_save(db, name="Urgent", by=boss, priority="urgent", status="pending")
        await db.commit()
        with_id, without_id = with_reply.id, no_reply.id
    token = await login(client)
    resp = await post(client, f"/inbox/c/{cid}/macro/{with_id}", token)
    assert resp.status == 303
    location = resp.headers["Location"]
    assert f"macro={with_id}" in location
    page = await (await client.get(location.split("#")[0])).text()
    assert ">Hi Jane, checking with the warehouse.</textarea>" in page
    assert re.search(rf'name="macro_id" id="reply-macro" value="{with_id}"', page)
    assert "sets the status to Pending" in page
    assert (await _conv(sessions, cid)).status.value == "open" and await _agent_texts(sessions, cid) == []

    # sent without the macro (the agent chose "Do not change the status"): the status stays
    assert (await post(client, f"/inbox/c/{cid}/reply", token, text="Checking.", macro_id="")).status == 303
    assert (await _conv(sessions, cid)).status.value == "open"
    # a macro with nothing to send sets its status at once
    resp = await client.post(f"/inbox/c/{cid}/macro/{without_id}", data={"csrf_token": token},
                             headers={"Accept": "application/json"})
    data = await resp.json()
    assert data["text"] == "" and data["macro_id"] is None and data["done"] == ["priority", "status"]
    conv = await _conv(sessions, cid)
    assert (conv.status.value, conv.priority.value) == ("pending", "urgent")
    # a macro id that does not exist in the reply form: the reply is sent, nothing else happens
    assert (await post(client, f"/inbox/c/{cid}/reply", token, text="More.", macro_id="999999")).status == 303
    assert (await post(client, f"/inbox/c/{cid}/reply", token, text="More.", macro_id="abc")).status == 303
    assert await _agent_texts(sessions, cid) == ["Checking.", "More.", "More."]


async def test_sla_admin_page_saves_only_a_valid_policy(client: Any, sessions: Any) -> None:
    await add_agent(sessions, "boss@shop.test", name="Boss", admin=True)
    token = await login(client, "boss@shop.test")
    page = await (await client.get("/inbox/admin/sla")).text()
    assert 'name="hours.mon.open" value="09:00"' in page and 'name="t.urgent.first" value="30"' in page
    form = {"enabled": "on", "timezone": "Europe/Madrid", "holidays": "2026-12-25\n2027-01-06",
            "holiday_country": "es", "warn_minutes": "15", "t.urgent.first": "20", "t.urgent.next": "40",
            "t.normal.first": "120", "t.normal.next": "240", "c.webchat.normal.first": "10",
            **{f"hours.{d}.open": "09:00" for d in ("mon", "tue", "wed", "thu", "fri")},
            **{f"hours.{d}.close": "17:30" for d in ("mon", "tue", "wed", "thu", "fri")}}
    assert (await post(client, "/inbox/admin/sla", token, **form)).status == 303
    async with sessions() as db:
        policy = await load_policy(db)
    assert (policy.timezone, policy.holiday_country, policy.warn_minutes) == ("Europe/Madrid", "ES", 15)
    assert policy.targets["urgent"].first == 20 and policy.channel_targets["webchat"]["normal"].first == 10
    assert policy.hours["sat"] is None and policy.hours["mon"] == ["09:00", "17:30"]
    for bad in ({"hours.mon.close": "08:00"}, {"timezone": "Nowhere/Land"}, {"t.normal.first": "soon"},
                {"holidays": "christmas"}):
        resp = await post(client, "/inbox/admin/sla", token, **(form | bad))
        assert resp.status == 400, bad
        assert "The SLA policy was not saved" in await resp.text()
    async with sessions() as db:
        assert (await load_policy(db)) == policy


HANDOFF = {"reason": "late_shipment", "intent": "track_order", "confidence": 0.47, "order": "#1003",
           "said": ["wismo_status", "wismo_sorry_late"], "facts": {"days_since_scan": 7, "problem": False}}


@pytest.mark.parametrize(("language", "sentence"), [
    ("en", "Asked where order #1003 is; the parcel has had no scan for 7 days; the bot apologised and promised a person"),
    ("es", "Preguntó dónde está el pedido #1003; el paquete lleva 7 días sin escaneos; el bot se disculpó y prometió una persona"),
    ("ru", "Спросил, где заказ #1003; посылка не сканировалась 7 дней; бот извинился и пообещал человека"),
    ("vi", "Hỏi đơn hàng #1003 đang ở đâu; bưu kiện đã 7 ngày không được quét; bot đã xin lỗi và hứa sẽ có người hỗ trợ"),
    ("zh-Hans", "询问订单 #1003 在哪里; 包裹已 7 天没有扫描记录; 机器人已道歉并承诺转人工"),
])
async def test_the_handoff_sentence_is_in_the_agents_language(client: Any, sessions: Any, language: str,
                                                               sentence: str) -> None:
    await add_agent(sessions)
    cid = await escalated(sessions, context=HANDOFF)
    token = await login(client)
    await post(client, "/inbox/account/language", token, language=language)
    page = await (await client.get(f"/inbox/c/{cid}")).text()
    found = re.search(r'<p class="handoff-sentence">(.*?)</p>', page)
    assert found is not None and found.group(1) == sentence
    assert "<details>" in page and "#1003" in page and "47" in page  # the structured details, one click away
    assert "intent: track_order (47%)" in page  # the raw summary stays inside the details


async def test_admins_allow_and_stop_return_overrides_for_an_agent(client: Any, sessions: Any) -> None:
    ana = await add_agent(sessions)
    await add_agent(sessions, "boss@shop.test", name="Boss", admin=True)
    token = await login(client, "boss@shop.test")
    page = await (await client.get("/inbox/admin/agents")).text()
    assert 'value="allow_overrides"' in page
    resp = await post(client, f"/inbox/admin/agents/{ana.id}", token, action="allow_overrides")
    assert resp.status == 303
    assert "Ana may now override return refusals." in await (await client.get("/inbox/admin/agents")).text()
    async with sessions() as db:
        assert (await db.get(Agent, ana.id)).can_override_returns is True
    assert (await post(client, f"/inbox/admin/agents/{ana.id}", token, action="deny_overrides")).status == 303
    async with sessions() as db:
        assert (await db.get(Agent, ana.id)).can_override_returns is False
        audits = (await db.exec(select(AuditEvent).where(AuditEvent.action.in_(["agent.allow_overrides",
                                                                               "agent.deny_overrides"])))).all()
    assert len(audits) == 2


def test_handoff_sentences_for_other_hand_overs() -> None:
    from inbox.web.handoff import handoff_details, handoff_sentence
    from inbox.web.i18n import translations

    en = translations("en")
    assert handoff_sentence(None, en) == "" and handoff_sentence({}, en) == ""
    assert handoff_sentence({"reason": "negative", "intent": "complaint", "said": ["handoff"]}, en) == (
        "Complained; the customer is upset; the bot apologised and promised a person")
    assert handoff_sentence({"reason": "low_confidence", "intent": "unknown", "said": ["handoff_unsure"]}, en) == (
        "The bot was not sure what they meant; the bot told them a person will reply")
    assert handoff_sentence({"reason": "bot_error", "said": ["bot_error"]}, en) == (
        "The bot failed on their last message; the bot apologised and promised a person")
    assert handoff_sentence({"reason": "late_shipment", "intent": "cancel_order", "order": "#1005",
                             "facts": {"not_shipped": True, "days_since_scan": "7<script>"}}, en) == (
        "Wants to cancel order #1005; it has not shipped by the expected date")
    # one day is singular; Russian picks its own plural form
    ru = translations("ru")
    assert "1 день" in handoff_sentence({"intent": "track_order", "facts": {"days_since_scan": 1}}, ru)
    assert "3 дня" in handoff_sentence({"intent": "track_order", "facts": {"days_since_scan": 3}}, ru)
    rows = dict(handoff_details({"reason": "negative", "intent": "complaint", "confidence": 0.91,
                                 "said": ["handoff"], "note": "step: returns/reason"}, en, "en"))
    assert rows["Intent"] == "complaint (91%)" and rows["Note"] == "step: returns/reason"
