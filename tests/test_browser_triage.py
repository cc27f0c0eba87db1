"""Triage in a real headless Chromium (issue 14): the work-queue tabs and their live counts, 15+
rows on a 900-pixel screen, two agents seeing the same counts and the same bulk change live,
shift-click and "x", a refused bulk change, notifications, a phone-width screenshot and dark mode.

SQLite only (tests/test_triage.py covers both databases). Waits poll the page, never sleep.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from inbox.actions.conversation_assign import conversation_assign, conversation_claim
from inbox.actions.conversation_escalate import conversation_escalate
from inbox.models import Agent, AgentPreference, Conversation
from tests.browser import (  # noqa: F401  (browser_fixture provides the ``browser`` fixture)
    LiveServer,
    browser_fixture,
    sign_in,
    start_live_server,
    watch,
)
from tests.web_helpers import PASSWORD, add_agent, customer_says, fast_hashing  # noqa: F401

pytestmark = pytest.mark.browser

TIMEOUT = 10_000  # ms, for waits on live updates
NAMES = ["Maria Garcia", "Kenji Watanabe", "Olivia Brown", "Lucas Silva", "Amara Okafor", "Ivan Petrov",
         "Mai Nguyen", "Chen Wei", "Sofia Rossi", "Noah Fischer", "Aisha Khan", "Diego Ramos", "Emma Dubois",
         "Hiro Tanaka", "Lena Novak", "Omar Haddad", "Priya Shah", "Tom Becker", "Yara Costa", "Zoe Martin"]


@pytest.fixture
async def server(aiohttp_server: Any, sqlite_url: str) -> AsyncIterator[LiveServer]:
    async for live in start_live_server(aiohttp_server, sqlite_url):
        yield live


async def _seed(sessions: Any, handed_over: int = 20, bot: int = 3) -> list[int]:
    """Agents Ana (admin) and Ben; ``handed_over`` conversations waiting for a person, ``bot`` the bot handles."""
    await add_agent(sessions, "ana@shop.test", name="Ana Lopez", admin=True)
    await add_agent(sessions, "ben@shop.test", name="Ben Carter")
    ids: list[int] = []
    for n in range(handed_over + bot):
        name = NAMES[n % len(NAMES)]
        rec = await customer_says(sessions, f"Where is my order #{1000 + n}? It has been a week.",
                                  contact=f"visitor-seed-{n:08d}", name=name)
        if n < handed_over:
            async with sessions() as db:
                conv = await db.get(Conversation, rec.conversation_id)
                await conversation_escalate(db, conv, priority=["normal", "high", "urgent", "low"][n % 4],
                                            summary="Asked for a person", reason="asked_human")
                await db.commit()
            ids.append(rec.conversation_id)
    return ids


async def _page(browser: Any, server: LiveServer, email: str = "ana@shop.test", **context: Any) -> tuple[Any, Any]:
    ctx = await browser.new_context(**({"viewport": {"width": 1440, "height": 900}} | context))
    page = await ctx.new_page()
    seen = await watch(page)
    await sign_in(page, server, email, PASSWORD)
    return page, seen


async def _counts(page: Any) -> dict[str, str]:
    return dict(await page.locator(".triage-views [data-count]").evaluate_all(
        "els => els.map(e => [e.getAttribute('data-count'), e.textContent.trim()])"))


async def test_views_live_counts_and_density(browser: Any, server: LiveServer, tmp_path: Path) -> None:
    from playwright.async_api import expect

    await _seed(server.sessions)
    page, seen = await _page(browser, server)
    await page.goto(server.at("/inbox?view=human"))
    await expect(page.locator("#live-dot.is-live")).to_be_attached(timeout=TIMEOUT)
    counts = await _counts(page)
    assert counts == {"human": "20", "bot": "3", "mine": "0", "unassigned": "20", "waiting": "0", "snoozed": "0",
                      "resolved": "0", "all": "23"}
    # urgent first
    await expect(page.locator(".conv-item").first.locator(".badge-urgent")).to_have_count(1)
    # compact: at least 15 whole rows inside a 900-pixel-high window
    visible = await page.evaluate(
        "() => { const h = window.innerHeight; return [...document.querySelectorAll('.conv-item')]"
        ".filter(el => { const r = el.getBoundingClientRect(); return r.top >= 0 && r.bottom <= h; }).length; }")
    await page.screenshot(path=str(tmp_path / "inbox-views.png"))
    heights = await page.evaluate(
        "() => ['.topbar', '.filters', '.bulk-bar', '.conv-item'].map(s => [s, document.querySelector(s)"
        ".getBoundingClientRect().height])")
    assert visible >= 15, (visible, heights, tmp_path)

    # a change elsewhere: every count follows without a reload
    await page.evaluate("window.__noReload = 1")
    await customer_says(server.sessions, "Hi, do you ship to Canada?", contact="visitor-new-000001", name="New One")
    await expect(page.locator('.triage-views [data-count="bot"]')).to_have_text("4", timeout=TIMEOUT)
    async with server.sessions() as db:
        ben = await db.get(Agent, 2)
        conv = await db.get(Conversation, 1)
        await conversation_assign(db, conv, ben, by=None)
        await db.commit()
    await expect(page.locator('.triage-views [data-count="unassigned"]')).to_have_text("19", timeout=TIMEOUT)
    await expect(page.locator('.triage-views [data-count="human"]')).to_have_text("20")
    # switching views
    await page.locator('.triage-views a[data-view="bot"]').click()
    await expect(page.locator(".conv-item")).to_have_count(4, timeout=TIMEOUT)
    assert await page.evaluate("window.__noReload") == 1
    seen.assert_clean()


async def test_two_agents_same_counts_and_bulk_change_live(browser: Any, server: LiveServer, tmp_path: Path) -> None:
    from playwright.async_api import expect

    await _seed(server.sessions, handed_over=8, bot=2)
    ana, ana_seen = await _page(browser, server)
    ben, ben_seen = await _page(browser, server, "ben@shop.test")
    for page in (ana, ben):
        await page.goto(server.at("/inbox?view=human"))
        await expect(page.locator("#live-dot.is-live")).to_be_attached(timeout=TIMEOUT)
    assert await _counts(ana) == await _counts(ben)

    rows = ana.locator(".conv-item")
    await expect(rows).to_have_count(8)
    # click the first, shift-click the third: a range of three
    await rows.nth(0).locator(".bulk-check").click()
    await rows.nth(2).locator(".bulk-check").click(modifiers=["Shift"])
    await expect(ana.locator(".conv-item .bulk-check:checked")).to_have_count(3)
    # the keyboard: j moves the highlight, x ticks the highlighted row
    await ana.keyboard.press("Escape")
    for _ in range(4):
        await ana.keyboard.press("j")
    await ana.keyboard.press("x")
    await expect(ana.locator(".conv-item .bulk-check:checked")).to_have_count(4)
    await expect(ana.locator("#bulk-count")).to_have_text("4 selected")
    chosen = await ana.locator(".conv-item:has(.bulk-check:checked)").evaluate_all(
        "els => els.map(e => e.getAttribute('data-id'))")
    assert chosen[3] == await rows.nth(3).get_attribute("data-id")

    await ana.locator("#bulk-op").select_option("assign")
    await ana.screenshot(path=str(tmp_path / "inbox-bulk.png"))
    await ana.locator("#bulk-op").select_option("resolve")
    await ana.locator("#bulk-apply").click()
    await expect(ana.locator(".toast")).to_contain_text("4 conversations updated", timeout=TIMEOUT)
    for page in (ana, ben):  # both agents see the same change live
        await expect(page.locator('.triage-views [data-count="human"]')).to_have_text("4", timeout=TIMEOUT)
        await expect(page.locator('.triage-views [data-count="resolved"]')).to_have_text("4", timeout=TIMEOUT)
        await expect(page.locator(".conv-item")).to_have_count(4, timeout=TIMEOUT)
    for cid in chosen:
        await expect(ben.locator(f'.conv-item[data-id="{cid}"]')).to_have_count(0)
    assert await _counts(ana) == await _counts(ben)

    # Ben selects two; Ana claims one of them meanwhile: Ben's change is refused as a whole
    ben_rows = ben.locator(".conv-item")
    await ben_rows.nth(0).locator(".bulk-check").click()
    await ben_rows.nth(1).locator(".bulk-check").click()
    taken = int(await ben_rows.nth(1).get_attribute("data-id") or 0)
    untouched = int(await ben_rows.nth(0).get_attribute("data-id") or 0)
    async with server.sessions() as db:
        await conversation_claim(db, await db.get(Conversation, taken), await db.get(Agent, 1))
        await db.commit()
    await expect(ben.locator(f'.conv-item[data-id="{taken}"] .conv-assignee')).to_have_text("Ana Lopez",
                                                                                            timeout=TIMEOUT)
    await expect(ben.locator(".conv-item .bulk-check:checked")).to_have_count(2)  # kept across the live refresh
    await ben.locator("#bulk-op").select_option("priority")
    await ben.locator("#bulk-priority").select_option("urgent")
    await ben.locator("#bulk-apply").click()
    await expect(ben.locator(".toast-error")).to_contain_text(f"#{taken}", timeout=TIMEOUT)
    await expect(ben.locator(".toast-error")).to_contain_text("Nothing was changed")
    async with server.sessions() as db:
        assert (await db.get(Conversation, untouched)).priority != "urgent"
    ana_seen.assert_clean()
    ben_seen.errors = [e for e in ben_seen.errors if "409" not in e]  # the refused POST is logged by Chromium
    ben_seen.assert_clean()


async def test_notifications_title_sound_and_desktop(browser: Any, server: LiveServer) -> None:
    from playwright.async_api import expect

    await _seed(server.sessions, handed_over=2, bot=0)
    async with server.sessions() as db:
        await conversation_assign(db, await db.get(Conversation, 1), await db.get(Agent, 2), by=None)
        await db.commit()
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    # a stand-in for the browser's Notification API that records what the page shows; the tab is "away"
    await ctx.add_init_script(
        "window.__shown = []; window.__asked = 0;"
        "function FakeNotification(title, options) { window.__shown.push([title, (options || {}).body]); }"
        "FakeNotification.permission = 'default';"
        "FakeNotification.requestPermission = function () { window.__asked += 1;"
        " FakeNotification.permission = 'granted'; return Promise.resolve('granted'); };"
        "window.Notification = FakeNotification;"
        "document.hasFocus = function () { return false; };")
    page = await ctx.new_page()
    seen = await watch(page)
    await sign_in(page, server, "ben@shop.test", PASSWORD)
    await expect(page.locator("#live-dot.is-live")).to_be_attached(timeout=TIMEOUT)

    await page.locator("#notify-menu summary").click()
    await page.locator("#notify-desktop").check()
    await page.locator("#notify-sound").check()
    assert await page.evaluate("window.__asked") == 1  # permission asked on the click
    async with server.sessions() as db:
        for _ in range(50):
            prefs = await db.get(AgentPreference, 2)
            if prefs is not None and prefs.notify_desktop and prefs.notify_sound:
                break
            await page.wait_for_timeout(100)
            await db.rollback()
    assert prefs is not None and prefs.notify_desktop and prefs.notify_sound
    base_title = await page.title()

    # a customer replies in a conversation assigned to Ben
    await customer_says(server.sessions, "Any news?", contact="visitor-seed-00000000", key="reply-1")
    await expect(page).to_have_title(f"(1) {base_title}", timeout=TIMEOUT)
    await page.wait_for_function("window.__shown.length === 1")
    assert await page.evaluate("window.__shown[0][0]") == "New reply"
    # a new conversation in his views (handed over to a person)
    rec = await customer_says(server.sessions, "I want a human", contact="visitor-new-000002", name="New Two")
    async with server.sessions() as db:
        await conversation_escalate(db, await db.get(Conversation, rec.conversation_id), priority="high",
                                    summary="", reason="asked_human")
        await db.commit()
    await expect(page).to_have_title(f"(2) {base_title}", timeout=TIMEOUT)
    await page.wait_for_function("window.__shown.length === 2")
    # back at the tab: the count clears
    await page.locator("body").click(position={"x": 900, "y": 500})
    await expect(page).to_have_title(base_title)
    seen.assert_clean()


async def test_phone_width_screens_and_screenshot(browser: Any, server: LiveServer, tmp_path: Path) -> None:
    from playwright.async_api import expect

    await _seed(server.sessions, handed_over=6, bot=2)
    page, seen = await _page(browser, server, viewport={"width": 390, "height": 844}, is_mobile=True,
                             has_touch=True, device_scale_factor=2)
    # nothing wider than the screen: no visible element reaches past its right edge (none listed)
    no_overflow = (
        "() => [document.documentElement.scrollWidth - document.documentElement.clientWidth,"
        " ...[...document.querySelectorAll('body *')].filter(el => { const r = el.getBoundingClientRect();"
        " return r.width > 0 && r.right > window.innerWidth + 1 && el.checkVisibility(); }).map(el => el.tagName + '.' + el.className)]")
    await expect(page.locator(".conv-item").first).to_be_visible()
    assert await page.evaluate(no_overflow) == [0]
    assert await page.locator(".pane-conv").is_hidden()
    box = await page.locator(".pane-list").bounding_box()
    assert box is not None and box["width"] >= 380 and box["x"] >= 0
    shot = tmp_path / "inbox-phone-list.png"
    await page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000

    # the conversation is its own screen, with the way back and the way to the customer
    await page.locator(".conv-item a").first.click()
    await expect(page.locator("#transcript")).to_be_visible(timeout=TIMEOUT)
    await expect(page.locator(".pane-list")).to_be_hidden()
    await expect(page.locator(".pane-side")).to_be_hidden()
    assert await page.evaluate(no_overflow) == [0]
    await page.screenshot(path=str(tmp_path / "inbox-phone-conversation.png"))
    await page.locator("#mobile-customer").click()
    await expect(page.locator(".pane-side")).to_be_visible()
    await expect(page.locator("#transcript")).to_be_hidden()
    assert await page.evaluate(no_overflow) == [0]
    await page.screenshot(path=str(tmp_path / "inbox-phone-customer.png"))
    await page.locator(".pane-side .mobile-nav a").click()
    await expect(page.locator("#transcript")).to_be_visible()
    await page.locator("#mobile-back").click()
    await expect(page.locator(".conv-item").first).to_be_visible(timeout=TIMEOUT)
    await expect(page.locator(".pane-conv")).to_be_hidden()
    seen.assert_clean()


async def test_dark_mode_follows_the_system(browser: Any, server: LiveServer, tmp_path: Path) -> None:
    await _seed(server.sessions, handed_over=3, bot=1)
    luminance = (
        "sel => { const c = getComputedStyle(document.querySelector(sel)).backgroundColor.match(/\\d+/g).map(Number);"
        " return (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255; }")
    text = "sel => { const c = getComputedStyle(document.querySelector(sel)).color.match(/\\d+/g).map(Number);" \
           " return (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255; }"
    dark, dark_seen = await _page(browser, server, color_scheme="dark")
    light, light_seen = await _page(browser, server, color_scheme="light")
    for sel in ("body", ".pane-list", "#search"):
        assert await dark.evaluate(luminance, sel) < 0.2, sel
        assert await light.evaluate(luminance, sel) > 0.8, sel
    assert await dark.evaluate(text, ".conv-name") > 0.7
    assert await light.evaluate(text, ".conv-name") < 0.3
    await dark.locator(".conv-item a").first.click()
    await dark.locator("#transcript").wait_for()
    assert await dark.evaluate(luminance, ".msg-customer .msg-body") < 0.25
    await dark.screenshot(path=str(tmp_path / "inbox-dark.png"))
    dark_seen.assert_clean()
    light_seen.assert_clean()
