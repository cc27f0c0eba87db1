"""The inbox web app's browser middleware (``inbox.web.auth.browser_middleware``: cookie session →
CSRF → agent as one layer) and the request log context (``shopdesk.logs.request_middleware``).

Platform webhooks (``/webhooks/…``) skip the session, CSRF and agent layers; every other path
still gets all three, and every response still carries the security headers."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp import web
from aiohttp_session import STORAGE_KEY, get_session

from inbox.web.auth import SESSION_COOKIE
from inbox.web.security import SECURITY_HEADERS
from inbox.web.state import AGENT
from shopdesk.logs import RequestContextFilter, request_middleware
from tests.web_helpers import WebApp, add_agent, build_web_app, csrf_from, fast_hashing  # noqa: F401

SEEN: dict[str, Any] = {}


async def _probe(request: web.Request) -> web.Response:
    SEEN["storage"] = STORAGE_KEY in request
    SEEN["agent"] = request.get(AGENT)
    return web.json_response({"ok": True})


async def _session_probe(request: web.Request) -> web.Response:
    session = await get_session(request)
    session["seen"] = session.get("seen", 0) + 1
    return web.json_response({"seen": session["seen"]})


@pytest.fixture
def web_app(sessions: Any) -> WebApp:
    SEEN.clear()
    built = build_web_app(sessions)
    built.app.router.add_post("/webhooks/probe", _probe)
    built.app.router.add_post("/inbox/probe", _probe)
    built.app.router.add_get("/probe/session", _session_probe)
    return built


@pytest.fixture
async def client(aiohttp_client: Any, web_app: WebApp) -> Any:
    return await aiohttp_client(web_app.app)


async def test_a_webhook_skips_the_session_csrf_and_agent_layers(client: Any) -> None:
    resp = await client.post("/webhooks/probe", json={"update_id": 1})  # no cookie, no CSRF token
    assert resp.status == 200
    assert SEEN == {"storage": False, "agent": None}  # the session layer never ran
    assert SESSION_COOKIE not in resp.cookies
    for name, value in SECURITY_HEADERS.items():  # the response hook still runs for every route
        assert resp.headers[name] == value


async def test_other_paths_keep_session_csrf_and_agent(client: Any, sessions: Any) -> None:
    # the agent check: an inbox POST without a signed-in agent is refused before its handler
    resp = await client.post("/inbox/probe", json={}, headers={"Accept": "application/json"})
    assert resp.status in (401, 403)
    assert SEEN == {}
    # the CSRF check: a state-changing form without the token is refused
    resp = await client.post("/logout", data={})
    assert resp.status == 403
    # the cookie session: a page that writes it gets its cookie, and reads it back
    first = await client.get("/probe/session")
    assert (await first.json()) == {"seen": 1} and SESSION_COOKIE in first.cookies
    second = await client.get("/probe/session")
    assert (await second.json()) == {"seen": 2}
    # and a signed-in agent with the CSRF token passes all three
    await add_agent(sessions)
    login = await client.get("/login")
    token = csrf_from(await login.text())
    resp = await client.post("/login", data={"email": "ana@shop.test", "password": "correct horse battery",
                                             "csrf_token": token, "next": "/inbox"}, allow_redirects=False)
    assert resp.status == 303
    page = await client.get("/inbox")
    token = csrf_from(await page.text())
    resp = await client.post("/inbox/probe", json={}, headers={"X-CSRF-Token": token})
    assert resp.status == 200
    assert SEEN["storage"] is True and SEEN["agent"] is not None


# --------------------------------------------------------------------------- request log context


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(RequestContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_request_id_is_one_per_request_and_drawn_only_when_logged(aiohttp_client: Any) -> None:
    logger = logging.getLogger("shopdesk.test.request_id")
    handler = _Collect()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    drawn: list[Any] = []

    async def noisy(request: web.Request) -> web.Response:
        logger.info("one")
        logger.info("two")
        return web.Response(text="ok")

    async def quiet(request: web.Request) -> web.Response:
        response = web.Response(text="ok")
        drawn.append(dict(request))  # what the request carries after its handler, nothing logged
        return response

    app = web.Application(middlewares=[request_middleware])
    app.router.add_get("/noisy", noisy)
    app.router.add_get("/quiet", quiet)
    client = await aiohttp_client(app)
    try:
        assert (await client.get("/noisy")).status == 200
        assert (await client.get("/noisy")).status == 200
        assert (await client.get("/quiet")).status == 200
    finally:
        logger.removeHandler(handler)
    ids = [getattr(r, "request_id", None) for r in handler.records]
    assert len(ids) == 4 and all(isinstance(i, str) and len(i) == 16 for i in ids)
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]  # one id per request, lines share it
    assert all(r.path == "/noisy" and r.method == "GET" for r in handler.records)  # type: ignore[attr-defined]
    assert drawn == [{}]  # a request that logs nothing never draws one
