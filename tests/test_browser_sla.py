"""Issue 14 in a real browser (Debian Chromium through Playwright): SLA countdown colours in the
list and the conversation head (and turning amber as time passes), the hand-off sentence with its
details one click away, applying a macro by keyboard, and overriding a return refusal with a
reason from the order sidebar."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from inbox.actions.canned_save import canned_save
from inbox.actions.contact_link import contact_link
from inbox.actions.conversation_escalate import conversation_escalate
from inbox.actions.macro_save import macro_save
from inbox.actions.message_record import message_record
from inbox.actions.sla_policy_save import sla_policy_save
from inbox.messages import InboundMessage
from inbox.models import Agent, AuditEvent, Channel, Contact, Conversation, Message
from ordersvc.models import ReturnAuthorization
from ordersvc.tracking import ShipmentStatus
from tests.browser import (  # noqa: F401  (browser_fixture provides the ``browser`` fixture)
    LiveServer,
    browser_fixture,
    sign_in,
    start_live_server,
    watch,
)
from tests.ordersvc_builders import make_customer, make_order, make_shipment
from tests.web_helpers import PASSWORD, add_agent, fast_hashing  # noqa: F401

pytestmark = pytest.mark.browser
TIMEOUT = 10_000
ALWAYS = {day: ["00:00", "24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
HANDOFF = {"reason": "late_shipment", "intent": "track_order", "confidence": 0.47, "order": "#1003",
           "said": ["wismo_status", "wismo_sorry_late"], "facts": {"days_since_scan": 7}}


@pytest.fixture
async def server(aiohttp_server: Any, sqlite_url: str) -> AsyncIterator[LiveServer]:
    async for live in start_live_server(aiohttp_server, sqlite_url):
        yield live


async def _customer(sessions: Any, external_id: str, name: str, text: str) -> int:
    rec = await message_record(sessions, InboundMessage(channel=Channel.telegram, dedupe_key=f"u-{external_id}",
                                                        contact_external_id=external_id, text=text,
                                                        display_name=name))
    return rec.conversation_id


async def _escalate(sessions: Any, cid: int, *, due_in: timedelta | None = None,
                    context: dict[str, Any] | None = None) -> None:
    async with sessions() as db:
        conv = await db.get(Conversation, cid)
        await conversation_escalate(db, conv, priority="normal", summary="intent: track_order (47%)",
                                    reason="late_shipment", context=context)
        if due_in is not None:
            conv.sla_due_at = datetime.now(UTC) + due_in
        await db.commit()


async def _seed(sessions: Any) -> dict[str, int]:
    admin = await add_agent(sessions, "ana@shop.test", name="Ana Lopez", admin=True)
    async with sessions() as db:
        await sla_policy_save(db, {"timezone": "UTC", "hours": ALWAYS, "warn_minutes": 30}, by=admin)
        await db.commit()
    ids = {}
    for key, name, due in (("ok", "Olivia Ok", timedelta(minutes=45)), ("warn", "Walter Warn", timedelta(minutes=10)),
                           ("late", "Lena Late", timedelta(minutes=-5))):
        ids[key] = await _customer(sessions, f"tg-{key}", name, f"Hello from {name}")
        await _escalate(sessions, ids[key], due_in=due, context=HANDOFF if key == "late" else None)
    return ids


async def _agent_page(browser: Any, server: LiveServer, *, clock: bool = False) -> tuple[Any, Any]:
    ctx = await browser.new_context(viewport={"width": 1440, "height": 900})
    page = await ctx.new_page()
    seen = await watch(page)
    if clock:
        await page.clock.install()
    await sign_in(page, server, "ana@shop.test", PASSWORD)
    return page, seen


async def test_sla_countdowns_are_green_amber_red_and_turn_amber_as_time_passes(browser: Any,
                                                                                server: LiveServer) -> None:
    from playwright.async_api import expect

    ids = await _seed(server.sessions)
    page, seen = await _agent_page(browser, server, clock=True)
    await page.goto(server.at("/inbox?view=unassigned"))
    rows = {key: page.locator(f'.conv-item[data-id="{cid}"] .sla') for key, cid in ids.items()}
    await expect(rows["ok"]).to_have_class("sla sla-ok")
    await expect(rows["warn"]).to_have_class("sla sla-warn")
    await expect(rows["late"]).to_have_class("sla sla-breached")
    await expect(rows["late"].locator(".sla-label")).to_have_text("Overdue")
    await expect(rows["ok"].locator(".sla-label")).to_have_text("Reply due")
    # the queue puts the soonest due first within a priority
    order = await page.locator(".conv-item").evaluate_all("els => els.map(e => e.dataset.id)")
    assert order == [str(ids["late"]), str(ids["warn"]), str(ids["ok"])]

    # twenty minutes later the green one is amber, the amber one red (sla.js ticks without a reload)
    await page.clock.fast_forward("20:00")
    await expect(rows["ok"]).to_have_class("sla sla-warn", timeout=TIMEOUT)
    await expect(rows["warn"]).to_have_class("sla sla-breached", timeout=TIMEOUT)

    # the conversation head shows the same countdown
    await page.goto(server.at(f"/inbox/c/{ids['late']}"))
    head = page.locator("#conv-sla .sla")
    await expect(head).to_have_class("sla sla-breached")
    assert await head.get_attribute("data-sla-due")
    if os.environ.get("SHOPDESK_SCREENSHOTS"):
        await page.screenshot(path=os.path.join(os.environ["SHOPDESK_SCREENSHOTS"], "sla-inbox.png"))
    seen.assert_clean()


async def test_the_handoff_sentence_and_its_details(browser: Any, server: LiveServer) -> None:
    from playwright.async_api import expect

    ids = await _seed(server.sessions)
    page, seen = await _agent_page(browser, server)
    await page.goto(server.at(f"/inbox/c/{ids['late']}"))
    sentence = page.locator(".handoff-sentence")
    await expect(sentence).to_have_text(
        "Asked where order #1003 is; the parcel has had no scan for 7 days; the bot apologised and promised a person")
    details = page.locator("#handoff details dl")
    await expect(details).to_be_hidden()
    await page.get_by_text("What the bot knew").click()
    await expect(details).to_be_visible()
    await expect(details).to_contain_text("track order (47%)")
    await expect(details).to_contain_text("#1003")
    seen.assert_clean()


async def test_a_macro_fills_the_composer_by_shortcut_and_resolves_on_send(browser: Any, server: LiveServer) -> None:
    from playwright.async_api import expect

    ids = await _seed(server.sessions)
    async with server.sessions() as db:
        admin = (await db.exec(select(Agent).where(Agent.email == "ana@shop.test"))).one()
        canned = await canned_save(db, "photo", "Ask for a photo",
                                   {"en": "Could you send a photo of it, {{ customer.display_name }}?"}, by=admin)
        await macro_save(db, name="Ask for a photo", by=admin, shortcut="p", canned_id=canned.id, status="pending",
                         add_labels=["needs-photo"], assign="me")
        await db.commit()
    page, seen = await _agent_page(browser, server)
    cid = ids["warn"]
    await page.goto(server.at(f"/inbox/c/{cid}"))
    await expect(page.locator("#macros-menu summary")).to_be_visible()
    await page.locator("#reply-text").fill("Hello! ")
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    await page.keyboard.press("m")
    await expect(page.locator("#macros-menu")).to_have_attribute("open", "")
    await page.keyboard.press("p")
    # the reply is in the composer after the agent's draft, not sent; labels and assignment are done
    await expect(page.locator("#reply-text")).to_have_value("Hello! Could you send a photo of it, Walter?",
                                                            timeout=TIMEOUT)
    await expect(page.locator("#macro-pending")).to_contain_text("sets the status to Pending")
    await expect(page.locator(".conv-head .badge-label")).to_have_text("needs-photo", timeout=TIMEOUT)
    await expect(page.locator("#conv-status")).to_contain_text("Open")
    async with server.sessions() as db:
        sent = (await db.exec(select(Message).where(Message.conversation_id == cid, Message.author == "agent"))).all()
    assert sent == []
    # the agent edits it and sends: the reply goes out, then the status changes
    await page.locator("#reply-text").fill("Could you send a photo of the box, Walter?")
    await page.locator("#reply-form button[type=submit].btn-primary").click()
    await expect(page.locator("#conv-status")).to_contain_text("Pending", timeout=TIMEOUT)
    async with server.sessions() as db:
        conv = await db.get(Conversation, cid)
        sent = (await db.exec(select(Message).where(Message.conversation_id == cid, Message.author == "agent"))).all()
        audit = (await db.exec(select(AuditEvent.action).where(AuditEvent.conversation_id == cid,
                                                               AuditEvent.action.like("macro.%")))).all()
    assert conv is not None and conv.status.value == "pending" and conv.assignee_id is not None
    assert conv.sla_due_at is None  # answered, then waiting on the customer
    assert [m.text for m in sent] == ["Could you send a photo of the box, Walter?"]
    assert sorted(audit) == ["macro.applied", "macro.sent"]
    seen.assert_clean()


async def test_a_macro_click_keeps_the_status_when_the_agent_says_so(browser: Any, server: LiveServer) -> None:
    from playwright.async_api import expect

    ids = await _seed(server.sessions)
    async with server.sessions() as db:
        admin = (await db.exec(select(Agent).where(Agent.email == "ana@shop.test"))).one()
        canned = await canned_save(db, "bye", "Bye", {"en": "All done, {{ customer.display_name }}."}, by=admin)
        await macro_save(db, name="Done", by=admin, canned_id=canned.id, status="resolved")
        await db.commit()
    page, seen = await _agent_page(browser, server)
    cid = ids["warn"]
    await page.goto(server.at(f"/inbox/c/{cid}"))
    await page.locator("#macros-menu summary").click()
    await page.locator("#macros-menu button", has_text="Done").click()
    await expect(page.locator("#reply-text")).to_have_value("All done, Walter.", timeout=TIMEOUT)
    await expect(page.locator("#macro-pending")).to_contain_text("Resolved")
    await page.locator("#macro-pending-clear").click()
    await expect(page.locator("#macro-pending")).to_be_hidden()
    await page.locator("#reply-form button[type=submit].btn-primary").click()
    await expect(page.locator(".msg-agent").last).to_contain_text("All done, Walter.", timeout=TIMEOUT)
    async with server.sessions() as db:
        conv = await db.get(Conversation, cid)
    assert conv is not None and conv.status.value == "open"
    seen.assert_clean()


async def test_an_agent_with_permission_overrides_a_final_sale_refusal(browser: Any, server: LiveServer) -> None:
    from playwright.async_api import expect

    await add_agent(server.sessions, "ana@shop.test", name="Ana Lopez", admin=True)
    cid = await _customer(server.sessions, "tg-fs", "Maria Garcia", "I want to return the jacket")
    await _escalate(server.sessions, cid)
    async with server.sessions() as db:
        customer = await make_customer(db, first_name="Maria", last_name="Garcia", email="maria@example.com")
        order, lines = await make_order(
            db, [{"sku": "JKT-SALE", "quantity": 1, "unit_price": "80.00", "title": "Sale Jacket", "final_sale": True,
                  "returnable": False},
                 {"sku": "SOCK-3", "quantity": 2, "unit_price": "12.00", "title": "Merino Socks"}],
            customer=customer, name="#1005", fulfillment_status="fulfilled", total_tax="8.80", total_shipping="5.00",
            placed_at=datetime.now(UTC) - timedelta(days=10))
        await make_shipment(db, order, lines=[(lines[0], 1), (lines[1], 2)], status=ShipmentStatus("delivered"),
                            shipped_at=datetime.now(UTC) - timedelta(days=8),
                            delivered_at=datetime.now(UTC) - timedelta(days=5))
        contact = await db.get(Contact, (await db.get(Conversation, cid)).contact_id)
        await contact_link(db, contact, customer.id)
        await db.commit()
        jacket_id = lines[0].id

    page, seen = await _agent_page(browser, server)
    await page.goto(server.at(f"/inbox/c/{cid}"))
    flag = page.locator('.order-lines [data-flag="final-sale"]')
    await expect(flag).to_have_text("Final sale")

    # without the override the policy refuses, and says why
    await page.get_by_text("Open a return").click()
    await page.locator(f"#rl-{jacket_id}").fill("1")
    await page.get_by_role("button", name="Create return").click()
    await expect(page.locator("#toasts")).to_contain_text("final sale", timeout=TIMEOUT)

    # with it, and a reason, the return is created and the override audited
    await page.locator(f"#rl-{jacket_id}").fill("1")
    await page.get_by_label("Override the return policy (final sale, not returnable, window closed)").check()
    await page.get_by_label("Why (kept in the audit trail)").fill("Zipper defect reported before delivery")
    await page.get_by_role("button", name="Create return").click()
    rma = page.locator(".rma")
    await expect(rma).to_have_count(1, timeout=TIMEOUT)
    await rma.locator("summary").click()
    breakdown = rma.locator(".money-breakdown")
    await expect(breakdown).to_contain_text("Items returned")
    await expect(rma).to_contain_text("are not part of this amount")
    async with server.sessions() as db:
        rmas = (await db.exec(select(ReturnAuthorization))).all()
        audit = (await db.exec(select(AuditEvent).where(AuditEvent.action == "order.return_override"))).one()
    assert len(rmas) == 1
    assert audit.detail["waived"] == ["final_sale"] and "Zipper" in audit.detail["reason"]
    seen.errors = [e for e in seen.errors if "400" not in e]  # the refused attempt's response
    seen.assert_clean()
