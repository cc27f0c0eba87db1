"""Shared pieces of the web tests: the app under test, agents, signing in, seeding conversations.

The app is the real ``inbox.web`` app on the test's database (both databases through the
``sessions`` fixture) with a real EventBus; only the channel senders other than webchat are
absent, so outbox rows of other channels simply stay pending.
"""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher

import inbox.web
from inbox.actions.agent_create import agent_create
from inbox.actions.message_record import RecordResult, message_record
from inbox.channels import SenderRegistry
from inbox.events import Event, EventBus
from inbox.messages import InboundMessage
from inbox.models import Agent, Channel
from inbox.web import ThrottleConfig, WebConfig
from inbox.web.state import WebState

SECRET = b"test-secret-key-0123456789abcdef0123456789"
PASSWORD = "correct horse battery"
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with small parameters: the real ones cost ~0.3 s per hash, which adds up in a suite."""
    import inbox.auth

    monkeypatch.setattr(inbox.auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    inbox.auth._dummy_hash.cache_clear()


def make_config(**overrides: Any) -> WebConfig:
    values: dict[str, Any] = {
        "secret_key": SECRET,
        "public_url": "http://127.0.0.1:8080",
        "shop_name": "Test Shop",
        "login_throttle": ThrottleConfig(max_failures=5, window_seconds=900),
    }
    values.update(overrides)
    return WebConfig(**values)


@dataclass
class WebApp:
    app: web.Application
    state: WebState
    bus: EventBus
    senders: SenderRegistry
    events: list[Event] = field(default_factory=list)
    inbound: list[RecordResult] = field(default_factory=list)


def build_web_app(
    sessions: Any,
    *,
    config: WebConfig | None = None,
    on_inbound: Callable[[RecordResult], Awaitable[None]] | None = None,
) -> WebApp:
    app = web.Application()
    bus = EventBus()
    senders = SenderRegistry()
    holder: list[WebApp] = []

    async def record(result: RecordResult) -> None:
        holder[0].inbound.append(result)
        if on_inbound is not None:
            await on_inbound(result)

    state = inbox.web.setup(app, sessions=sessions, bus=bus, config=config or make_config(), senders=senders,
                            on_inbound=record)
    result = WebApp(app=app, state=state, bus=bus, senders=senders)
    bus.subscribe(result.events.append)
    holder.append(result)
    return result


async def add_agent(
    sessions: Any,
    email: str = "ana@shop.test",
    *,
    name: str = "Ana",
    admin: bool = False,
    team_id: int | None = None,
    password: str = PASSWORD,
) -> Agent:
    async with sessions() as db:
        agent = await agent_create(db, email, password, name=name, admin=admin, team_id=team_id)
        await db.commit()
    return agent


def csrf_from(body: str) -> str:
    match = _CSRF_META.search(body) or _CSRF_FIELD.search(body)
    assert match, "no CSRF token in the page"
    return html.unescape(match.group(1))


async def login(client: TestClient, email: str = "ana@shop.test", password: str = PASSWORD) -> str:
    """Sign in through the real form; returns the session's CSRF token."""
    page = await client.get("/login")
    token = csrf_from(await page.text())
    resp = await client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                             allow_redirects=False)
    assert resp.status == 303, await resp.text()
    inbox_page = await client.get("/inbox")
    assert inbox_page.status == 200
    csrf = csrf_from(await inbox_page.text())
    remember_session_secrets(client, csrf)
    return csrf


def remember_session_secrets(client: TestClient, csrf: str) -> None:
    """The signed-in session's cookie and CSRF token must never reach a log (``tests/log_scan.py``)."""
    from tests.log_scan import register_secret

    for cookie in client.session.cookie_jar:
        register_secret(cookie.value, f"the {cookie.key} cookie")
    register_secret(csrf, "a CSRF token")


async def customer_says(
    sessions: Any,
    text: str,
    *,
    contact: str = "visitor-aaaaaaaaaaaaaaaa",
    key: str | None = None,
    channel: Channel = Channel.webchat,
    name: str = "Jane Doe",
) -> RecordResult:
    key = key or f"{contact}:{abs(hash((text, contact)))}"
    return await message_record(
        sessions,
        InboundMessage(channel=channel, dedupe_key=key, contact_external_id=contact, text=text, display_name=name),
    )
