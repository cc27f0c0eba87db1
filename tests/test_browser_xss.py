"""Stored XSS through every way text reaches the agents' UI, in real headless Chromium.

Customer text and names from Telegram, the widget and Slack, and order data from Shopify (the
customer's name, the order note, item titles, the shipping address, a carrier's tracking link)
all carry payloads. An agent then opens the list, the conversation with its order sidebar,
search results and the customer's messages: every payload reads as text, nothing runs (a
payload that ran would set ``window.__pwned`` or open a dialog), no CSP violation is reported.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from inbox.actions.contact_link import contact_link
from inbox.actions.conversation_escalate import conversation_escalate
from inbox.actions.message_record import message_record
from inbox.messages import InboundMessage
from inbox.models import Channel, Contact, Conversation
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

RAN = "window.__pwned = (window.__pwned || 0) + 1"
PAYLOADS = [
    f'<img src=x onerror="{RAN}">',
    f'"><svg onload="{RAN}">',
    f"</textarea><script>{RAN}</script>",
    f"javascript:{RAN}",
    "{{ 7*7 }} {% if 1 %}x{% endif %}",
]
TIMEOUT = 10_000


@pytest.fixture
async def server(aiohttp_server: Any, sqlite_url: str) -> AsyncIterator[LiveServer]:
    async for live in start_live_server(aiohttp_server, sqlite_url):
        yield live


async def _poison(sessions: Any) -> int:
    """A Telegram conversation whose every customer-controlled field is a payload, with a
    poisoned Shopify order linked to it, plus widget and Slack-channel conversations."""
    name = PAYLOADS[1]
    first = None
    for channel, external_id in ((Channel.telegram, "9001"), (Channel.webchat, "visitorXssXssXssXss01"),
                                 (Channel.slack, "U0XSS")):
        for i, text in enumerate(PAYLOADS):
            rec = await message_record(sessions, InboundMessage(
                channel=channel, dedupe_key=f"xss-{channel.value}-{i}", contact_external_id=external_id, text=text,
                display_name=name, username=PAYLOADS[0][:32]))
            first = first or rec.conversation_id
    async with sessions() as db:
        conversation = await db.get(Conversation, first)
        assert conversation is not None
        await conversation_escalate(db, conversation, priority="high", summary=f"customer said {PAYLOADS[0]}",
                                    reason="handoff")
        customer = await make_customer(db, first_name=PAYLOADS[0], last_name=PAYLOADS[2], email="xss@example.com")
        order, lines = await make_order(
            db, [{"sku": "XSS-1", "quantity": 1, "unit_price": "10.00", "title": PAYLOADS[2],
                  "variant_title": PAYLOADS[1]}],
            customer=customer, name="#1001", note=PAYLOADS[0],
            shipping_address={"name": PAYLOADS[1], "address1": PAYLOADS[0], "city": PAYLOADS[2], "zip": "10115",
                              "country_code": "DE"},
            placed_at=datetime.now(UTC) - timedelta(days=10), fulfillment_status="fulfilled")
        shipment = await make_shipment(db, order, lines=[(lines[0], 1)], shipped_at=datetime.now(UTC) - timedelta(days=8))
        shipment.tracking_url = PAYLOADS[3]
        shipment.carrier = PAYLOADS[1][:32]
        db.add(shipment)
        contact = await db.get(Contact, conversation.contact_id)
        assert contact is not None
        await contact_link(db, contact, customer.id)
        await db.commit()
    assert first is not None
    return first


async def _nothing_ran(page: Any) -> None:
    assert await page.evaluate("window.__pwned || 0") == 0


async def test_payloads_through_every_channel_are_text_in_the_agents_ui(browser: Any, server: LiveServer) -> None:
    from playwright.async_api import expect

    conversation_id = await _poison(server.sessions)
    await add_agent(server.sessions, "ana@shop.test", name="Ana Lopez", admin=True)
    ctx = await browser.new_context(viewport={"width": 1440, "height": 900})
    page = await ctx.new_page()
    seen = await watch(page)
    await sign_in(page, server, "ana@shop.test", PASSWORD)

    for path in ("/inbox?view=all", f"/inbox/c/{conversation_id}?view=all", "/inbox?view=all&q=svg",
                 "/inbox?view=all&q=%3Cimg", "/inbox/notifications"):
        response = await page.goto(server.at(path))
        assert response is not None and response.status < 500, path
        await page.wait_for_load_state("networkidle")
        await _nothing_ran(page)

    # the conversation shows every payload literally: messages, the customer's name, the order
    await page.goto(server.at(f"/inbox/c/{conversation_id}?view=all"))
    bodies = page.locator("#transcript .msg-customer .msg-body")
    await expect(bodies).to_have_count(len(PAYLOADS), timeout=TIMEOUT)
    for i, payload in enumerate(PAYLOADS):
        await expect(bodies.nth(i)).to_have_text(payload)
    body_text = await page.locator("body").inner_text()
    assert PAYLOADS[1] in body_text  # the display name, as text
    assert "49" not in body_text.replace("2049", "")  # no template evaluated {{ 7*7 }}
    # no element and no attribute came from a payload: no <svg>/<script> inside the app's
    # content, no javascript: link, no inline event handler anywhere
    assert await page.locator("main svg[onload], img[onerror], a[href^='javascript:' i]").count() == 0
    handlers = await page.evaluate("""() => [...document.querySelectorAll('*')]
        .flatMap(el => [...el.attributes].filter(a => a.name.startsWith('on')).map(a => el.tagName + ' ' + a.name))""")
    assert handlers == []
    await _nothing_ran(page)
    seen.assert_clean()
    await ctx.close()
