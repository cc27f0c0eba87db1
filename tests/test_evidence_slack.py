"""The dispute evidence bundle attached to a conversation's Slack thread (files_upload_v2 against
the loopback fake): the action's event becomes a durable outbox notice, the Slack sender uploads
the PDF and the JSON once into the escalation thread, without the customer's email."""

from __future__ import annotations

import json
from io import BytesIO
from typing import Any

from pypdf import PdfReader
from sqlmodel import select

from inbox.actions.evidence_bundle import evidence_bundle
from inbox.models import Contact, Conversation, OutboxMessage
from shopbase.clock import utcnow
from tests.ordersvc_builders import make_customer, make_order, make_shipment
from tests.test_slack import ALERTS, customer_conversation, env, escalate, fake  # noqa: F401  (fixtures)


async def test_the_bundle_is_uploaded_into_the_escalation_thread(env: Any) -> None:  # noqa: F811
    async with env.sessions() as s:
        customer = await make_customer(s, first_name="Lan", last_name="Nguyễn", email="lan@example.com")
        order, lines = await make_order(s, name="#1001", customer=customer)
        await make_shipment(s, order, lines=[(lines[0], 1)])
        await s.commit()
    conversation_id = await customer_conversation(env.sessions, text="my parcel never arrived")
    alert = await escalate(env, conversation_id, order_id=order.id)
    async with env.sessions() as s:
        conversation = await s.get(Conversation, conversation_id)
        contact = await s.get(Contact, conversation.contact_id)
        contact.customer_id, contact.verified_at = customer.id, utcnow()
        s.add(contact)
        await s.commit()

    async with env.sessions() as s:
        conversation = await s.get(Conversation, conversation_id)
        await evidence_bundle(s, conversation, agent=None, order_id=order.id, share="slack")
        await s.commit()
    await env.idle()

    files = env.fake.shared_files(ALERTS)
    assert [f["filename"] for f in files] == [f"evidence-1001-c{conversation_id}.pdf",
                                              f"evidence-1001-c{conversation_id}.json"]
    assert all(f["thread_ts"] == alert["ts"] for f in files)
    assert f"conversation #{conversation_id}" in files[0]["comment"] and "#1001" in files[0]["comment"]
    pdf_text = " ".join(" ".join(p.extract_text() or "" for p in PdfReader(BytesIO(files[0]["data"])).pages).split())
    assert "Order #1001" in pdf_text and "my parcel never arrived" in pdf_text and "1Z5R89390357567127" in pdf_text
    assert "lan@example.com" not in pdf_text  # no customer email in Slack
    data = json.loads(files[1]["data"])
    assert data["orders"][0]["name"] == "#1001" and data["transcript"]["count"] == 1
    assert "lan@example.com" not in files[1]["data"].decode()
    async with env.sessions() as s:
        notices = (await s.exec(select(OutboxMessage).where(OutboxMessage.contact_id.is_(None)))).all()
    uploads = [n for n in notices if (n.payload.get("event") or {}).get("type") == "evidence.shared"]
    assert len(uploads) == 1 and uploads[0].status == "sent"
    assert len(env.fake.calls_for("files.completeUploadExternal")) == 1
