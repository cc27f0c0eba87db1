"""Agent sign-in, sessions, CSRF and security headers of the web app (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlmodel import select
from yarl import URL

from inbox.actions.agent_create import agent_create
from inbox.auth import AgentExists, authenticate, verify_password
from inbox.models import Agent, Message, OutboxMessage
from inbox.web.auth import LoginThrottle
from inbox.web.security import CONTENT_SECURITY_POLICY
from inbox.web.state import ThrottleConfig
from tests.db_helpers import count, rows
from tests.web_helpers import (  # noqa: F401  (fast_hashing is an autouse fixture)
    PASSWORD,
    add_agent,
    build_web_app,
    csrf_from,
    customer_says,
    fast_hashing,
    login,
    make_config,
)

EXPECTED_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@pytest.fixture
async def client(aiohttp_client: Any, sessions: Any) -> Any:
    return await aiohttp_client(build_web_app(sessions).app)



# --------------------------------------------------------------------------- passwords


async def test_passwords_are_argon2_and_create_agent_refuses_duplicates(sessions: Any) -> None:
    async with sessions() as db:
        agent = await agent_create(db, " Ana@Shop.TEST ", PASSWORD, name="Ana")
        await db.commit()
        assert agent.email == "ana@shop.test"
        assert agent.password_hash.startswith("$argon2id$")
        assert PASSWORD not in agent.password_hash
        assert await verify_password(agent.password_hash, PASSWORD) is True
        assert await verify_password(agent.password_hash, PASSWORD + "x") is False
        with pytest.raises(AgentExists):
            await agent_create(db, "ana@shop.test", PASSWORD, name="Other")
        await db.rollback()
    async with sessions() as db:
        assert (await authenticate(db, "ANA@shop.test", PASSWORD)) is not None
        assert (await authenticate(db, "ana@shop.test", "wrong password!")) is None
        assert (await authenticate(db, "nobody@shop.test", PASSWORD)) is None


# --------------------------------------------------------------------------- login page


async def test_login_page_has_labelled_fields_and_strict_headers(client: Any) -> None:
    resp = await client.get("/login")
    assert resp.status == 200
    body = await resp.text()
    assert re.search(r'<label for="login-email">Email</label>', body)
    assert re.search(r'<input id="login-email" name="email"', body)
    assert re.search(r'<label for="login-password">Password</label>', body)
    assert re.search(r'<input id="login-password" name="password" type="password"', body)
    assert re.search(r"<button[^>]*>Sign in</button>", body)
    assert CONTENT_SECURITY_POLICY == EXPECTED_CSP
    assert resp.headers["Content-Security-Policy"] == EXPECTED_CSP
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    # no inline script or handler anywhere
    assert "<script>" not in body and " onclick=" not in body and " style=" not in body


async def test_login_success_sets_hardened_cookie_and_opens_the_inbox(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    page = await client.get("/login")
    anon_token = csrf_from(await page.text())
    resp = await client.post(
        "/login", data={"email": "ana@shop.test", "password": PASSWORD, "csrf_token": anon_token}, allow_redirects=False
    )
    assert resp.status == 303
    assert resp.headers["Location"] == "/inbox"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http public URL
    inbox = await client.get("/inbox")
    assert inbox.status == 200
    body = await inbox.text()
    assert "Ana" in body
    # a NEW session at login: the anonymous token is no longer valid
    assert csrf_from(body) != anon_token
    async with sessions() as db:
        agent = (await db.exec(select(Agent))).one()
        assert agent.last_login_at is not None


async def test_secure_cookie_when_public_url_is_https(aiohttp_client: Any, sessions: Any) -> None:
    client = await aiohttp_client(build_web_app(sessions, config=make_config(
        public_url="https://shop.example", secure_cookies=True)).app)
    resp = await client.get("/login")
    cookie = resp.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


async def test_wrong_password_and_unknown_email_fail_the_same_way(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    page = await client.get("/login")
    token = csrf_from(await page.text())
    for email, password in (("ana@shop.test", "not the password"), ("ghost@shop.test", PASSWORD)):
        resp = await client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                                 allow_redirects=False)
        assert resp.status == 401
        assert "Wrong email or password." in await resp.text()
    resp = await client.get("/inbox", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/login")


async def test_inactive_agent_cannot_sign_in(client: Any, sessions: Any) -> None:
    agent = await add_agent(sessions)
    async with sessions() as db:
        row = await db.get(Agent, agent.id)
        row.is_active = False
        db.add(row)
        await db.commit()
    page = await client.get("/login")
    token = csrf_from(await page.text())
    resp = await client.post("/login", data={"email": "ana@shop.test", "password": PASSWORD, "csrf_token": token},
                             allow_redirects=False)
    assert resp.status == 401


async def test_login_is_throttled_per_email(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    page = await client.get("/login")
    token = csrf_from(await page.text())
    for _ in range(5):
        resp = await client.post("/login", data={"email": "ana@shop.test", "password": "guess-guess", "csrf_token": token})
        assert resp.status == 401
    # even the right password is refused now, with a clear message
    resp = await client.post("/login", data={"email": "ana@shop.test", "password": PASSWORD, "csrf_token": token},
                             allow_redirects=False)
    assert resp.status == 429
    assert "Too many failed sign-in attempts" in await resp.text()
    assert int(resp.headers["Retry-After"]) > 0


async def test_login_is_throttled_per_address(client: Any, sessions: Any) -> None:
    await add_agent(sessions, "bo@shop.test", name="Bo")
    page = await client.get("/login")
    token = csrf_from(await page.text())
    for i in range(5):
        await client.post("/login", data={"email": f"spray{i}@shop.test", "password": "guess-guess", "csrf_token": token})
    resp = await client.post("/login", data={"email": "bo@shop.test", "password": PASSWORD, "csrf_token": token},
                             allow_redirects=False)
    assert resp.status == 429


async def test_throttle_window_expires(sessions: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from inbox.models import LoginFailure

    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    at = lambda seconds: t0 + timedelta(seconds=seconds)  # noqa: E731
    throttle = LoginThrottle(ThrottleConfig(max_failures=2, window_seconds=60), sessions, b"k" * 32)
    await throttle.record_failure(["email:bo@shop.test"], now=at(0))
    assert await throttle.retry_after(["email:bo@shop.test"], now=at(5)) == 0  # one failure of two allowed
    await throttle.record_failure(["email:bo@shop.test"], now=at(10))
    assert await throttle.retry_after(["email:bo@shop.test"], now=at(20)) == pytest.approx(40)
    assert await throttle.retry_after(["email:other@shop.test"], now=at(20)) == 0
    assert await throttle.retry_after(["email:bo@shop.test"], now=at(61)) == 0
    # the table holds neither the email nor the address, only a keyed hash of them
    stored = await rows(sessions, LoginFailure)
    assert stored and all("bo@" not in r.key and len(r.key) == 64 for r in stored)
    # a failure much later drops the ones out of the window
    await throttle.record_failure(["email:bo@shop.test"], now=at(600))
    assert len(await rows(sessions, LoginFailure)) == 1
    await throttle.reset("email:bo@shop.test")
    assert await throttle.retry_after(["email:bo@shop.test"], now=at(600)) == 0
    assert await rows(sessions, LoginFailure) == []


async def test_the_throttle_is_shared_by_every_server_process(db_url: str, tmp_path: Any) -> None:
    """Two processes on one database (here: two throttles with their own engines) count the
    same failures: five spread over both lock the sixth out on either."""
    from shopdesk.db import create_engine, session_maker

    engines = [create_engine(db_url), create_engine(db_url)]
    try:
        one, two = (LoginThrottle(ThrottleConfig(max_failures=5, window_seconds=900), session_maker(e), b"s" * 32)
                    for e in engines)
        for i in range(5):
            await (one if i % 2 else two).record_failure(["ip:203.0.113.9"])
        assert await one.retry_after(["ip:203.0.113.9"]) > 0
        assert await two.retry_after(["ip:203.0.113.9"]) > 0
    finally:
        for e in engines:
            await e.dispose()


async def test_open_redirect_after_login_is_refused(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    page = await client.get("/login?next=//evil.example/x")
    token = csrf_from(await page.text())
    resp = await client.post(
        "/login",
        data={"email": "ana@shop.test", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/x"},
        allow_redirects=False,
    )
    assert resp.headers["Location"] == "/inbox"


async def test_inbox_requires_sign_in(client: Any) -> None:
    resp = await client.get("/inbox/c/1?view=all", allow_redirects=False)
    assert resp.status == 303
    location = URL(resp.headers["Location"])
    assert location.path == "/login" and location.query["next"] == "/inbox/c/1?view=all"
    resp = await client.get("/inbox/fragments/list", headers={"HX-Request": "true"})
    assert resp.status == 401
    assert (await resp.json())["error"]


# --------------------------------------------------------------------------- CSRF


async def test_login_without_csrf_token_is_403(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    resp = await client.post("/login", data={"email": "ana@shop.test", "password": PASSWORD})
    assert resp.status == 403
    assert "security token" in await resp.text()


async def test_state_change_without_or_with_stale_csrf_is_403_and_changes_nothing(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    rec = await customer_says(sessions, "Where is my parcel?")
    old_token = await login(client)
    # a stale token: from a previous session of the same browser
    await client.post("/logout", data={"csrf_token": old_token})
    token = await login(client)
    assert token != old_token
    before_messages = await count(sessions, Message)
    url = f"/inbox/c/{rec.conversation_id}/reply"
    for data, headers in (
        ({"text": "hello"}, {}),
        ({"text": "hello", "csrf_token": old_token}, {}),
        ({"text": "hello"}, {"X-CSRF-Token": "forged"}),
    ):
        resp = await client.post(url, data=data, headers=headers)
        assert resp.status == 403
        assert "security token" in await resp.text()
    resp = await client.post(url, data={"text": "hello"}, headers={"X-CSRF-Token": old_token, "HX-Request": "true"})
    assert resp.status == 403
    assert "security token" in (await resp.json())["error"]
    assert await count(sessions, Message) == before_messages
    assert await count(sessions, OutboxMessage) == 0
    # the right token works (header form, as htmx sends it)
    resp = await client.post(url, data={"text": "hello"}, headers={"X-CSRF-Token": token}, allow_redirects=False)
    assert resp.status == 303
    assert await count(sessions, OutboxMessage) == 1


async def test_csrf_exempt_prefixes(client: Any) -> None:
    # no route there, but the CSRF middleware lets them through to routing (404, not 403)
    for path in ("/webhooks/telegram", "/slack/events", "/api/v1/orders"):
        resp = await client.post(path, data={"x": "1"})
        assert resp.status == 404, path
    resp = await client.post("/inbox/anything", data={"x": "1"})
    assert resp.status == 403


# --------------------------------------------------------------------------- logout


async def test_logout_needs_csrf_and_ends_the_session(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    token = await login(client)
    resp = await client.post("/logout", data={})
    assert resp.status == 403
    assert (await client.get("/inbox")).status == 200
    resp = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    resp = await client.get("/inbox", allow_redirects=False)
    assert resp.status == 303


async def test_session_version_ends_every_session(aiohttp_client: Any, sessions: Any) -> None:
    web_app = build_web_app(sessions)
    laptop = await aiohttp_client(web_app.app)
    await add_agent(sessions)
    await login(laptop)
    from aiohttp.test_utils import TestClient

    phone = TestClient(laptop.server)
    await phone.start_server()
    try:
        token = await login(phone)
        resp = await phone.post("/inbox/account/logout-everywhere", data={"csrf_token": token}, allow_redirects=False)
        assert resp.status == 303
        # the laptop's cookie is still there but its session_version is stale
        resp = await laptop.get("/inbox", allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"].startswith("/login")
    finally:
        await phone.close()


async def test_deactivating_an_agent_ends_their_session(client: Any, sessions: Any) -> None:
    agent = await add_agent(sessions)
    await login(client)
    async with sessions() as db:
        row = await db.get(Agent, agent.id)
        row.is_active = False
        db.add(row)
        await db.commit()
    resp = await client.get("/inbox", allow_redirects=False)
    assert resp.status == 303
