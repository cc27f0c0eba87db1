"""The agents' inbox over HTTP on SQLite and PostgreSQL: lists, filters, search, actions, access, XSS, admin."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from inbox.actions.contact_link import contact_link
from inbox.actions.conversation_assign import conversation_assign
from inbox.actions.conversation_escalate import conversation_escalate
from inbox.actions.conversation_labels import conversation_labels
from inbox.actions.conversation_status import conversation_status
from inbox.models import (
    Agent,
    AuditEvent,
    Author,
    CannedResponse,
    Channel,
    Contact,
    Conversation,
    ConversationStatus,
    Label,
    Message,
    OutboxMessage,
    Owner,
    Priority,
    Team,
)
from inbox.web.rendering import safe_url
from ordersvc.models import Order, ReturnAuthorization
from ordersvc.tracking import ShipmentStatus
from tests.db_helpers import count
from tests.ordersvc_builders import make_customer, make_order, make_shipment
from tests.web_helpers import (  # noqa: F401  (fast_hashing is an autouse fixture)
    PASSWORD,
    WebApp,
    add_agent,
    build_web_app,
    csrf_from,
    customer_says,
    fast_hashing,
    login,
)

XSS_IMG = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def web_app(sessions: Any) -> WebApp:
    return build_web_app(sessions)


@pytest.fixture
async def client(aiohttp_client: Any, web_app: WebApp) -> Any:
    return await aiohttp_client(web_app.app)



async def audit_actions(sessions: Any, conversation_id: int) -> list[tuple[str, int | None]]:
    async with sessions() as db:
        rows = (
            await db.exec(
                select(AuditEvent.action, AuditEvent.agent_id)
                .where(AuditEvent.conversation_id == conversation_id)
                .order_by(col(AuditEvent.id))
            )
        ).all()
    return [(a, i) for a, i in rows]


async def escalate(sessions: Any, conversation_id: int, priority: str = "normal") -> None:
    async with sessions() as db:
        conv = await db.get(Conversation, conversation_id)
        await conversation_escalate(db, conv, priority=priority, summary="needs a person", reason="test")
        await db.commit()


async def update_conversation(sessions: Any, conversation_id: int, **fields: Any) -> None:
    async with sessions() as db:
        conv = await db.get(Conversation, conversation_id)
        for k, v in fields.items():
            setattr(conv, k, v)
        db.add(conv)
        await db.commit()


def listed_ids(body: str) -> list[int]:
    return [int(x) for x in re.findall(r'<li class="conv-item[^"]*" data-id="(\d+)"', body)]


def count_badge(body: str, view: str) -> int:
    match = re.search(rf'data-count="{view}">(\d+)<', body)
    assert match, view
    return int(match.group(1))


async def post(client: Any, url: str, token: str, **data: Any) -> Any:
    return await client.post(url, data={"csrf_token": token, **data}, allow_redirects=False)


# --------------------------------------------------------------------------- list, views, filters


async def test_views_filters_and_counts(client: Any, sessions: Any) -> None:
    ana = await add_agent(sessions)
    bo = await add_agent(sessions, "bo@shop.test", name="Bo")
    bot_only = await customer_says(sessions, "hello there", contact="v-bot-000000000000001")
    queue = await customer_says(sessions, "I need a human", contact="v-queue-0000000000001")
    mine = await customer_says(sessions, "Ana please", contact="v-mine-00000000000001")
    bos = await customer_says(sessions, "Bo please", contact="v-bo-0000000000000001")
    tg = await customer_says(sessions, "from telegram", contact="4242", channel=Channel.telegram)
    done = await customer_says(sessions, "thanks, solved", contact="v-done-00000000000001")
    await escalate(sessions, queue.conversation_id, "high")
    await escalate(sessions, tg.conversation_id, "urgent")
    async with sessions() as db:
        for rec, who in ((mine, ana), (bos, bo)):
            conv = await db.get(Conversation, rec.conversation_id)
            await conversation_assign(db, conv, await db.get(Agent, who.id), by=who)
        conv = await db.get(Conversation, done.conversation_id)
        await conversation_status(db, conv, "resolved", by=ana)
        conv = await db.get(Conversation, mine.conversation_id)
        await conversation_labels(db, conv, ["vip"], by=ana)
        conv.last_intent = "track_order"
        db.add(conv)
        await db.commit()
    await login(client)

    body = await (await client.get("/inbox")).text()  # default: all, open
    assert set(listed_ids(body)) == {r.conversation_id for r in (bot_only, queue, mine, bos, tg)}
    assert count_badge(body, "all") == 5
    assert count_badge(body, "mine") == 1
    assert count_badge(body, "unassigned") == 2
    assert "Resolved (1)" in body and "Open (5)" in body

    body = await (await client.get("/inbox?view=mine")).text()
    assert listed_ids(body) == [mine.conversation_id]
    body = await (await client.get("/inbox?view=unassigned")).text()
    assert listed_ids(body) == [tg.conversation_id, queue.conversation_id]  # urgent first
    body = await (await client.get("/inbox?status=resolved")).text()
    assert listed_ids(body) == [done.conversation_id]
    body = await (await client.get("/inbox?status=any")).text()
    assert len(listed_ids(body)) == 6
    body = await (await client.get("/inbox?channel=telegram")).text()
    assert listed_ids(body) == [tg.conversation_id]
    body = await (await client.get("/inbox?priority=high")).text()
    assert listed_ids(body) == [queue.conversation_id]
    body = await (await client.get("/inbox?label=vip")).text()
    assert listed_ids(body) == [mine.conversation_id]
    body = await (await client.get("/inbox?intent=track_order")).text()
    assert listed_ids(body) == [mine.conversation_id]
    assert "Track order" in body  # the intent filter offers what exists

    resp = await client.get("/inbox?status=bogus")
    assert resp.status == 400
    assert "unknown status" in await resp.text()
    resp = await client.get("/inbox?view=bogus", headers={"HX-Request": "true"})
    assert resp.status == 400 and "unknown view" in (await resp.json())["error"]

    # the live-update fragment is the same list
    frag = await (await client.get("/inbox/fragments/list?view=mine")).text()
    assert listed_ids(frag) == [mine.conversation_id]
    assert "<html" not in frag


async def test_search_finds_message_text_and_names(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    parcel = await customer_says(sessions, "My parcel never arrived", contact="v-parcel-000000000001")
    await customer_says(sessions, "Do you ship to Canada?", contact="v-canada-000000000001", name="Zed Smith")
    await login(client)
    body = await (await client.get("/inbox?q=parcel")).text()
    assert listed_ids(body) == [parcel.conversation_id]
    body = await (await client.get("/inbox?q=Zed")).text()
    assert len(listed_ids(body)) == 1
    body = await (await client.get("/inbox?q=nothing-matches-this")).text()
    assert listed_ids(body) == [] and "No matches" in body
    # search syntax is data, not an operator
    resp = await client.get('/inbox?q=" OR 1=1 -- NEAR(*)')
    assert resp.status == 200


# --------------------------------------------------------------------------- conversation actions


async def test_reply_goes_to_outbox_and_note_never_does(client: Any, sessions: Any, web_app: WebApp) -> None:
    ana = await add_agent(sessions)
    rec = await customer_says(sessions, "Where is my order?")
    token = await login(client)
    cid = rec.conversation_id

    resp = await post(client, f"/inbox/c/{cid}/reply", token, text="  It ships today!  ", list="view=mine")
    assert resp.status == 303
    assert resp.headers["Location"].startswith(f"/inbox/c/{cid}?view=mine")
    async with sessions() as db:
        outbox = (await db.exec(select(OutboxMessage))).all()
        assert len(outbox) == 1 and outbox[0].payload["text"] == "It ships today!"
        assert outbox[0].channel == Channel.webchat
        reply = await db.get(Message, outbox[0].message_id)
        assert reply.author == Author.agent and reply.agent_id == ana.id and not reply.is_internal
        conv = await db.get(Conversation, cid)
        assert conv.owner == Owner.agent and conv.assignee_id == ana.id

    resp = await post(client, f"/inbox/c/{cid}/note", token, text="Customer sounds upset")
    assert resp.status == 303
    assert await count(sessions, OutboxMessage) == 1
    async with sessions() as db:
        note = (await db.exec(select(Message).where(col(Message.is_internal).is_(True)))).one()
        assert note.text == "Customer sounds upset"

    page = await (await client.get(f"/inbox/c/{cid}")).text()
    assert 'class="msg msg-note"' in page and "Internal note" in page and "Customer sounds upset" in page
    assert 'class="msg msg-customer"' in page and ">Customer<" in page
    assert 'class="msg msg-agent"' in page and ">Ana<" in page
    assert "Sending…" in page  # delivery status of the pending reply
    assert re.search(r'<label for="reply-text">Reply</label>', page)
    assert re.search(r"<button[^>]*>Send</button>", page)

    # empty and oversized texts are refused with a message, nothing stored
    resp = await post(client, f"/inbox/c/{cid}/reply", token, text="   ")
    assert resp.status == 400 and "empty" in (await resp.text()).lower()
    resp = await client.post(f"/inbox/c/{cid}/reply", data={"text": "x" * 5000}, headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert resp.status == 400 and "too long" in (await resp.json())["error"]
    assert await count(sessions, OutboxMessage) == 1
    actions = [a for a, _ in await audit_actions(sessions, cid)]
    assert "message.agent_reply" in actions and "message.note" in actions


async def test_undeliverable_reply_is_highlighted(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    rec = await customer_says(sessions, "hi")
    token = await login(client)
    await post(client, f"/inbox/c/{rec.conversation_id}/reply", token, text="Are you there?")
    async with sessions() as db:
        row = (await db.exec(select(OutboxMessage))).one()
        row.status = "undeliverable"
        row.last_error = "blocked by user"
        msg = await db.get(Message, row.message_id)
        msg.delivery_status = "undeliverable"
        db.add(row)
        db.add(msg)
        await db.commit()
    page = await (await client.get(f"/inbox/c/{rec.conversation_id}")).text()
    assert "msg-undeliverable" in page
    assert "Not delivered: blocked by user" in page


async def test_assign_claim_status_labels_priority_hand_back_are_audited(client: Any, sessions: Any) -> None:
    ana = await add_agent(sessions)
    bo = await add_agent(sessions, "bo@shop.test", name="Bo")
    rec = await customer_says(sessions, "help")
    cid = rec.conversation_id
    await escalate(sessions, cid)
    token = await login(client)
    base = f"/inbox/c/{cid}"

    assert (await post(client, f"{base}/claim", token)).status == 303
    assert (await post(client, f"{base}/assign", token, agent_id=str(bo.id))).status == 303
    async with sessions() as db:
        assert (await db.get(Conversation, cid)).assignee_id == bo.id
    # claiming what someone else has is refused
    resp = await post(client, f"{base}/claim", token)
    assert resp.status == 400 and "someone else" in (await resp.text()).lower()
    assert (await post(client, f"{base}/unassign", token)).status == 303
    assert (await post(client, f"{base}/assign", token, agent_id="999999")).status == 400
    assert (await post(client, f"{base}/priority", token, priority="urgent")).status == 303
    assert (await post(client, f"{base}/priority", token, priority="bogus")).status == 400
    resp = await client.post(f"{base}/labels", data=[("csrf_token", token), ("labels", "VIP"), ("labels", "damaged"),
                                                     ("new_label", " Follow Up ")], allow_redirects=False)
    assert resp.status == 303
    until = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    assert (await post(client, f"{base}/status", token, status="snoozed", snoozed_until=until, tz_offset="-120")).status == 303
    async with sessions() as db:
        conv = await db.get(Conversation, cid)
        assert conv.status == ConversationStatus.snoozed
        assert conv.priority == Priority.urgent
        assert conv.labels == ["vip", "damaged", "follow up"]
        # 'until' was local time two hours ahead of UTC
        expected = datetime.strptime(until, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC) - timedelta(hours=2)
        assert conv.snoozed_until == expected
    past = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    resp = await post(client, f"{base}/status", token, status="snoozed", snoozed_until=past)
    assert resp.status == 400 and "future" in await resp.text()
    assert (await post(client, f"{base}/status", token, status="pending")).status == 303
    assert (await post(client, f"{base}/assign", token, agent_id=str(ana.id))).status == 303
    assert (await post(client, f"{base}/hand-back", token)).status == 303
    async with sessions() as db:
        conv = await db.get(Conversation, cid)
        assert conv.owner == Owner.bot and conv.assignee_id is None
    assert (await post(client, f"{base}/hand-back", token)).status == 400
    assert (await post(client, f"{base}/status", token, status="resolved")).status == 303

    actions = await audit_actions(sessions, cid)
    by_ana = [a for a, who in actions if who == ana.id]
    for expected_action in (
        "conversation.claimed",
        "conversation.assigned",
        "conversation.priority",
        "conversation.labels",
        "conversation.status",
        "conversation.handed_back",
    ):
        assert expected_action in by_ana, expected_action


async def test_other_teams_conversation_is_404_everywhere(client: Any, sessions: Any) -> None:
    async with sessions() as db:
        sales, support = Team(name="sales"), Team(name="support")
        db.add_all([sales, support])
        await db.commit()
    await add_agent(sessions, team_id=support.id)
    rec = await customer_says(sessions, "secret sales talk")
    await update_conversation(sessions, rec.conversation_id, team_id=sales.id)
    async with sessions() as db:
        db.add(CannedResponse(shortcut="hi", bodies={"en": "Hello"}))
        await db.commit()
        canned_id = (await db.exec(select(CannedResponse.id))).one()
    token = await login(client)
    cid = rec.conversation_id
    missing = 987654
    for url in (f"/inbox/c/{cid}", f"/inbox/c/{missing}"):
        resp = await client.get(url)
        assert resp.status == 404
        assert "secret sales talk" not in await resp.text()
    for part in ("head", "transcript", "sidebar"):
        assert (await client.get(f"/inbox/c/{cid}/fragments/{part}")).status == 404
    assert (await client.get(f"/inbox/c/{cid}/canned/{canned_id}")).status == 404
    for action, data in (("reply", {"text": "x"}), ("note", {"text": "x"}), ("claim", {}), ("status", {"status": "resolved"}),
                         ("labels", {"labels": "x"}), ("priority", {"priority": "low"}), ("hand-back", {}),
                         ("orders/1/cancel", {})):
        resp = await post(client, f"/inbox/c/{cid}/{action}", token, **data)
        assert resp.status == 404, action
    body = await (await client.get("/inbox?status=any&q=secret")).text()
    assert listed_ids(body) == []
    assert await count(sessions, OutboxMessage) == 0
    assert await count(sessions, Message, col(Message.is_internal).is_(True)) == 0


# --------------------------------------------------------------------------- escaping


async def _verified_customer(sessions: Any, contact_id: int, **customer_fields: Any) -> tuple[Any, Order, Any]:
    async with sessions() as db:
        customer = await make_customer(db, **customer_fields)
        order, lines = await make_order(db, [{"sku": "TEE-M", "quantity": 2, "unit_price": "20.00", "title": XSS_SCRIPT}],
                                        customer=customer, name="#1001")
        contact = await db.get(Contact, contact_id)
        await contact_link(db, contact, customer.id)
        await db.commit()
    return customer, order, lines


async def test_customer_controlled_text_is_escaped_everywhere(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    rec = await customer_says(sessions, f"{XSS_SCRIPT} and {XSS_IMG}", name=XSS_IMG)
    customer, order, lines = await _verified_customer(sessions, rec.contact_id, first_name=XSS_IMG, email="jane@example.com")
    async with sessions() as db:
        shipment = await make_shipment(db, order, lines=[(lines[0], 2)])
        shipment.tracking_url = "javascript:alert(document.cookie)"
        shipment.tracking_number = XSS_SCRIPT
        db.add(shipment)
        await db.commit()
    await login(client)
    pages = [
        await (await client.get("/inbox")).text(),
        await (await client.get(f"/inbox/c/{rec.conversation_id}")).text(),
        await (await client.get(f"/inbox/c/{rec.conversation_id}/fragments/transcript")).text(),
        await (await client.get(f"/inbox/c/{rec.conversation_id}/fragments/sidebar")).text(),
        await (await client.get("/inbox/fragments/list")).text(),
    ]
    for body in pages:
        assert "<script>alert" not in body
        assert "<img src=x" not in body
    list_page, conv_page = pages[0], pages[1]
    assert "&lt;img src=x onerror=alert(1)&gt;" in list_page  # name and preview, as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in conv_page  # message, order line, tracking number
    assert "javascript:" not in re.sub(r">[^<]*<", "><", conv_page)  # never inside a tag/attribute
    assert 'href="javascript' not in conv_page
    assert "Verified" in conv_page and order.name in conv_page


def test_safe_url_allows_only_http_https_mailto() -> None:
    assert safe_url("https://track.example/1Z") == "https://track.example/1Z"
    assert safe_url("mailto:jane@example.com") == "mailto:jane@example.com"
    for bad in ("javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
                "data:text/html,<script>", "vbscript:x", "//evil.example", "https:///nohost", "", None, 42,
                "javascript:alert(1)//http://x"):
        assert safe_url(bad) is None, bad
    assert safe_url("mailto:x@y", ("http", "https")) is None


async def test_sidebar_unverified_shows_no_orders(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    rec = await customer_says(sessions, "my email is jane@example.com, order #1001")
    async with sessions() as db:
        customer = await make_customer(db, email="jane@example.com")
        await make_order(db, customer=customer, name="#1001")
        await db.commit()
    await login(client)
    page = await (await client.get(f"/inbox/c/{rec.conversation_id}")).text()
    assert "Not verified" in page
    assert 'data-order-id' not in page


async def test_sidebar_shows_when_each_parcel_is_expected_or_was_delivered(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    rec = await customer_says(sessions, "where is it")
    _customer, order, lines = await _verified_customer(sessions, rec.contact_id)
    async with sessions() as db:
        on_the_way = await make_shipment(db, order, lines=[(lines[0], 1)], shipped_at=datetime.now(UTC) - timedelta(days=2))
        on_the_way.eta = datetime(2031, 3, 4, 20, 0, tzinfo=UTC)
        db.add(on_the_way)
        await make_shipment(db, order, lines=[(lines[0], 1)], delivered_at=datetime.now(UTC) - timedelta(days=2))
        await db.commit()
    await login(client)
    page = await (await client.get(f"/inbox/c/{rec.conversation_id}/fragments/sidebar")).text()
    assert re.search(r"Expected by <time [^>]*>Mar 4, 2031</time>", page)
    assert "Delivered 2 days ago" in page


# --------------------------------------------------------------------------- canned responses


async def test_canned_responses_render_customer_values_as_data(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    rec = await customer_says(sessions, "where is it")
    customer, order, lines = await _verified_customer(sessions, rec.contact_id, first_name="{{ 7*7 }}")
    async with sessions() as db:
        shipment = await make_shipment(db, order, lines=[(lines[0], 2)])
        shipment.tracking_url = "https://track.example/1Z5R"
        db.add(shipment)
        good = CannedResponse(shortcut="track", bodies={"en": "Hi {{ customer.first_name }}! {{ order.name }}: {{ tracking_link }}"})
        evil = CannedResponse(shortcut="evil", bodies={"en": "{{ ''.__class__.__mro__[1].__subclasses__() }}"})
        broken = CannedResponse(shortcut="broken", bodies={"en": "{% if %}"})
        db.add_all([good, evil, broken])
        await db.commit()
    await login(client)
    base = f"/inbox/c/{rec.conversation_id}/canned"
    data = await (await client.get(f"{base}/{good.id}")).json()
    assert data["text"] == "Hi {{ 7*7 }}! #1001: https://track.example/1Z5R"
    resp = await client.get(f"{base}/{evil.id}")
    assert resp.status == 422 and "cannot be used" in (await resp.json())["error"]
    resp = await client.get(f"{base}/{broken.id}")
    assert resp.status == 422
    assert (await client.get(f"{base}/999999")).status == 422
    # without JavaScript: the page pre-fills the reply box
    page = await (await client.get(f"/inbox/c/{rec.conversation_id}?canned={good.id}")).text()
    assert "Hi {{ 7*7 }}! #1001: https://track.example/1Z5R</textarea>" in page


# --------------------------------------------------------------------------- order actions


async def test_order_actions_are_audited_and_scoped_to_the_verified_customer(client: Any, sessions: Any) -> None:
    ana = await add_agent(sessions)
    rec = await customer_says(sessions, "cancel please")
    customer, order, _lines = await _verified_customer(sessions, rec.contact_id)
    async with sessions() as db:
        stranger = await make_customer(db, email="other@example.com")
        foreign, _ = await make_order(db, customer=stranger, name="#2002")
        shipped, shipped_lines = await make_order(db, customer=await db.get(type(customer), customer.id), name="#1002")
        await make_shipment(db, shipped, lines=[(shipped_lines[0], 1)], status=ShipmentStatus("in_transit"))
        await db.commit()
    token = await login(client)
    base = f"/inbox/c/{rec.conversation_id}/orders"

    resp = await post(client, f"{base}/{foreign.id}/cancel", token)
    assert resp.status == 400 and "does not belong" in await resp.text()
    resp = await post(client, f"{base}/{shipped.id}/cancel", token)
    assert resp.status == 400 and "shipped" in await resp.text()
    resp = await post(client, f"{base}/{order.id}/cancel", token)
    assert resp.status == 303
    async with sessions() as db:
        assert (await db.get(Order, order.id)).cancelled_at is not None
        assert (await db.get(Order, foreign.id)).cancelled_at is None

    resp = await post(client, f"{base}/{shipped.id}/resend-tracking", token)
    assert resp.status == 303
    async with sessions() as db:
        outbox = (await db.exec(select(OutboxMessage))).all()
        assert len(outbox) == 1 and "#1002" in outbox[0].payload["text"] and "1Z5R89390357567127" in outbox[0].payload["text"]
        system_lines = (await db.exec(select(Message).where(Message.author == Author.system))).all()
        assert all(m.is_internal for m in system_lines) and len(system_lines) == 2
    actions = await audit_actions(sessions, rec.conversation_id)
    assert ("order.cancelled", ana.id) in actions and ("order.tracking_resent", ana.id) in actions

    page = await (await client.get(f"/inbox/c/{rec.conversation_id}")).text()
    assert "Ana cancelled order #1001" in page and 'class="msg msg-system"' in page
    return_form = re.search(rf'action="/inbox/c/{rec.conversation_id}/orders/{shipped.id}/return"', page)
    assert return_form


async def test_agent_opens_a_return(client: Any, sessions: Any) -> None:
    ana = await add_agent(sessions)
    rec = await customer_says(sessions, "return please")
    customer, _order, _lines = await _verified_customer(sessions, rec.contact_id)
    async with sessions() as db:
        order, lines = await make_order(db, [{"sku": "TEE-M", "quantity": 2, "unit_price": "20.00"}],
                                        customer=await db.get(type(customer), customer.id), name="#1003",
                                        fulfillment_status="fulfilled")
        await make_shipment(db, order, lines=[(lines[0], 2)], delivered_at=datetime.now(UTC) - timedelta(days=3))
        await db.commit()
    token = await login(client)
    url = f"/inbox/c/{rec.conversation_id}/orders/{order.id}/return"
    resp = await post(client, url, token, reason="too_small", resolution="refund", method="mail")
    assert resp.status == 400 and "Pick at least one line" in await resp.text()
    resp = await post(client, url, token, **{f"line_{lines[0].id}": "1"}, reason="too_small", resolution="refund",
                      method="teleport")
    assert resp.status == 400
    resp = await post(client, url, token, **{f"line_{lines[0].id}": "1"}, reason="too_small", resolution="refund",
                      method="mail")
    assert resp.status == 303, await resp.text()
    async with sessions() as db:
        rma = (await db.exec(select(ReturnAuthorization))).one()
        assert rma.order_id == order.id and rma.created_by == "agent"
    assert ("order.return_created", ana.id) in await audit_actions(sessions, rec.conversation_id)
    page = await (await client.get(f"/inbox/c/{rec.conversation_id}")).text()
    assert rma.rma_number in page


# --------------------------------------------------------------------------- admin


async def test_admin_pages_are_404_for_agents(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    token = await login(client)
    for url in ("/inbox/admin", "/inbox/admin/agents", "/inbox/admin/canned", "/inbox/admin/labels"):
        assert (await client.get(url)).status == 404, url
    resp = await post(client, "/inbox/admin/agents", token, email="evil@shop.test", password="x" * 12, admin="on")
    assert resp.status == 404
    assert await count(sessions, Agent) == 1
    page = await (await client.get("/inbox")).text()
    assert "/inbox/admin" not in page


async def test_admin_manages_agents_canned_and_labels(client: Any, sessions: Any) -> None:
    boss = await add_agent(sessions, "boss@shop.test", name="Boss", admin=True)
    token = await login(client, "boss@shop.test")
    resp = await post(client, "/inbox/admin/agents", token, email="new@shop.test", name="Newbie", password="")
    assert resp.status == 303
    page = await (await client.get("/inbox/admin/agents")).text()
    generated = re.search(r"Their password is (\S+) ", page)
    assert generated, "a generated password is shown once"
    assert "Their password is" not in await (await client.get("/inbox/admin/agents")).text()
    async with sessions() as db:
        newbie = (await db.exec(select(Agent).where(Agent.email == "new@shop.test"))).one()
    resp = await post(client, "/inbox/admin/agents", token, email="new@shop.test", password="x" * 12)
    assert resp.status == 400 and "already exists" in await resp.text()
    resp = await post(client, "/inbox/admin/agents", token, email="short@shop.test", password="short")
    assert resp.status == 400

    url = f"/inbox/admin/agents/{newbie.id}"
    assert (await post(client, url, token, action="make_admin")).status == 303
    assert (await post(client, url, token, action="slack", slack_user_id="u0123abcd")).status == 303
    assert (await post(client, url, token, action="slack", slack_user_id="<script>")).status == 400
    assert (await post(client, url, token, action="deactivate")).status == 303
    async with sessions() as db:
        row = await db.get(Agent, newbie.id)
        assert row.is_admin and row.slack_user_id == "U0123ABCD" and not row.is_active
        assert row.session_version == newbie.session_version + 1
    # no self-lockout
    assert (await post(client, f"/inbox/admin/agents/{boss.id}", token, action="deactivate")).status == 400
    assert (await post(client, f"/inbox/admin/agents/{boss.id}", token, action="make_agent")).status == 400

    resp = await post(client, "/inbox/admin/canned", token, shortcut="thanks", title="Thanks", body="Thanks {{ customer.first_name }}")
    assert resp.status == 303
    resp = await post(client, "/inbox/admin/canned", token, shortcut="bad", body="{% for %}")
    assert resp.status == 400 and "template error" in (await resp.text()).lower()
    resp = await post(client, "/inbox/admin/canned", token, shortcut="thanks", body="dup")
    assert resp.status == 400
    resp = await post(client, "/inbox/admin/labels", token, name=" VIP ", color="#b45309")
    assert resp.status == 303
    resp = await post(client, "/inbox/admin/labels", token, name="x", color="red;background:url(x)")
    assert resp.status == 400
    async with sessions() as db:
        assert (await db.exec(select(CannedResponse.shortcut))).all() == ["thanks"]
        label = (await db.exec(select(Label))).one()
        assert label.name == "vip" and label.color == "#b45309"
    assert (await post(client, f"/inbox/admin/labels/{label.id}/delete", token)).status == 303
    assert await count(sessions, Label) == 0
    async with sessions() as db:
        canned_id = (await db.exec(select(CannedResponse.id))).one()
    assert (await post(client, f"/inbox/admin/canned/{canned_id}/delete", token)).status == 303
    assert (await post(client, f"/inbox/admin/canned/{canned_id}/delete", token)).status == 404
    assert await count(sessions, CannedResponse) == 0
    async with sessions() as db:
        actions = (await db.exec(select(AuditEvent.action).where(AuditEvent.agent_id == boss.id))).all()
    assert {"agent.created", "agent.make_admin", "agent.deactivate", "canned.saved", "label.saved",
            "label.deleted", "canned.deleted"} <= set(actions)


# --------------------------------------------------------------------------- live updates


async def test_agent_socket_needs_session_and_origin(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    resp = await client.get("/inbox/ws", headers={"Origin": "http://127.0.0.1:8080"})
    assert resp.status == 401
    await login(client)
    resp = await client.get("/inbox/ws", headers={"Origin": "https://evil.example", "Upgrade": "websocket",
                                                  "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                                                  "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert resp.status == 403


async def _receive_until(ws: Any, predicate: Any, timeout: float = 30.0) -> dict[str, Any]:
    async def loop() -> dict[str, Any]:
        while True:
            frame = json.loads((await ws.receive()).data)
            if predicate(frame):
                return frame

    return await asyncio.wait_for(loop(), timeout)


async def test_live_events_and_presence(aiohttp_client: Any, sessions: Any, web_app: WebApp) -> None:
    ana_client = await aiohttp_client(web_app.app)
    from aiohttp.test_utils import TestClient

    bo_client = TestClient(ana_client.server)
    await bo_client.start_server()
    try:
        await add_agent(sessions)
        await add_agent(sessions, "bo@shop.test", name="Bo")
        rec = await customer_says(sessions, "first")
        await login(ana_client)
        await login(bo_client, "bo@shop.test")
        origin = {"Origin": "http://127.0.0.1:8080"}
        ana_ws = await ana_client.ws_connect("/inbox/ws", headers=origin)
        bo_ws = await bo_client.ws_connect("/inbox/ws", headers=origin)
        await _receive_until(ana_ws, lambda f: f["type"] == "hello")
        await _receive_until(bo_ws, lambda f: f["type"] == "hello")

        second = await customer_says(sessions, "<b>second</b> message", key="k2")
        frame = await _receive_until(ana_ws, lambda f: f["type"] == "message.created")
        assert frame == {"type": "message.created", "conversation_id": second.conversation_id,
                         "message_id": second.message_id, "author": "customer"}  # ids only, never text

        await ana_ws.send_json({"type": "view", "conversation_id": rec.conversation_id})
        await bo_ws.send_json({"type": "view", "conversation_id": rec.conversation_id})
        frame = await _receive_until(ana_ws, lambda f: f["type"] == "presence" and len(f["viewers"]) == 2)
        assert {v["name"] for v in frame["viewers"]} == {"Ana", "Bo"}
        page = await (await ana_client.get(f"/inbox/c/{rec.conversation_id}")).text()
        assert "Bo is viewing" in page
        await bo_ws.close()
        frame = await _receive_until(ana_ws, lambda f: f["type"] == "presence" and len(f["viewers"]) == 1)
        assert frame["viewers"][0]["name"] == "Ana"
        # an inaccessible / unknown conversation registers no presence
        await ana_ws.send_json({"type": "view", "conversation_id": 999999})
        frame = await _receive_until(ana_ws, lambda f: f["type"] == "presence")
        assert frame == {"type": "presence", "conversation_id": None, "viewers": []}
        await ana_ws.close()
        await asyncio.sleep(0.05)
        assert web_app.state.agents.count == 0
    finally:
        await bo_client.close()


async def test_live_events_respect_team_access(client: Any, sessions: Any) -> None:
    async with sessions() as db:
        sales, support = Team(name="sales"), Team(name="support")
        db.add_all([sales, support])
        await db.commit()
    await add_agent(sessions, team_id=support.id)
    hidden = await customer_says(sessions, "for sales only", contact="v-sales-000000000001")
    await update_conversation(sessions, hidden.conversation_id, team_id=sales.id)
    await login(client)
    ws = await client.ws_connect("/inbox/ws", headers={"Origin": "http://127.0.0.1:8080"})
    await _receive_until(ws, lambda f: f["type"] == "hello")
    await customer_says(sessions, "more for sales", contact="v-sales-000000000001", key="s2")
    visible = await customer_says(sessions, "open to all", contact="v-all-0000000000000001")
    frame = await _receive_until(ws, lambda f: f["type"] == "message.created")
    # the first notice this agent gets is about the visible conversation, never the sales one
    assert frame["conversation_id"] == visible.conversation_id
    await ws.close()
