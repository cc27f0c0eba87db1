"""Playwright helpers for the real-browser tests: Debian's Chromium, a live server, page watchers.

Chromium comes from the distribution (``apt-get install chromium``), not from
``playwright install``. Without it the browser tests are skipped with a reason, except in
CI (``CI=true``), where a missing browser is a failure.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if IN_CI:
        pytest.fail(f"{CHROMIUM} is missing; CI must install chromium to run the browser tests")
    pytest.skip(f"{CHROMIUM} not found; install it with: apt-get install -y --no-install-recommends chromium")


@pytest.fixture(name="browser")
async def browser_fixture() -> AsyncIterator[Any]:
    """A headless Debian Chromium (import ``browser_fixture`` into a test module to use ``browser``)."""
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        instance = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            await instance.close()


@dataclass
class PageWatch:
    """What a page did that it must not: dialogs (alert/confirm), errors, CSP violations."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.dialogs == [], f"a dialog opened: {self.dialogs}"
        assert self.errors == [], f"console errors / CSP violations: {self.errors}"


async def watch(page: Any) -> PageWatch:
    """Record dialogs (and dismiss them), console errors, uncaught exceptions and CSP violations."""
    seen = PageWatch()

    async def on_dialog(dialog: Any) -> None:
        seen.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda msg: seen.errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: seen.errors.append(f"uncaught: {exc}"))
    # init scripts are injected by the browser itself, so the page's CSP does not block them
    await page.add_init_script(
        "document.addEventListener('securitypolicyviolation', function (e) {"
        " var t = e.target && e.target.outerHTML ? e.target.outerHTML.slice(0, 120) : '';"
        " console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI + ' at ' + e.sourceFile + ':'"
        " + e.lineNumber + ' ' + t); });"
    )
    return seen


@dataclass
class LiveServer:
    url: str
    sessions: Any
    app: web.Application

    def at(self, path: str) -> str:
        return self.url.rstrip("/") + path


async def start_live_server(aiohttp_server: Any, sqlite_url: str, *, shop_name: str = "Trailhead Outfitters") -> AsyncIterator[LiveServer]:
    """The real web app on a free loopback port: SQLite, EventBus, outbox dispatcher with the webchat sender."""
    from inbox.channels import SenderRegistry
    from inbox.events import EventBus
    from inbox.outbox import OutboxDispatcher
    from inbox.web import setup
    from shopdesk.db import create_engine, session_maker
    from tests.web_helpers import make_config

    engine = create_engine(sqlite_url)
    sessions = session_maker(engine)
    bus = EventBus()
    senders = SenderRegistry()
    app = web.Application()
    setup(app, sessions=sessions, bus=bus, config=make_config(shop_name=shop_name), senders=senders)
    dispatcher = OutboxDispatcher(sessions, senders, bus, poll_interval=0.5)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        dispatcher.start()
        yield
        await dispatcher.stop()

    app.cleanup_ctx.append(lifecycle)
    server = await aiohttp_server(app, host="127.0.0.1")
    try:
        yield LiveServer(url=str(server.make_url("/")), sessions=sessions, app=app)
    finally:
        await server.close()
        await engine.dispose()


async def sign_in(page: Any, server: LiveServer, email: str, password: str) -> None:
    await page.goto(server.at("/login"))
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/inbox")


async def open_widget(page: Any) -> None:
    await page.get_by_role("button", name="Chat with us").click()
    await page.locator(".sdw-panel").wait_for(state="visible")


async def widget_send(page: Any, text: str) -> None:
    await page.get_by_label("Message", exact=True).fill(text)
    await page.get_by_role("button", name="Send").click()
