"""Customer profiles in real headless Chromium: the sidebar block and the list's "n open" badge,
the profile timeline, notes, merge and un-merge (SQLite; the HTTP and unit tests cover PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from inbox.actions.contact_link import contact_link
from inbox.actions.message_record import message_record
from inbox.messages import InboundMessage
from inbox.models import Channel, Contact
from tests.browser import (  # noqa: F401  (browser_fixture provides the ``browser`` fixture)
    LiveServer,
    browser_fixture,
    sign_in,
    start_live_server,
    watch,
)
from tests.ordersvc_builders import make_customer, make_order
from tests.web_helpers import PASSWORD, add_agent, fast_hashing  # noqa: F401

pytestmark = pytest.mark.browser
TIMEOUT = 10_000


@pytest.fixture
async def server(aiohttp_server: Any, sqlite_url: str) -> AsyncIterator[LiveServer]:
    async for live in start_live_server(aiohttp_server, sqlite_url):
        yield live


async def _seed(sessions: Any) -> dict[str, int]:
    await add_agent(sessions, "ana@shop.test", name="Ana Lopez", admin=True)
    tg = await message_record(sessions, InboundMessage(
        channel=Channel.telegram, dedupe_key="u-1", contact_external_id="tg-901",
        text="Where is my order #1001?", display_name="Maria Garcia"))
    web = await message_record(sessions, InboundMessage(
        channel=Channel.webchat, dedupe_key="w-1", contact_external_id="visitor-901",
        text="Hello, I wrote on Telegram too", display_name="Web visitor 7F3A"))
    async with sessions() as db:
        customer = await make_customer(db, email="maria@example.com", first_name="Maria", last_name="Garcia")
        await make_order(db, customer=customer, name="#1001", total_price=Decimal("1234.50"))
        await make_order(db, customer=customer, name="#1002", total_price=Decimal("20.00"))
        await contact_link(db, await db.get(Contact, tg.contact_id), customer.id)
        await db.commit()
    return {"tg": tg.conversation_id, "web": web.conversation_id}


async def test_merge_notes_timeline_and_unmerge(browser: Any, server: LiveServer) -> None:
    ids = await _seed(server.sessions)
    ctx = await browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
    page = await ctx.new_page()
    seen = await watch(page)
    await sign_in(page, server, "ana@shop.test", PASSWORD)

    # the sidebar shows the customer's history, with money in the agent's locale
    await page.goto(server.at(f"/inbox/c/{ids['tg']}"))
    side = page.locator("#side-customer-profile")
    await side.get_by_text("$1,254.50").wait_for(timeout=TIMEOUT)
    await side.locator("textarea").fill("Ships to her office on weekdays")
    await side.get_by_role("button", name="Add note").click()
    await page.wait_for_url(f"**/inbox/c/{ids['tg']}*")
    await page.locator("#side-customer-profile .customer-note-side").get_by_text(
        "Ships to her office on weekdays").wait_for(timeout=TIMEOUT)
    await page.locator("#open-profile").click()
    await page.wait_for_url("**/inbox/customers/*")
    profile_url = page.url
    assert await page.locator("#lifetime-orders").inner_text() == "2"
    assert await page.locator("#lifetime-spend").inner_text() == "$1,254.50"
    assert await page.locator("#customer-timeline .timeline-item").count() == 1

    # a note about the customer (customer-facing text never runs: autoescaped)
    await page.locator("#note-form textarea").fill("Prefers <b>Telegram</b>; VIP since 2023")
    await page.get_by_role("button", name="Add note").click()
    await page.locator(".customer-note .note-body").get_by_text("Prefers <b>Telegram</b>; VIP since 2023").wait_for()
    assert await page.locator(".customer-note").count() == 2  # the sidebar's note is here too
    assert await page.locator(".customer-note b").count() == 0

    # merge the widget conversation's contact into this customer: the timeline has both
    await page.locator("#merge-form input[name=other]").fill(f"#{ids['web']}")
    await page.get_by_role("button", name="Merge into this customer").click()
    await page.get_by_text("Customers merged.").wait_for()
    assert page.url == profile_url
    await page.locator("#customer-timeline .timeline-item").nth(1).wait_for()
    assert await page.locator("#customer-timeline .timeline-item").count() == 2
    assert await page.locator("#customer-identity .customer-channel").count() == 2

    # the conversation list groups the customer's two open conversations
    await page.goto(server.at("/inbox"))
    badge = page.locator(".conv-group").first
    await badge.wait_for(timeout=TIMEOUT)
    assert (await badge.inner_text()).strip() == "2 open"
    await badge.click()
    await page.wait_for_url(profile_url)

    # merging it again is refused with a clear message and changes nothing
    await page.locator("#merge-form input[name=other]").fill(f"#{ids['tg']}")
    await page.get_by_role("button", name="Merge into this customer").click()
    await page.get_by_text("A customer cannot be merged into itself.").wait_for()
    assert seen.errors and all("400" in error for error in seen.errors)  # the refusal's answer, nothing else
    seen.errors.clear()
    await page.goto(profile_url)

    # un-merge: the widget contact is its own customer again
    await page.locator("#merges").get_by_role("button", name="Un-merge").click()
    await page.get_by_text("Merge undone.").wait_for()
    assert await page.locator("#customer-timeline .timeline-item").count() == 1
    assert await page.locator("#merges .merge-item").count() == 0
    await page.goto(server.at("/inbox"))
    await page.locator(".conv-item").first.wait_for()
    assert await page.locator(".conv-group").count() == 0
    seen.assert_clean()
    await ctx.close()
