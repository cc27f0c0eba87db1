"""Live customer updates in two real browsers (headless Chromium): one agent adds a note about a
customer, merges another record into it and un-merges it on the profile page; the other agent's
open conversation sidebar and open profile page follow over /inbox/ws without a reload."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from inbox.actions.contact_link import contact_link
from inbox.actions.message_record import message_record
from inbox.messages import InboundMessage
from inbox.models import Channel, Contact
from inbox.queries.profiles import profile_id_of_contact
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
    await add_agent(sessions, "ben@shop.test", name="Ben Ray", admin=True)
    tg = await message_record(sessions, InboundMessage(
        channel=Channel.telegram, dedupe_key="u-1", contact_external_id="tg-901",
        text="Where is my order #1001?", display_name="Maria Garcia"))
    web = await message_record(sessions, InboundMessage(
        channel=Channel.webchat, dedupe_key="w-1", contact_external_id="visitor-901",
        text="Hello, I wrote on Telegram too", display_name="Web visitor 7F3A"))
    async with sessions() as db:
        customer = await make_customer(db, email="maria@example.com", first_name="Maria", last_name="Garcia")
        await make_order(db, customer=customer, name="#1001", total_price=Decimal("40.00"))
        await contact_link(db, await db.get(Contact, tg.contact_id), customer.id)
        await db.commit()
        profile = await profile_id_of_contact(db, tg.contact_id)
    assert profile is not None
    return {"tg": tg.conversation_id, "web": web.conversation_id, "profile": profile}


async def _agent(browser: Any, server: LiveServer, email: str) -> tuple[Any, Any, Any]:
    ctx = await browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
    page = await ctx.new_page()
    seen = await watch(page)
    await sign_in(page, server, email, PASSWORD)
    return ctx, page, seen


async def _live(page: Any) -> None:
    """Wait until the page's socket is connected, and mark the document: a reload loses the mark."""
    await page.locator("#live-dot.is-live").wait_for(state="attached", timeout=TIMEOUT)
    await page.evaluate("window.__notReloaded = true")


async def _not_reloaded(page: Any) -> None:
    assert await page.evaluate("window.__notReloaded === true")


async def test_notes_merges_and_unmerges_reach_other_agents_tabs_live(browser: Any, server: LiveServer) -> None:
    from playwright.async_api import expect

    ids = await _seed(server.sessions)
    ben_ctx, ben, ben_seen = await _agent(browser, server, "ben@shop.test")
    await ben.goto(server.at(f"/inbox/c/{ids['tg']}"))
    side = ben.locator("#side-customer-profile")
    await expect(side).to_contain_text("$40.00", timeout=TIMEOUT)
    await expect(side.locator("dd").nth(2)).to_have_text("1")  # conversations
    await _live(ben)
    # Ben also has the widget visitor's conversation open in a second tab
    ben_web = await ben_ctx.new_page()
    ben_web_seen = await watch(ben_web)
    await ben_web.goto(server.at(f"/inbox/c/{ids['web']}"))
    web_side = ben_web.locator("#side-customer-profile")
    await expect(web_side).to_be_visible(timeout=TIMEOUT)
    await _live(ben_web)

    ana_ctx, ana, ana_seen = await _agent(browser, server, "ana@shop.test")
    await ana.goto(server.at(f"/inbox/customers/{ids['profile']}"))

    # a note about the customer: Ben's sidebar shows it, without a reload
    await ana.locator("#note-form textarea").fill("Ships to her office on weekdays")
    await ana.get_by_role("button", name="Add note").click()
    await ana.get_by_text("Note added.").wait_for(timeout=TIMEOUT)
    await expect(side.locator(".customer-note-side")).to_contain_text("Ships to her office on weekdays",
                                                                      timeout=TIMEOUT)
    await _not_reloaded(ben)

    # Ben opens the profile page too: it follows the merge and the un-merge
    profile = await ben_ctx.new_page()
    profile_seen = await watch(profile)
    await profile.goto(server.at(f"/inbox/customers/{ids['profile']}"))
    await _live(profile)
    assert await profile.locator("#customer-identity .customer-channel").count() == 1

    await ana.locator("#merge-form input[name=other]").fill(f"#{ids['web']}")
    await ana.get_by_role("button", name="Merge into this customer").click()
    await ana.get_by_text("Customers merged.").wait_for(timeout=TIMEOUT)
    await expect(profile.locator("#customer-identity .customer-channel")).to_have_count(2, timeout=TIMEOUT)
    await expect(profile.locator("#merges .merge-item")).to_have_count(1)
    await expect(side.locator("dd").nth(2)).to_contain_text("2", timeout=TIMEOUT)  # both conversations now
    # the widget conversation's sidebar now shows the customer it was merged into
    await expect(web_side).to_contain_text("$40.00", timeout=TIMEOUT)
    await expect(web_side.locator(".customer-note-side")).to_contain_text("Ships to her office")
    for page in (ben, ben_web, profile):
        await _not_reloaded(page)

    # un-merge: everything goes back, live
    await ana.locator("#merges").get_by_role("button", name="Un-merge").click()
    await ana.get_by_text("Merge undone.").wait_for(timeout=TIMEOUT)
    await expect(profile.locator("#customer-identity .customer-channel")).to_have_count(1, timeout=TIMEOUT)
    await expect(profile.locator("#merges .merge-item")).to_have_count(0)
    await expect(side.locator("dd").nth(2)).to_have_text("1", timeout=TIMEOUT)
    await expect(web_side).not_to_contain_text("$40.00", timeout=TIMEOUT)
    for page in (ben, ben_web, profile):
        await _not_reloaded(page)
    for seen in (ben_seen, ben_web_seen, profile_seen, ana_seen):
        seen.assert_clean()
    await ana_ctx.close()
    await ben_ctx.close()
