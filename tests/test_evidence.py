"""The dispute evidence bundle: PDF (text extracted and checked) and JSON, through the agents' routes.

An order with two shipments (one delivered, with its tracking history and delivery scan), a
return and a refund; a conversation in which the customer writes in several scripts. The PDF
is read back with pypdf (and poppler's pdftotext for the Chinese one), the JSON compared with
what was stored. Bad input: an order with no shipments, a conversation of 10,000 messages
(a bounded PDF that says what it left out, a JSON with everything), orders and conversations
that are not the agent's to see, and a Slack share without a thread.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import BytesIO
from typing import Any

import pytest
import sqlalchemy as sa
from pypdf import PdfReader
from sqlmodel import col, select

from inbox.events import EventType
from inbox.models import (
    AuditEvent,
    Author,
    Channel,
    Contact,
    Conversation,
    Direction,
    ExternalThread,
    Message,
    Team,
)
from ordersvc.documents import fonts
from ordersvc.models import (
    Refund,
    ReturnAuthorization,
    ReturnLine,
    ReturnReason,
    RmaStatus,
    TrackingEvent,
)
from ordersvc.tracking import ShipmentStatus
from shopbase.formatting import format_datetime
from tests.ordersvc_builders import make_customer, make_order, make_shipment
from tests.web_helpers import add_agent, build_web_app, customer_says, fast_hashing, login, make_config  # noqa: F401

PLACED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
DELIVERED = datetime(2026, 3, 6, 15, 42, tzinfo=UTC)
MESSAGES = [
    "Hi, my parcel never arrived, order #5150",
    "Мой заказ так и не пришёл",
    "我的包裹还没到",
    "<b>not bold</b> & friends",
]


@dataclass
class Case:
    client: Any
    web: Any
    sessions: Any
    conversation_id: int
    order_id: int
    empty_order_id: int
    other_order_id: int
    csrf: str


def pdf_text(body: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(BytesIO(body)).pages)


async def seed(sessions: Any) -> tuple[int, int, int, int]:
    """A verified customer's conversation; returns (conversation, order, order without shipments, stranger's order)."""
    for i, text in enumerate(MESSAGES):
        result = await customer_says(sessions, text, key=f"k{i}")
    async with sessions() as db:
        customer = await make_customer(db, first_name="Ada", last_name="Lovelace", email="ada@example.com")
        order, lines = await make_order(db, [{"sku": "TEE-M", "quantity": 2, "unit_price": "20.00"},
                                             {"sku": "CAP", "quantity": 1, "unit_price": "15.50"}],
                                        name="#5150", customer=customer, placed_at=PLACED, currency="EUR")
        delivered = await make_shipment(db, order, lines=[(lines[0], 2)], shipped_at=PLACED + timedelta(days=1),
                                        delivered_at=DELIVERED)
        await make_shipment(db, order, lines=[(lines[1], 1)], shipped_at=PLACED + timedelta(days=2))
        assert delivered.id is not None
        db.add_all([
            TrackingEvent(shipment_id=delivered.id, occurred_at=PLACED + timedelta(days=1), status=ShipmentStatus.IN_TRANSIT,
                          message="Departed facility", location="Leipzig DE"),
            TrackingEvent(shipment_id=delivered.id, occurred_at=DELIVERED, status=ShipmentStatus.DELIVERED,
                          message="Delivered, left at front door", location="Berlin DE"),
        ])
        rma = ReturnAuthorization(rma_number="RMA-5150-1", order_id=order.id or 0, customer_id=customer.id,
                                  status=RmaStatus.requested, currency="EUR", requested_at=DELIVERED + timedelta(days=1))
        db.add(rma)
        await db.flush()
        db.add(ReturnLine(rma_id=rma.id or 0, order_line_id=lines[1].id or 0, quantity=1, reason=ReturnReason.damaged,
                          reason_note="crushed box"))
        db.add(Refund(order_id=order.id or 0, amount=Decimal("15.50"), currency="EUR",
                      processed_at=DELIVERED + timedelta(days=3)))
        empty, _ = await make_order(db, name="#5151", customer=customer, placed_at=PLACED + timedelta(days=5))
        stranger = await make_customer(db, email="someone@example.com")
        other, _ = await make_order(db, name="#9999", customer=stranger)
        contact = await db.get(Contact, result.contact_id)
        assert contact is not None
        contact.customer_id = customer.id
        contact.verified_at = PLACED
        db.add(contact)
        await db.commit()
        return result.conversation_id, order.id or 0, empty.id or 0, other.id or 0


@pytest.fixture
async def case(aiohttp_client: Any, sessions: Any) -> Case:
    web = build_web_app(sessions, config=make_config(shop_timezone="Europe/Berlin"))
    client = await aiohttp_client(web.app)
    await add_agent(sessions, "boss@shop.test", name="Boss", admin=True)
    csrf = await login(client, "boss@shop.test")
    cid, oid, empty, other = await seed(sessions)
    return Case(client, web, sessions, cid, oid, empty, other, csrf)


async def test_the_order_bundle_as_pdf_and_json(case: Case) -> None:
    resp = await case.client.get(f"/inbox/c/{case.conversation_id}/evidence.pdf?order={case.order_id}")
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/pdf"
    assert resp.headers["Content-Disposition"] == f'attachment; filename="evidence-5150-c{case.conversation_id}.pdf"'
    assert "no-store" in resp.headers["Cache-Control"]
    text = pdf_text(await resp.read())
    flat = " ".join(text.split())
    for expected in ("Dispute evidence", "Order #5150", "Payment status: Paid", "Fulfillment", "Status: Delivered",
                     "Requested", "In transit",
                     "1Z5R89390357567127", "Departed facility", "Leipzig DE",
                     "Proof of delivery", "Berlin DE", "Delivered, left at front door",
                     "RMA-5150-1", "Arrived damaged", "crushed box", "Conversation transcript",
                     "4 messages", MESSAGES[0], "<b>not bold</b> & friends", "Ada Lovelace"):
        assert expected in flat, expected
    if fonts().unicode:
        assert MESSAGES[1] in flat
    # timestamps in the shop's time zone (Berlin: UTC+1 in March)
    assert " ".join(format_datetime(DELIVERED, "en", "Europe/Berlin").split()) in flat
    assert "4:42" in format_datetime(DELIVERED, "en", "Europe/Berlin")
    assert "€" in flat  # money in the order's currency

    resp = await case.client.get(f"/inbox/c/{case.conversation_id}/evidence.json?order={case.order_id}")
    assert resp.status == 200
    assert resp.headers["Content-Disposition"].endswith('.json"')
    data = json.loads(await resp.read())
    assert data["format"] == "shopdesk.dispute_evidence" and data["order_id"] == case.order_id
    (order,) = data["orders"]
    assert order["name"] == "#5150" and order["payment"]["total"] == "55.50"
    assert order["payment"]["refunds"][0]["amount"] == "15.50"
    first, second = order["fulfillment"]["shipments"]
    assert [e["location"] for e in first["tracking_events"]] == ["Leipzig DE", "Berlin DE"]  # oldest first
    assert first["proof_of_delivery"]["location"] == "Berlin DE"
    assert first["proof_of_delivery"]["delivered_at"] == DELIVERED.isoformat()
    assert second["proof_of_delivery"] is None
    assert order["returns"][0]["lines"][0]["reason"] == "damaged"
    assert [m["text"] for m in data["transcript"]["messages"]] == MESSAGES
    assert all(m["author"] == "customer" and m["at"] for m in data["transcript"]["messages"])

    async with case.sessions() as db:
        audits = (await db.exec(select(AuditEvent).where(AuditEvent.action == "evidence.bundled"))).all()
    assert [a.detail["output"] for a in audits] == ["pdf", "json"]
    assert all(a.detail["order_id"] == case.order_id and a.agent_id is not None for a in audits)


async def test_the_conversation_bundle_holds_the_customers_orders(case: Case) -> None:
    resp = await case.client.get(f"/inbox/c/{case.conversation_id}/evidence.json")
    assert resp.status == 200
    data = json.loads(await resp.read())
    assert data["order_id"] is None
    assert [o["name"] for o in data["orders"]] == ["#5151", "#5150"]  # newest first, the stranger's left out
    resp = await case.client.get(f"/inbox/c/{case.conversation_id}/evidence.pdf")
    assert resp.status == 200
    assert resp.headers["Content-Disposition"] == f'attachment; filename="evidence-c{case.conversation_id}.pdf"'
    flat = " ".join(pdf_text(await resp.read()).split())
    assert "Order #5150" in flat and "Order #5151" in flat and "#9999" not in flat


async def test_an_order_with_no_shipments(case: Case) -> None:
    resp = await case.client.get(f"/inbox/c/{case.conversation_id}/evidence.pdf?order={case.empty_order_id}")
    assert resp.status == 200
    flat = " ".join(pdf_text(await resp.read()).split())
    assert "No shipments were recorded for this order." in flat and "No returns." in flat
    data = json.loads(await (await case.client.get(
        f"/inbox/c/{case.conversation_id}/evidence.json?order={case.empty_order_id}")).read())
    assert data["orders"][0]["fulfillment"]["shipments"] == [] and data["orders"][0]["returns"] == []


async def test_ten_thousand_messages_give_a_bounded_pdf_and_a_complete_json(case: Case) -> None:
    from inbox.evidence_pdf import MAX_MESSAGES

    now = datetime.now(UTC)
    rows = [{"conversation_id": case.conversation_id, "channel": Channel.webchat, "direction": Direction.outbound
             if i % 2 else Direction.inbound, "author": Author.bot if i % 2 else Author.customer, "is_internal": False,
             "text": f"message number {i} " + "lorem ipsum " * 30, "attachments": [], "quick_replies": [],
             "processed": True, "created_at": now + timedelta(seconds=i)} for i in range(10_000 - len(MESSAGES))]
    async with case.sessions() as db:
        await db.exec(sa.insert(Message), params=rows)  # type: ignore[call-overload]
        await db.commit()
    resp = await case.client.get(f"/inbox/c/{case.conversation_id}/evidence.pdf?order={case.order_id}")
    assert resp.status == 200
    body = await resp.read()
    reader = PdfReader(BytesIO(body))
    assert len(reader.pages) < 200
    flat = " ".join(pdf_text(body).split())
    omitted = 10_000 - MAX_MESSAGES
    assert f"{omitted:,} more messages omitted, see the JSON file." in flat
    assert "10,000 messages" in flat
    assert MESSAGES[0] in flat  # the start of the dispute
    assert f"message number {10_000 - len(MESSAGES) - 1} " in flat  # and how it ended
    assert "message number 5000 " not in flat

    data = json.loads(await (await case.client.get(f"/inbox/c/{case.conversation_id}/evidence.json")).read())
    assert data["transcript"]["count"] == 10_000 and len(data["transcript"]["messages"]) == 10_000
    assert data["transcript"]["messages"][5000]["text"].startswith(f"message number {5000 - len(MESSAGES)} ")


async def test_internal_notes_stay_out(case: Case) -> None:
    resp = await case.client.post(f"/inbox/c/{case.conversation_id}/note",
                                  data={"text": "internal: customer seems to be lying", "csrf_token": case.csrf},
                                  allow_redirects=False)
    assert resp.status == 303
    data = json.loads(await (await case.client.get(f"/inbox/c/{case.conversation_id}/evidence.json")).read())
    assert all("lying" not in m["text"] for m in data["transcript"]["messages"])


async def test_orders_and_conversations_that_are_not_the_agents_to_see(case: Case) -> None:
    c, cid = case.client, case.conversation_id
    for query in (f"order={case.other_order_id}", "order=abc", "order=-1", "order=99999999999", "order=%C2%B2"):
        resp = await c.get(f"/inbox/c/{cid}/evidence.pdf?{query}", headers={"Accept": "application/json"})
        assert resp.status == 404, query
        assert (await resp.json())["error"] == "That order does not belong to this customer."
    resp = await c.get("/inbox/c/987654/evidence.json", headers={"Accept": "application/json"})
    assert resp.status == 404
    # an agent of another team does not see the conversation at all
    async with case.sessions() as db:
        team, other = Team(name="Elsewhere"), Team(name="Returns")
        db.add_all([team, other])
        await db.flush()
        conversation = await db.get(Conversation, cid)
        assert conversation is not None
        conversation.team_id = team.id
        db.add(conversation)
        await db.commit()
        other_id = other.id
    await add_agent(case.sessions, "ana@shop.test", team_id=other_id)
    await c.post("/logout", data={"csrf_token": case.csrf})
    csrf = await login(c, "ana@shop.test")
    resp = await c.get(f"/inbox/c/{cid}/evidence.pdf?order={case.order_id}", headers={"Accept": "application/json"})
    assert resp.status == 404
    # signed out: no file
    await c.post("/logout", data={"csrf_token": csrf})
    resp = await c.get(f"/inbox/c/{cid}/evidence.json", allow_redirects=False)
    assert resp.status in (302, 303, 401)


async def test_an_unverified_customer_has_no_orders_in_the_bundle(case: Case) -> None:
    async with case.sessions() as db:
        await db.exec(sa.update(Contact).values(verified_at=None))  # type: ignore[call-overload]
        await db.commit()
    resp = await case.client.get(f"/inbox/c/{case.conversation_id}/evidence.pdf?order={case.order_id}",
                                 headers={"Accept": "application/json"})
    assert resp.status == 403
    resp = await case.client.get(f"/inbox/c/{case.conversation_id}/evidence.pdf")
    assert resp.status == 200
    flat = " ".join(pdf_text(await resp.read()).split())
    assert "No orders: the customer is not verified or has no orders." in flat and MESSAGES[0] in flat


async def test_sharing_to_slack_needs_a_thread(case: Case) -> None:
    url = f"/inbox/c/{case.conversation_id}/evidence/slack"
    resp = await case.client.post(url, data={"order": str(case.order_id), "csrf_token": case.csrf},
                                  headers={"Accept": "application/json"}, allow_redirects=False)
    assert resp.status == 409
    assert "no Slack thread" in (await resp.json())["error"]
    async with case.sessions() as db:
        db.add(ExternalThread(conversation_id=case.conversation_id, kind="slack", channel_ref="C1", thread_ref="1.2"))
        await db.commit()
    resp = await case.client.post(url, data={"order": str(case.order_id), "csrf_token": case.csrf},
                                  allow_redirects=False)
    assert resp.status == 303
    await case.web.bus.wait_idle()
    shared = [e for e in case.web.events if e.type == EventType.evidence_shared.value]
    assert len(shared) == 1 and shared[0].data["order_id"] == case.order_id
    # without the CSRF token: refused, nothing shared
    resp = await case.client.post(url, data={"order": str(case.order_id)}, allow_redirects=False)
    assert resp.status == 403


@pytest.mark.skipif(not shutil.which("pdftotext") or not fonts().cjk, reason="poppler-utils / CJK font missing")
async def test_the_bundle_is_in_the_shops_language_and_cjk_safe(aiohttp_client: Any, sessions: Any) -> None:
    web = build_web_app(sessions, config=make_config(default_language="zh-Hans", shop_timezone="Asia/Shanghai"))
    client = await aiohttp_client(web.app)
    await add_agent(sessions, "boss@shop.test", name="Boss", admin=True)
    await login(client, "boss@shop.test")
    cid, oid, _empty, _other = await seed(sessions)
    resp = await client.get(f"/inbox/c/{cid}/evidence.pdf?order={oid}")
    assert resp.status == 200
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=await resp.read(), capture_output=True,
                         check=True).stdout.decode()
    flat = "".join(out.split())
    for expected in ("争议证据", "订单#5150", "签收证明", "会话记录", "我的包裹还没到", "Мойзаказтакинепришёл"):
        assert expected in flat, expected
    assert "Dispute evidence" not in out


async def test_statuses_are_printed_in_the_shops_language(aiohttp_client: Any, sessions: Any) -> None:
    """Payment, fulfillment, shipment, tracking and return statuses are the inbox's labels in the
    shop's language, never the stored words."""
    web = build_web_app(sessions, config=make_config(default_language="ru", shop_timezone="Europe/Moscow"))
    client = await aiohttp_client(web.app)
    await add_agent(sessions, "boss@shop.test", name="Boss", admin=True)
    await login(client, "boss@shop.test")
    cid, oid, _empty, _other = await seed(sessions)
    resp = await client.get(f"/inbox/c/{cid}/evidence.pdf?order={oid}")
    assert resp.status == 200
    flat = " ".join(pdf_text(await resp.read()).split())
    if not fonts().unicode:
        pytest.skip("no Unicode font for Cyrillic")
    # paid, in transit (a scan), delivered (shipment and scan), requested (the return), refund (its resolution)
    for expected in ("Оплачен", "В пути", "Доставлен", "Запрошен", "Возврат денег"):
        assert expected in flat, expected
    for raw in ("paid", "in transit", "delivered", "requested", "Paid", "Delivered", "Requested"):
        assert f": {raw}" not in flat and f" {raw} " not in f" {flat} ", raw


def test_a_status_label_falls_back_to_english_without_a_catalog() -> None:
    from inbox.evidence_pdf import _status_label
    from ordersvc.models import FinancialStatus, RmaStatus

    assert _status_label(FinancialStatus.partially_refunded, "es") == "Reembolsado en parte"
    assert _status_label(FinancialStatus.partially_refunded, "zh_Hant") == _status_label(
        FinancialStatus.partially_refunded, "zh-Hant") != "Partially refunded"
    assert _status_label(FinancialStatus.partially_refunded, "de") == "Partially refunded"
    assert _status_label(RmaStatus.label_issued, None) == "Label issued"
    assert _status_label("something_new", "ru") == "Something new"


async def test_the_action_writes_one_audit_row_and_nothing_on_refusal(sessions: Any) -> None:
    from inbox.actions.evidence_bundle import evidence_bundle
    from shopbase.refusal import Refused

    cid, oid, _empty, other = await seed(sessions)
    async with sessions() as db:
        conversation = await db.get(Conversation, cid)
        assert conversation is not None
        with pytest.raises(Refused):
            await evidence_bundle(db, conversation, agent=None, order_id=other)
        await db.rollback()
        await db.refresh(conversation)
        with pytest.raises(Refused):
            await evidence_bundle(db, conversation, agent=None, order_id=oid, share="email")
        await db.rollback()
        await db.refresh(conversation)
        evidence = await evidence_bundle(db, conversation, agent=None, order_id=oid)
        await db.commit()
    assert [o.order.name for o in evidence.orders] == ["#5150"] and len(evidence.messages) == len(MESSAGES)
    async with sessions() as db:
        count = (await db.exec(select(sa.func.count()).select_from(AuditEvent)
                               .where(col(AuditEvent.action) == "evidence.bundled"))).one()
    assert count == 1
