"""Real headless Chromium against a live server: the merchant's switches for proactive customer
updates. SQLite only (tests/test_proactive_admin.py covers PostgreSQL); waits poll the page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from inbox.proactive import update_settings
from tests.browser import (  # noqa: F401  (browser_fixture provides the ``browser`` fixture)
    LiveServer,
    browser_fixture,
    sign_in,
    start_live_server,
    watch,
)
from tests.web_helpers import PASSWORD, add_agent, fast_hashing  # noqa: F401

pytestmark = pytest.mark.browser
TIMEOUT = 10_000


@pytest.fixture
async def server(aiohttp_server: Any, sqlite_url: str) -> AsyncIterator[LiveServer]:
    async for live in start_live_server(aiohttp_server, sqlite_url):
        yield live


async def _page(browser: Any, server: LiveServer, email: str) -> tuple[Any, Any]:
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await ctx.new_page()
    seen = await watch(page)
    await sign_in(page, server, email, PASSWORD)
    return page, seen


async def test_admin_switches_delivery_updates_per_kind(browser: Any, server: LiveServer) -> None:
    from playwright.async_api import expect

    await add_agent(server.sessions, "ana@shop.test", name="Ana Lopez", admin=True)
    page, seen = await _page(browser, server, "ana@shop.test")
    await page.goto(server.at("/inbox/admin/agents"))
    await page.get_by_role("link", name="Customer updates").click()
    await expect(page).to_have_url(server.at("/inbox/admin/updates"), timeout=TIMEOUT)
    delivered = page.get_by_label("Delivered", exact=True)
    late = page.get_by_label("Late parcel")
    await expect(delivered).to_be_checked()
    await expect(page.get_by_text("The parcel arrived, with a button to start a return.")).to_be_visible()
    await delivered.uncheck()
    await late.uncheck()
    await page.get_by_role("button", name="Save customer updates").click()
    await expect(page.locator(".flash-ok")).to_have_text("Customer updates saved.", timeout=TIMEOUT)
    await expect(page.get_by_label("Delivered", exact=True)).not_to_be_checked()
    await expect(page.get_by_label("Late parcel")).not_to_be_checked()
    await expect(page.get_by_label("Out for delivery")).to_be_checked()
    async with server.sessions() as db:
        switches = await update_settings(db)
    assert (switches["delivered"], switches["late"], switches["out_for_delivery"]) == (False, False, True)

    # switched on again after a reload: the page shows what is stored
    await page.reload()
    await page.get_by_label("Delivered", exact=True).check()
    await page.get_by_role("button", name="Save customer updates").click()
    await expect(page.locator(".flash-ok")).to_be_visible(timeout=TIMEOUT)
    await expect(page.get_by_label("Delivered", exact=True)).to_be_checked()
    seen.assert_clean()


async def test_agents_do_not_get_the_page(browser: Any, server: LiveServer) -> None:
    await add_agent(server.sessions, "ben@shop.test", name="Ben Carter")
    page, _ = await _page(browser, server, "ben@shop.test")
    response = await page.goto(server.at("/inbox/admin/updates"))
    assert response is not None and response.status == 404


async def test_notification_count_is_pushed_to_every_open_tab(browser: Any, server: LiveServer) -> None:
    """An alert fires: every open tab's badge shows it without a reload or a poll; marking them read
    in one tab clears the badge in the other."""
    from datetime import UTC, datetime

    from playwright.async_api import expect
    from sqlmodel import select

    from inbox.alerts.runner import AlertRunner
    from inbox.models import FiredAlert
    from tests.ordersvc_builders import make_level, make_warehouse

    await add_agent(server.sessions, "ana@shop.test", name="Ana Lopez", admin=True)
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    first = await ctx.new_page()
    seen = await watch(first)
    await sign_in(first, server, "ana@shop.test", PASSWORD)
    second = await ctx.new_page()  # the same agent in a second tab (same session cookie)
    seen_second = await watch(second)
    await second.goto(server.at("/inbox/notifications"))
    polls: list[str] = []
    for page in (first, second):
        page.on("request", lambda r: polls.append(r.url) if "/notifications/count" in r.url else None)
        await expect(page.locator("#live-dot.is-live")).to_have_count(1, timeout=TIMEOUT)
    await expect(first.locator("#unread-count")).to_have_text("")

    async with server.sessions() as db:
        main = await make_warehouse(db, "MAIN")
        await make_level(db, main, "MUG", on_hand=0)
        await db.commit()
    await AlertRunner(server.sessions).run_once(datetime.now(UTC))
    async with server.sessions() as db:
        fired = len((await db.exec(select(FiredAlert))).all())
    assert fired >= 1  # low stock (and whatever else the default rules find)
    for page in (first, second):
        await expect(page.locator("#unread-count")).to_have_text(str(fired), timeout=TIMEOUT)
    assert polls == []  # pushed over the socket, not fetched

    await second.reload()  # the list with the new alert, then "mark all as read" in that tab
    await second.get_by_role("button", name="Mark all as read").click()
    await expect(first.locator("#unread-count")).to_have_text("", timeout=TIMEOUT)
    await expect(second.locator("#unread-count")).to_have_text("", timeout=TIMEOUT)
    seen.assert_clean()
    seen_second.assert_clean()
