"""Real headless Chromium against a live server: the widget on /shop and the agents' inbox, live.

Runs on SQLite only (the HTTP tests cover PostgreSQL). Waits poll the page (Playwright's
auto-waiting ``expect``), never fixed sleeps.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from inbox.actions.contact_link import contact_link
from inbox.actions.conversation_escalate import conversation_escalate
from inbox.actions.conversation_labels import conversation_labels
from inbox.actions.message_record import message_record
from inbox.actions.message_send import message_send
from inbox.messages import InboundMessage, OutboundPayload, QuickReply
from inbox.models import Author, Channel, Contact, Conversation, Label
from tests.browser import (  # noqa: F401  (browser_fixture provides the ``browser`` fixture)
    LiveServer,
    browser_fixture,
    open_widget,
    sign_in,
    start_live_server,
    watch,
    widget_send,
)
from tests.ordersvc_builders import make_customer, make_order, make_shipment
from tests.web_helpers import PASSWORD, add_agent, fast_hashing  # noqa: F401

pytestmark = pytest.mark.browser

XSS_IMG = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "<script>alert(1)</script>"
TIMEOUT = 10_000  # ms, for waits on live updates


@pytest.fixture
async def server(aiohttp_server: Any, sqlite_url: str) -> AsyncIterator[LiveServer]:
    async for live in start_live_server(aiohttp_server, sqlite_url):
        yield live


async def _seed_inbox(sessions: Any) -> None:
    """A few realistic conversations so the inbox is not empty (and screenshots look like real use)."""
    await add_agent(sessions, "ana@shop.test", name="Ana Lopez", admin=True)
    await add_agent(sessions, "ben@shop.test", name="Ben Carter")
    async with sessions() as db:
        db.add_all([Label(name="vip", color="#b45309"), Label(name="damaged", color="#b91c1c")])
        await db.commit()
    samples = [
        ("tg-501", "Maria Garcia", "Hi, my order #1001 still says in transit after 9 days. Can someone check?", "high", ["vip"]),
        ("tg-502", "Kenji Watanabe", "The zipper on the rain jacket broke on the first day", "normal", ["damaged"]),
        ("tg-503", "Olivia Brown", "Do you ship to Canada?", None, []),
    ]
    for external_id, name, text, priority, labels in samples:
        rec = await message_record(
            sessions,
            InboundMessage(channel=Channel.telegram, dedupe_key=f"u-{external_id}", contact_external_id=external_id,
                           text=text, display_name=name),
        )
        async with sessions() as db:
            conv = await db.get(Conversation, rec.conversation_id)
            message_send(
                db, conv,
                OutboundPayload("I can help with that. What is your order number?",
                                (QuickReply("Track my order", "track"), QuickReply("Talk to a person", "human"))),
                author=Author.bot,
            )
            if priority:
                await conversation_escalate(db, conv, priority=priority, summary="Customer asked for a person", reason="handoff")
                await conversation_labels(db, conv, labels, by=None, actor="bot")
                conv.last_intent = "track_order" if "order" in text else "complaint"
                db.add(conv)
            if external_id == "tg-501":
                customer = await make_customer(db, first_name="Maria", last_name="Garcia", email="maria@example.com")
                order, lines = await make_order(
                    db,
                    [{"sku": "JKT-RAIN-M", "quantity": 1, "unit_price": "129.00", "title": "Packable Rain Jacket"},
                     {"sku": "SOCK-3", "quantity": 2, "unit_price": "24.00", "title": "Merino Crew Socks"}],
                    customer=customer, name="#1001", fulfillment_status="fulfilled",
                    placed_at=datetime.now(UTC) - timedelta(days=12),
                )
                shipment = await make_shipment(db, order, lines=[(lines[0], 1), (lines[1], 2)],
                                               shipped_at=datetime.now(UTC) - timedelta(days=9))
                shipment.tracking_url = "https://www.ups.com/track?tracknum=1Z5R89390357567127"
                db.add(shipment)
                contact = await db.get(Contact, conv.contact_id)
                await contact_link(db, contact, customer.id)
            await db.commit()


async def _agent_page(browser: Any, server: LiveServer, **context: Any) -> tuple[Any, Any]:
    ctx = await browser.new_context(viewport={"width": 1440, "height": 900}, **context)
    page = await ctx.new_page()
    seen = await watch(page)
    await sign_in(page, server, "ana@shop.test", PASSWORD)
    return page, seen


async def _customer_page(browser: Any, server: LiveServer, **context: Any) -> tuple[Any, Any]:
    ctx = await browser.new_context(**({"viewport": {"width": 1280, "height": 800}} | context))
    page = await ctx.new_page()
    seen = await watch(page)
    await page.goto(server.at("/shop"))
    return page, seen


def _screenshot_dir() -> Path:
    path = Path(os.environ.get("SHOPDESK_SCREENSHOTS") or tempfile.mkdtemp(prefix="shopdesk-shots-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------- (a) + (b)


async def test_widget_message_reaches_inbox_live_and_reply_reaches_widget(browser: Any, server: LiveServer) -> None:
    from playwright.async_api import expect

    await _seed_inbox(server.sessions)
    agent, agent_seen = await _agent_page(browser, server)
    await agent.evaluate("window.__noReload = 'still here'")
    await expect(agent.locator("#live-dot.is-live")).to_be_attached(timeout=TIMEOUT)

    customer, customer_seen = await _customer_page(browser, server)
    await open_widget(customer)
    await widget_send(customer, "Hello! Is my order #1002 shipped yet?")
    await expect(customer.locator(".sdw-msg--customer[data-id]")).to_have_count(1, timeout=TIMEOUT)

    # (a) the agent's list shows it without a reload
    item = agent.locator(".conv-item", has_text="Is my order #1002 shipped yet?")
    await expect(item).to_have_count(1, timeout=TIMEOUT)
    assert await agent.evaluate("window.__noReload") == "still here"

    # (b) the agent opens it and replies; the widget shows the reply
    await item.locator("a").click()
    await expect(agent.locator("#transcript")).to_contain_text("Is my order #1002 shipped yet?", timeout=TIMEOUT)
    await agent.get_by_label("Reply", exact=True).fill("Yes! It left our warehouse this morning.")
    await agent.get_by_role("button", name="Send", exact=True).click()
    await expect(agent.locator("#transcript .msg-agent")).to_contain_text("It left our warehouse", timeout=TIMEOUT)
    await expect(customer.locator(".sdw-msg--agent")).to_contain_text(
        "Yes! It left our warehouse this morning.", timeout=TIMEOUT
    )
    await expect(customer.locator(".sdw-msg--agent .sdw-author")).to_have_text("Ana Lopez")
    # the customer answers; the open conversation updates live too
    await widget_send(customer, "Great, thank you!")
    await expect(agent.locator("#transcript .msg-customer").last).to_contain_text("Great, thank you!", timeout=TIMEOUT)
    # delivery status of the reply turns to delivered (message.delivery event)
    await expect(agent.locator("#transcript .msg-agent .delivery").last).to_have_text("Delivered", timeout=TIMEOUT)

    shots = _screenshot_dir()
    await agent.screenshot(path=str(shots / "inbox.png"))
    await customer.screenshot(path=str(shots / "widget-desktop.png"))
    print(f"screenshots in {shots}")

    # keyboard: ? help, / search, j/k + Enter open, n note, e resolve
    await agent.locator("body").click(position={"x": 700, "y": 450})
    await agent.keyboard.press("?")
    await expect(agent.locator("#help")).to_be_visible()
    await agent.keyboard.press("Escape")
    await expect(agent.locator("#help")).to_be_hidden()
    await agent.keyboard.press("/")
    await expect(agent.locator("#search")).to_be_focused()
    await agent.keyboard.press("Escape")
    await agent.keyboard.press("n")
    await expect(agent.get_by_label("Internal note", exact=True)).to_be_focused()
    await agent.keyboard.press("Escape")
    await agent.keyboard.press("e")
    await expect(agent.locator("#conv-status")).to_have_text("Resolved", timeout=TIMEOUT)
    await agent.keyboard.press("j")
    await agent.keyboard.press("j")
    selected = agent.locator(".conv-item.is-selected")
    await expect(selected).to_have_count(1)
    target = await selected.get_attribute("data-id")
    await agent.keyboard.press("Enter")
    await expect(agent.locator("#conversation")).to_have_attribute("data-conversation-id", target or "", timeout=TIMEOUT)
    assert await agent.evaluate("window.__noReload") == "still here"
    agent_seen.assert_clean()
    customer_seen.assert_clean()


# --------------------------------------------------------------------------- (c)


async def test_xss_payloads_display_as_text_and_run_nothing(browser: Any, server: LiveServer) -> None:
    from playwright.async_api import expect

    await add_agent(server.sessions, "ana@shop.test", name="Ana Lopez")
    agent, agent_seen = await _agent_page(browser, server)
    customer, customer_seen = await _customer_page(browser, server)
    await open_widget(customer)
    await widget_send(customer, XSS_IMG)
    await widget_send(customer, XSS_SCRIPT)

    # literal text in the widget
    await expect(customer.locator(".sdw-msg--customer .sdw-text").nth(0)).to_have_text(XSS_IMG, timeout=TIMEOUT)
    await expect(customer.locator(".sdw-msg--customer .sdw-text").nth(1)).to_have_text(XSS_SCRIPT, timeout=TIMEOUT)

    # literal text in the agent's list (preview) and transcript
    item = agent.locator(".conv-item").first
    await expect(item.locator(".conv-preview")).to_have_text(XSS_SCRIPT, timeout=TIMEOUT)
    await item.locator("a").click()
    bodies = agent.locator("#transcript .msg-customer .msg-body")
    await expect(bodies).to_have_count(2, timeout=TIMEOUT)
    await expect(bodies.nth(0)).to_have_text(XSS_IMG)
    await expect(bodies.nth(1)).to_have_text(XSS_SCRIPT)

    # the agent's reply with payloads is literal text in the widget
    await agent.get_by_label("Reply", exact=True).fill(f"You wrote {XSS_IMG} {XSS_SCRIPT}")
    await agent.get_by_role("button", name="Send", exact=True).click()
    await expect(customer.locator(".sdw-msg--agent .sdw-text")).to_have_text(
        f"You wrote {XSS_IMG} {XSS_SCRIPT}", timeout=TIMEOUT
    )
    # links the shop sends become tappable in the widget and clickable in the transcript (http(s)
    # only, the rest of the text stays text); links the customer sends stay text
    await widget_send(customer, "see https://evil.example/x")
    await agent.get_by_label("Reply", exact=True).fill(
        'Your label: https://shop.example/label.pdf?t=1. Not javascript:alert(1) or "https://q.example/"onclick=x'
    )
    await agent.get_by_role("button", name="Send", exact=True).click()
    widget_links = customer.locator(".sdw-msg--agent a")
    await expect(widget_links).to_have_count(2, timeout=TIMEOUT)
    assert await widget_links.evaluate_all("els => els.map(a => [a.getAttribute('href'), a.textContent, a.rel])") == [
        ["https://shop.example/label.pdf?t=1", "https://shop.example/label.pdf?t=1", "noopener noreferrer"],
        ["https://q.example/", "https://q.example/", "noopener noreferrer"],
    ]
    await expect(customer.locator(".sdw-msg--agent .sdw-text").last).to_contain_text("Not javascript:alert(1) or")
    transcript_links = agent.locator("#transcript .msg-agent .msg-body a")
    await expect(transcript_links).to_have_count(2, timeout=TIMEOUT)
    assert await transcript_links.first.get_attribute("href") == "https://shop.example/label.pdf?t=1"
    assert await customer.locator(".sdw-msg--customer a").count() == 0
    assert await agent.locator("#transcript .msg-customer a").count() == 0
    # nothing became an element, nothing ran
    for page in (agent, customer):
        assert await page.locator("[onclick]").count() == 0
        assert await page.locator("a[href^=javascript]").count() == 0
        assert await page.locator("img[src=x]").count() == 0
        assert await page.evaluate("Array.from(document.scripts).filter(s => !s.src).length") == 0
    agent_seen.assert_clean()
    customer_seen.assert_clean()


# --------------------------------------------------------------------------- (d)


async def test_widget_conversation_resumes_after_reload(browser: Any, server: LiveServer) -> None:
    from playwright.async_api import expect

    customer, seen = await _customer_page(browser, server)
    await open_widget(customer)
    await widget_send(customer, "First message before the reload")
    await expect(customer.locator(".sdw-msg--customer[data-id]")).to_have_count(1, timeout=TIMEOUT)
    visitor = await customer.evaluate("JSON.parse(localStorage.getItem('shopdesk.widget.identity')).visitor")

    await customer.reload()
    await open_widget(customer)
    await expect(customer.locator(".sdw-msg--customer")).to_have_text(["First message before the reload"], timeout=TIMEOUT)
    assert await customer.evaluate("JSON.parse(localStorage.getItem('shopdesk.widget.identity')).visitor") == visitor
    await widget_send(customer, "Second message after the reload")
    await expect(customer.locator(".sdw-msg--customer[data-id]")).to_have_count(2, timeout=TIMEOUT)
    async with server.sessions() as db:
        from sqlmodel import func, select

        assert (await db.exec(select(func.count()).select_from(Conversation))).one() == 1
    seen.assert_clean()


# --------------------------------------------------------------------------- (e)


async def test_widget_is_usable_on_a_360px_phone(browser: Any, server: LiveServer) -> None:
    from playwright.async_api import expect

    customer, seen = await _customer_page(
        browser, server, viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    no_horizontal_scroll = "document.documentElement.scrollWidth <= window.innerWidth"
    assert await customer.evaluate(no_horizontal_scroll)
    launcher = customer.get_by_role("button", name="Chat with us")
    box = await launcher.bounding_box()
    assert box and box["height"] >= 44 and box["x"] + box["width"] <= 360
    await open_widget(customer)
    assert await customer.evaluate(no_horizontal_scroll)
    field = customer.get_by_label("Message", exact=True)
    await expect(field).to_be_visible()
    send = customer.get_by_role("button", name="Send")
    for locator in (field, send):
        rect = await locator.bounding_box()
        assert rect and rect["x"] >= 0 and rect["x"] + rect["width"] <= 360 and rect["y"] + rect["height"] <= 740
        assert rect["height"] >= 44  # a comfortable tap target
    await widget_send(customer, "Typing on a phone works")
    await expect(customer.locator(".sdw-msg--customer[data-id]")).to_have_count(1, timeout=TIMEOUT)
    assert await customer.evaluate(no_horizontal_scroll)
    await customer.screenshot(path=str(_screenshot_dir() / "widget-mobile.png"))
    seen.assert_clean()


async def test_widget_speaks_the_visitors_language(browser: Any, server: LiveServer) -> None:
    from playwright.async_api import expect

    customer, seen = await _customer_page(browser, server, locale="es-ES")
    await customer.get_by_role("button", name="Chatea con nosotros").click()
    await expect(customer.locator(".sdw-sub")).to_have_text("Solemos responder en pocos minutos")
    field = customer.get_by_label("Mensaje", exact=True)
    await expect(field).to_have_attribute("placeholder", "Escribe tu mensaje…")
    await field.fill("hola")
    await customer.get_by_role("button", name="Enviar").click()
    await expect(customer.locator(".sdw-msg--customer[data-id]")).to_have_count(1, timeout=TIMEOUT)
    seen.assert_clean()

    chinese, seen = await _customer_page(browser, server, locale="zh-TW")
    await expect(chinese.get_by_role("button", name="線上諮詢")).to_be_visible()
    seen.assert_clean()


# --------------------------------------------------------------------------- languages: slash-insert and the picker


async def test_slash_insert_picks_the_conversations_language_and_the_ui_language_picker(
    browser: Any, server: LiveServer
) -> None:
    from playwright.async_api import expect

    from inbox.actions.canned_save import canned_save

    await add_agent(server.sessions, "ana@shop.test", name="Ana Lopez", admin=True)
    rec = await message_record(
        server.sessions,
        InboundMessage(channel=Channel.telegram, dedupe_key="u-ru-1", contact_external_id="tg-ru-1",
                       text="Здравствуйте, где мой заказ?", display_name="Ivan Petrov"),
    )
    async with server.sessions() as db:
        conv = await db.get(Conversation, rec.conversation_id)
        conv.language = "ru"
        db.add(conv)
        await canned_save(db, "thanks", "Thanks", {"en": "Thanks, {{ customer.display_name }}!",
                                                   "ru": "Спасибо, {{ customer.display_name }}!"})
        await canned_save(db, "tracking", "Tracking link", {"en": "Your parcel is on its way."})
        await canned_save(db, "refund-eta", "Refund timing", {"en": "Refunds take 5-10 days."})
        await db.commit()

    agent, seen = await _agent_page(browser, server)
    # opened with a boosted (htmx) click, as agents do: the page's data must survive the swap
    await agent.locator(".conv-item a").first.click()
    await expect(agent.locator("#conversation")).to_have_attribute("data-conversation-id", str(rec.conversation_id),
                                                                    timeout=TIMEOUT)
    box = agent.get_by_label("Reply", exact=True)
    suggest = agent.locator("#canned-suggest")
    await box.click()
    await box.press_sequentially("Hi /t")
    await expect(suggest).to_be_visible()
    # shortcuts that start with it first (/thanks, /tracking), then those that contain it (/refund-eta)
    await expect(suggest.locator("[role=option]")).to_have_count(3)
    await expect(suggest.locator("[role=option]").last).to_contain_text("/refund-eta")
    await expect(suggest.locator("[aria-selected=true]")).to_contain_text("/thanks")
    await box.press("ArrowDown")
    await expect(suggest.locator("[aria-selected=true]")).to_contain_text("/tracking")
    await box.press("ArrowUp")
    await expect(suggest.locator("[aria-selected=true]")).to_contain_text("/thanks")
    await box.press("Enter")
    await expect(box).to_have_value("Hi Спасибо, Ivan!", timeout=TIMEOUT)  # the conversation's language
    await expect(suggest).to_be_hidden()
    await expect(agent.locator("#canned-warning")).to_be_hidden()
    await expect(box).to_be_focused()

    # Esc closes the list and keeps the typing; the next key opens it again
    await box.press_sequentially(" /tr")
    await expect(suggest).to_be_visible()
    await box.press("Escape")
    await expect(suggest).to_be_hidden()
    await expect(box).to_be_focused()
    await box.press_sequentially("a")
    await expect(suggest.locator("[role=option]")).to_have_count(1)
    await box.press("Enter")
    await expect(box).to_have_value("Hi Спасибо, Ivan! Your parcel is on its way.", timeout=TIMEOUT)
    warning = agent.locator("#canned-warning")
    await expect(warning).to_be_visible()  # no Russian body: English, and the composer says so
    await expect(warning).to_contain_text("Русский")
    # an unknown shortcut says so instead of guessing
    await box.press_sequentially(" /zzz")
    await expect(suggest).to_contain_text("No canned response starts with that.")
    await box.press("Escape")

    # the picker: the agent switches the inbox to Russian
    await agent.goto(server.at("/inbox/account"))
    await agent.get_by_label("Language of the inbox").select_option("ru")
    await agent.get_by_role("button", name="Save language").click()
    await expect(agent.locator("html")).to_have_attribute("lang", "ru", timeout=TIMEOUT)
    await expect(agent.locator("#page .flash-ok")).to_have_text("Язык сохранён.")
    await agent.get_by_role("link", name="Входящие").click()
    await expect(agent.get_by_placeholder("Поиск по сообщениям и именам  ( / )")).to_be_visible(timeout=TIMEOUT)
    # the script speaks Russian too (its strings come from the page's JSON catalog)
    await expect(agent.locator("#live-dot.is-live")).to_have_attribute(
        "title", "Обновления в реальном времени включены", timeout=TIMEOUT)
    await agent.goto(server.at(f"/inbox/c/{rec.conversation_id}"))
    await expect(agent.locator("#transcript .badge-lang")).to_have_text("ru")
    await expect(agent.get_by_role("button", name="Отправить", exact=True)).to_be_visible()
    await agent.get_by_label("Ответ", exact=True).press_sequentially("/")
    await expect(agent.locator("#canned-suggest [role=option]")).to_have_count(3)
    await agent.screenshot(path=str(_screenshot_dir() / "inbox-ru-slash.png"))
    seen.assert_clean()
