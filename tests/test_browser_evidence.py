"""The dispute evidence links in the inbox sidebar, in headless Chromium: the order panel's PDF
link downloads the order's bundle (read back with pypdf), the conversation's JSON link the
whole transcript, and "Attach to Slack thread" without a thread explains itself."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from inbox.actions.contact_link import contact_link
from inbox.actions.message_record import message_record
from inbox.messages import InboundMessage
from inbox.models import Channel, Contact
from tests.browser import LiveServer, browser_fixture, sign_in, start_live_server, watch  # noqa: F401
from tests.ordersvc_builders import make_customer, make_order, make_shipment
from tests.web_helpers import PASSWORD, add_agent, fast_hashing  # noqa: F401

pytestmark = pytest.mark.browser


@pytest.fixture
async def server(aiohttp_server: Any, sqlite_url: str) -> AsyncIterator[LiveServer]:
    async for live in start_live_server(aiohttp_server, sqlite_url):
        yield live


async def _seed(sessions: Any) -> int:
    await add_agent(sessions, "ana@shop.test", name="Ana Lopez", admin=True)
    result = await message_record(sessions, InboundMessage(
        channel=Channel.telegram, dedupe_key="ev-1", contact_external_id="tg-900",
        text="The parcel for order #2024 never arrived, I want my money back", display_name="Maria Garcia"))
    async with sessions() as db:
        customer = await make_customer(db, first_name="Maria", last_name="Garcia", email="maria@example.com")
        order, lines = await make_order(db, name="#2024", customer=customer)
        await make_shipment(db, order, lines=[(lines[0], 1)])
        contact = await db.get(Contact, result.contact_id)
        await contact_link(db, contact, customer.id)
        await db.commit()
    return result.conversation_id


async def test_evidence_downloads_from_the_sidebar(browser: Any, server: LiveServer, tmp_path: Path) -> None:
    cid = await _seed(server.sessions)
    ctx = await browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page = await ctx.new_page()
    seen = await watch(page)
    await sign_in(page, server, "ana@shop.test", PASSWORD)
    await page.goto(server.at(f"/inbox/c/{cid}"))

    order_panel = page.locator("article.order", has_text="#2024")
    async with page.expect_download() as info:
        await order_panel.get_by_role("link", name="PDF").click()
    download = await info.value
    assert download.suggested_filename == f"evidence-2024-c{cid}.pdf"
    path = tmp_path / "evidence.pdf"
    await download.save_as(path)
    text = " ".join(" ".join(p.extract_text() or "" for p in PdfReader(BytesIO(path.read_bytes())).pages).split())
    assert "Dispute evidence · Order #2024" in text and "never arrived" in text and "1Z5R89390357567127" in text

    section = page.locator("#side-evidence")
    async with page.expect_download() as info:
        await section.get_by_role("link", name="JSON").click()
    download = await info.value
    path = tmp_path / "evidence.json"
    await download.save_as(path)
    data = json.loads(path.read_text())
    assert data["transcript"]["count"] == 1 and [o["name"] for o in data["orders"]] == ["#2024"]

    # no Slack thread yet: the agent is told why, and stays able to work
    await section.get_by_role("button", name="Attach to Slack thread").click()
    await page.get_by_text("This conversation has no Slack thread to attach the evidence to.").wait_for(timeout=10_000)
    seen.errors = [e for e in seen.errors if "409" not in e]  # the refused request itself
    seen.assert_clean()
    await ctx.close()
